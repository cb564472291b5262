"""The translation's JSON-able dicts as xDS protobuf messages (the typed configs' modules
imported so that ``Any`` fields resolve)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401 (registers the type)
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from google.protobuf.message import Message

__all__ = ["messages"]

_TYPES = {
    "clusters": cluster_pb2.Cluster,
    "endpoints": endpoint_pb2.ClusterLoadAssignment,
    "listeners": listener_pb2.Listener,
    "routes": route_pb2.RouteConfiguration,
}


def messages(resources: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, list[Message]]:
    return {
        kind: [json_format.ParseDict(r, _TYPES[kind]()) for r in resources.get(kind, ())] for kind in _TYPES
    }
