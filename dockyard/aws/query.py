"""The AWS Query protocol with XML answers (ELBv2): ``POST /`` with a form-encoded body
``Action=Op&Version=2015-12-01&Names.member.1=a``, answered with
``<OpResponse><OpResult>...</OpResult><ResponseMetadata><RequestId>`` and errors as
``<ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>``.

Both directions follow the operation's model: :func:`parse` turns the flat form into the
nested dict the handler gets (``X.member.N`` lists, ``X.entry.N.key``/``.value`` maps,
numbers and booleans typed), :func:`encode` writes the handler's dict as the output shape's XML.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

from botocore.model import OperationModel, ServiceModel, Shape

from dockyard.aws.errors import AwsError, SerializationException

__all__ = ["CONTENT_TYPE", "FORM", "action", "encode", "encode_error", "parse"]

CONTENT_TYPE = "text/xml"
FORM = "application/x-www-form-urlencoded"
AUTH_CODES = {
    "InvalidSignatureException": "SignatureDoesNotMatch",
    "IncompleteSignatureException": "IncompleteSignature",
    "UnrecognizedClientException": "InvalidClientTokenId",
    "MissingAuthenticationTokenException": "MissingAuthenticationToken",
}
"""The names Query services (ELBv2, IAM, STS) give the authentication errors JSON services call
``InvalidSignatureException`` and so on."""


def action(body: bytes) -> tuple[str, dict[str, str]]:
    """The ``Action`` and the flat form of a Query request body."""
    try:
        form = dict(parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body)))
    except (ValueError, UnicodeDecodeError) as e:
        raise SerializationException(f"Request body is not a valid form: {e}.") from None
    return form.pop("Action", ""), form


def parse(op: OperationModel, form: dict[str, str]) -> dict[str, Any]:
    """The parameters of ``op`` from a flat Query form (``Version`` dropped)."""
    form = {k: v for k, v in form.items() if k != "Version"}
    shape = op.input_shape
    if shape is None:
        return {}
    out = _read(shape, "", form)
    return out if isinstance(out, dict) else {}


def _read(shape: Shape, prefix: str, form: dict[str, str]) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = _read(member, f"{prefix}.{key}" if prefix else key, form)
            if value is not None:
                out[name] = value
        return out or None
    if kind == "list":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.member"
        items = []
        i = 1
        while True:
            item = _read(shape.member, f"{base}.{i}", form)
            if item is None:
                break
            items.append(item)
            i += 1
        if not items and form.get(prefix) == "":  # an empty list is sent as ``X=``
            return []
        return items or None
    if kind == "map":
        base = prefix if shape.serialization.get("flattened") else f"{prefix}.entry"
        out_map = {}
        i = 1
        while f"{base}.{i}.key" in form:
            out_map[form[f"{base}.{i}.key"]] = _read(shape.value, f"{base}.{i}.value", form)
            i += 1
        return out_map or None
    if prefix not in form:
        return None
    text = form[prefix]
    try:
        if kind in ("integer", "long"):
            return int(text)
        if kind in ("double", "float"):
            return float(text)
    except ValueError:
        raise SerializationException(f"{prefix} must be a number, not {text!r}.") from None
    if kind == "boolean":
        return text.lower() == "true"
    return text


def encode(
    service: ServiceModel, op: OperationModel, result: dict[str, Any] | bytes, request_id: str
) -> bytes:
    """The XML answer of ``op`` carrying ``result`` (shaped by the output shape)."""
    data = json.loads(result) if isinstance(result, bytes) else result
    root = ET.Element(f"{op.name}Response", xmlns=_namespace(service))
    shape = op.output_shape
    if shape is not None:
        wrapper = shape.serialization.get("resultWrapper", f"{op.name}Result")
        _write(ET.SubElement(root, wrapper), shape, data)
    meta = ET.SubElement(root, "ResponseMetadata")
    ET.SubElement(meta, "RequestId").text = request_id
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _write(node: ET.Element, shape: Shape, value: Any) -> None:
    kind = shape.type_name
    if kind == "structure":
        for name, member in shape.members.items():
            if value.get(name) is None:
                continue
            key = member.serialization.get("name", name)
            if member.type_name == "list" and member.serialization.get("flattened"):
                for item in value[name]:
                    _write(ET.SubElement(node, key), member.member, item)
                continue
            _write(ET.SubElement(node, key), member, value[name])
    elif kind == "list":
        tag = shape.member.serialization.get("name", "member")
        for item in value:
            _write(ET.SubElement(node, tag), shape.member, item)
    elif kind == "map":
        for k, v in value.items():
            entry = ET.SubElement(node, "entry")
            ET.SubElement(entry, "key").text = str(k)
            _write(ET.SubElement(entry, "value"), shape.value, v)
    elif kind == "boolean":
        node.text = "true" if value else "false"
    elif kind == "timestamp" and isinstance(value, int | float):
        node.text = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    else:
        node.text = str(value)


def encode_error(service: ServiceModel | None, error: AwsError, request_id: str) -> bytes:
    """The Query error document of ``error`` (``Sender`` for a 4xx, ``Receiver`` otherwise);
    without a ``service`` (an action no service serves) it names no XML namespace."""
    root = ET.Element("ErrorResponse", xmlns=_namespace(service)) if service else ET.Element("ErrorResponse")
    err = ET.SubElement(root, "Error")
    ET.SubElement(err, "Type").text = "Sender" if error.status < 500 else "Receiver"
    ET.SubElement(err, "Code").text = AUTH_CODES.get(error.code, error.code)
    ET.SubElement(err, "Message").text = error.message
    ET.SubElement(root, "RequestId").text = request_id
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _namespace(service: ServiceModel) -> str:
    return service.metadata.get("xmlNamespace") or (
        f"http://{service.endpoint_prefix}.amazonaws.com/doc/{service.api_version}/"
    )
