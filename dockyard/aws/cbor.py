"""Smithy RPC v2 CBOR: ``POST /service/<targetPrefix>/operation/<Operation>`` with header
``smithy-protocol: rpc-v2-cbor`` and CBOR bodies both ways (the protocol Cloud Map and
CloudWatch list first; botocore speaks it when a model lists it before JSON).

The handlers are the JSON ones: :func:`parse` gives them the same dict (CBOR timestamps,
tag 1, become epoch seconds as in JSON), :func:`encode` shapes their answer by the model
(members the output shape calls timestamps are sent as tag 1, as the protocol requires), and
errors are the same ``{"__type", "message"}`` envelope, in CBOR.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import cbor2
from botocore.model import OperationModel, Shape

from dockyard import jsonbound
from dockyard.aws.errors import AwsError, SerializationException

__all__ = ["CONTENT_TYPE", "encode", "encode_error", "parse", "route"]

CONTENT_TYPE = "application/cbor"
PREFIX = "/service/"


def route(raw_path: str) -> tuple[str, str] | None:
    """``(targetPrefix, operation)`` of an RPC v2 path, None for any other path."""
    if not raw_path.startswith(PREFIX):
        return None
    service, sep, name = raw_path[len(PREFIX):].partition("/operation/")
    if not sep or not service or not name or "/" in name:
        return None
    return service, name


def parse(body: bytes) -> dict[str, Any]:
    """The parameters of a CBOR request body (empty: none)."""
    if not body:
        return {}
    try:
        value = cbor2.loads(body)
        jsonbound.check(value, surrogates=True)  # the depth bound of JSON bodies
    except Exception as e:  # cbor2 raises several kinds for a malformed body
        raise SerializationException(f"Request body is not valid CBOR: {e}.") from None
    if not isinstance(value, dict):
        raise SerializationException("Request body must be a CBOR map.")
    return _plain(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def encode(op: OperationModel | None, result: dict[str, Any] | bytes) -> bytes:
    """A handler's answer as CBOR, timestamps tagged where ``op``'s output shape has them."""
    data = json.loads(result) if isinstance(result, bytes) else result
    shape = op.output_shape if op is not None else None
    return cbor2.dumps(_shaped(data, shape) if shape is not None else data)


def _shaped(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
        return cbor2.CBORTag(1, value)
    if kind == "structure" and isinstance(value, dict):
        members = shape.members
        return {k: (_shaped(v, members[k]) if k in members else v) for k, v in value.items()}
    if kind == "list" and isinstance(value, list):
        return [_shaped(v, shape.member) for v in value]
    if kind == "map" and isinstance(value, dict):
        return {k: _shaped(v, shape.value) for k, v in value.items()}
    return value


def encode_error(error: AwsError) -> bytes:
    return cbor2.dumps(error.body())
