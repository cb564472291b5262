"""Zipkin v2's span, as a JSON Schema (draft 2020-12), checked by ``jsonschema_rs``.

The definitions are those of Zipkin's published API (``zipkin2-api.yaml`` in openzipkin's
``zipkin-api``: ``Endpoint``, ``Annotation``, ``Tags``, ``Span``, ``ListOfSpans``), moved from
Swagger 2's ``definitions`` to ``$defs``, with what Zipkin's own collector enforces on top of
the published lengths: ``traceId`` and ``id`` are required, every id is hex (16 characters, or
16 or 32 for a trace id), timestamps and durations are non-negative 64-bit integers, an
annotation has both fields, and unknown span fields are refused (a typo is not a span). The
sizes of names, tags and annotations are bounded so that one span cannot take the store.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_ANNOTATIONS", "MAX_NAME", "MAX_TAGS", "MAX_TAG_VALUE", "SCHEMA"]

MAX_NAME = 256  # span and service names
MAX_TAGS = 128
MAX_TAG_VALUE = 8192
MAX_ANNOTATIONS = 256
_INT64 = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_HEX16 = {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://dockyard.invalid/zipkin2/list-of-spans",
    "$ref": "#/$defs/ListOfSpans",
    "$defs": {
        "Endpoint": {
            "type": "object",
            "properties": {
                "serviceName": {"type": "string", "maxLength": MAX_NAME},
                "ipv4": {"type": "string", "maxLength": 15},
                "ipv6": {"type": "string", "maxLength": 45},
                "port": {"type": "integer", "minimum": 0, "maximum": 65535},
            },
        },
        "Annotation": {
            "type": "object",
            "required": ["timestamp", "value"],
            "properties": {
                "timestamp": _INT64,
                "value": {"type": "string", "maxLength": MAX_TAG_VALUE},
            },
        },
        "Tags": {
            "type": "object",
            "maxProperties": MAX_TAGS,
            "propertyNames": {"maxLength": MAX_NAME},
            "additionalProperties": {"type": "string", "maxLength": MAX_TAG_VALUE},
        },
        "ListOfSpans": {"type": "array", "items": {"$ref": "#/$defs/Span"}},
        "Span": {
            "type": "object",
            "required": ["traceId", "id"],
            "additionalProperties": False,
            "properties": {
                "traceId": {"type": "string", "minLength": 16, "maxLength": 32,
                            "pattern": "^([0-9a-fA-F]{16}|[0-9a-fA-F]{32})$"},
                "name": {"type": "string", "maxLength": MAX_NAME},
                "parentId": _HEX16,
                "id": _HEX16,
                "kind": {"type": "string", "enum": ["CLIENT", "SERVER", "PRODUCER", "CONSUMER"]},
                "timestamp": _INT64,
                "duration": _INT64,
                "debug": {"type": "boolean"},
                "shared": {"type": "boolean"},
                "localEndpoint": {"$ref": "#/$defs/Endpoint"},
                "remoteEndpoint": {"$ref": "#/$defs/Endpoint"},
                "annotations": {"type": "array", "maxItems": MAX_ANNOTATIONS,
                                "items": {"$ref": "#/$defs/Annotation"}},
                "tags": {"$ref": "#/$defs/Tags"},
            },
        },
    },
}
