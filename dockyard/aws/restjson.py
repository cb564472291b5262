"""REST-JSON (App Mesh, EventBridge Scheduler): each operation has its own method and path
(``GET /v20190125/meshes``, ``PUT /v20190125/meshes/{meshName}``), its members placed by the
model in the path, the query string, headers or the JSON body.

:class:`Routes` compiles a service's ``http.requestUri`` templates once; :func:`parse` gathers
the members from where the model puts them, :func:`encode` places the answer's members back
(``location: header`` members as headers, ``statusCode`` as the status, the rest or the
``payload`` member as the JSON body). Errors are ``{"message"}`` with the code in
``x-amzn-ErrorType``, as AWS sends them.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote

from botocore.model import OperationModel, ServiceModel, Shape

from dockyard import jsonbound
from dockyard.aws.errors import AwsError, SerializationException

__all__ = ["CONTENT_TYPE", "Routes", "encode", "encode_error", "parse"]

CONTENT_TYPE = "application/json"
_LABEL = re.compile(r"\{([^}+]+)(\+?)\}")


class Routes:
    """The operations of some REST-JSON services, matched by method and path."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], dict[str, str], ServiceModel, OperationModel]] = []

    def __len__(self) -> int:
        return len(self._routes)

    def add(self, service: ServiceModel, op: OperationModel) -> None:
        uri = op.http["requestUri"]
        path, _, fixed = uri.partition("?")
        pattern, pos = "", 0
        for m in _LABEL.finditer(path):
            pattern += re.escape(path[pos:m.start()])
            pattern += f"(?P<{_group(m.group(1))}>{'.+' if m.group(2) else '[^/]+'})"
            pos = m.end()
        pattern += re.escape(path[pos:])
        required = {k: v[0] for k, v in parse_qs(fixed, keep_blank_values=True).items()}
        self._routes.append((op.http["method"], re.compile(pattern + "$"), required, service, op))
        # The most specific first: fixed query parameters, then longer literal templates.
        self._routes.sort(key=lambda r: (-len(r[2]), -len(r[1].pattern)))

    def match(
        self, method: str, raw_path: str, query: dict[str, list[str]]
    ) -> tuple[ServiceModel, OperationModel, dict[str, str]] | None:
        """The service, operation and path labels of a request, None when nothing matches."""
        for m, pattern, fixed, service, op in self._routes:
            if m != method:
                continue
            found = pattern.match(raw_path)
            if found and all(k in query and (v == "" or query[k][0] == v) for k, v in fixed.items()):
                labels = {_ungroup(k): unquote(v) for k, v in found.groupdict().items()}
                return service, op, labels
        return None


def _group(label: str) -> str:
    return "L_" + re.sub(r"\W", lambda c: f"_{ord(c.group())}_", label)


def _ungroup(group: str) -> str:
    return re.sub(r"_(\d+)_", lambda c: chr(int(c.group(1))), group[2:])


def parse(
    op: OperationModel, labels: dict[str, str], query: dict[str, list[str]], headers: dict[str, str],
    body: bytes,
) -> dict[str, Any]:
    """The parameters of ``op`` from where its model puts each member."""
    shape = op.input_shape
    if shape is None:
        return {}
    payload = shape.serialization.get("payload")
    params: dict[str, Any] = {}
    if body.strip():
        try:
            data = jsonbound.loads(body, surrogates=True)
        except ValueError as e:
            raise SerializationException(f"Request body is not valid JSON: {e}.") from None
        if payload:
            params[payload] = data
        elif isinstance(data, dict):
            params.update(data)
        else:
            raise SerializationException("Request body must be a JSON object.")
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        key = member.serialization.get("name", name)
        if where == "uri" and key in labels:
            params[name] = _scalar(member, labels[key])
        elif where == "querystring" and key in query:
            values = query[key]
            params[name] = [_scalar(member.member, v) for v in values] if member.type_name == "list" \
                else _scalar(member, values[0])
        elif where == "header" and key.lower() in headers:
            params[name] = _scalar(member, headers[key.lower()])
    return params


def _scalar(shape: Shape, text: str) -> Any:
    try:
        if shape.type_name in ("integer", "long"):
            return int(text)
        if shape.type_name in ("double", "float"):
            return float(text)
    except ValueError:
        raise SerializationException(f"{text!r} is not a number.") from None
    if shape.type_name == "boolean":
        return text.lower() == "true"
    return text


def encode(op: OperationModel, result: dict[str, Any] | bytes) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and JSON body of ``op``'s answer ``result``."""
    data: dict[str, Any] = json.loads(result) if isinstance(result, bytes) else dict(result)
    status = int(op.http.get("responseCode", 200))
    headers: dict[str, str] = {}
    shape = op.output_shape
    if shape is None:
        return status, headers, b"{}"
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        if where == "header" and name in data:
            headers[member.serialization.get("name", name)] = str(data.pop(name))
        elif where == "statusCode" and name in data:
            status = int(data.pop(name))
    payload = shape.serialization.get("payload")
    body = data.get(payload) if payload else data
    return status, headers, json.dumps(body if body is not None else {}, separators=(",", ":")).encode()


def encode_error(error: AwsError) -> tuple[dict[str, str], bytes]:
    body = {k: v for k, v in error.body().items() if k != "__type"}
    return {"x-amzn-ErrorType": error.code}, json.dumps(body, separators=(",", ":")).encode()
