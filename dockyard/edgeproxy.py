"""Envoy's settings for a listener that faces clients from outside the mesh: the ALB listeners
of ``edge/`` and App Mesh's virtual gateways in ``mesh/``, after Envoy's guide "Configuring
Envoy as an edge proxy". Plain JSON (proto3 JSON names): the edge writes its resources as
dicts, the mesh merges them into its protobuf messages."""

from __future__ import annotations

from typing import Any

__all__ = ["BUFFER_LIMIT", "connection_manager"]

BUFFER_LIMIT = 32768  # bytes per connection, each way (listener and upstream cluster)


def connection_manager(idle_timeout: int = 60, drop_invalid_headers: bool = False) -> dict[str, Any]:
    """HttpConnectionManager fields: the client's address appended to X-Forwarded-For, paths
    normalized and slashes merged before routes match (an escaped slash answered with a
    redirect to the unescaped path), header names with underscores refused (dropped with
    ``drop_invalid_headers``), 10 s to send the headers, 300 s stream idle timeout,
    ``idle_timeout`` seconds for an idle connection, bounded HTTP/2 streams and windows."""
    return {
        "use_remote_address": True,
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_REDIRECT",
        "request_headers_timeout": "10s",
        "stream_idle_timeout": "300s",
        "common_http_protocol_options": {
            "idle_timeout": f"{idle_timeout}s",
            "headers_with_underscores_action": "DROP_HEADER" if drop_invalid_headers else "REJECT_REQUEST",
        },
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            "initial_stream_window_size": 65536,
            "initial_connection_window_size": 1048576,
        },
    }
