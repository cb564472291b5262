"""What a sidecar needs to send spans: Envoy's Zipkin tracer on each HTTP connection manager and
the collector's cluster in the bootstrap (pure).

The settings ``trace_collector`` and ``trace_sampling`` (docs/traces.md) become a
:class:`Tracing` (:func:`tracing_of`; None when sampling is 0: no tracer at all). Each HTTP
connection manager the snapshot builds then carries ``tracing`` with the provider
``envoy.tracers.zipkin`` (``collector_endpoint_version: HTTP_JSON``, 128-bit trace ids,
``shared_span_context``: the server sidecar's span shares the client's span id, as Zipkin's
own instrumentation does; B3 headers are propagated by Envoy) and ``random_sampling``; and
each listener says its direction (an egress listener ``OUTBOUND``: CLIENT spans; an ingress one
``INBOUND``: SERVER spans). The tracer names the cluster :data:`COLLECTOR_CLUSTER`, which the
bootstrap defines (:func:`collector_cluster`): Envoy's Zipkin tracer wants a cluster it knows
when the listener arrives. Such a bootstrap also puts :data:`NODE_LABEL` in the node's
metadata; a sidecar connected without it (started before tracing, or with sampling 0, and
adopted) gets its listeners without the tracer (:func:`traced`), which it would NACK.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from envoy.config.trace.v3 import http_tracer_pb2, zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.type.v3 import percent_pb2
from google.protobuf import any_pb2

__all__ = ["COLLECTOR_CLUSTER", "NODE_LABEL", "SPANS_PATH", "ZIPKIN", "Tracing", "collector_cluster",
           "external", "traced", "tracing_of"]

COLLECTOR_CLUSTER = "dockyard_traces"
NODE_LABEL = "dockyard.traces"  # in node.metadata of a sidecar whose bootstrap has the cluster
SPANS_PATH = "/api/v2/spans"
ZIPKIN = "envoy.tracers.zipkin"


@dataclass(frozen=True)
class Tracing:
    """The tracer of every HTTP connection manager: ``sampling`` percent of requests, spans
    POSTed to ``path`` of :data:`COLLECTOR_CLUSTER` with ``Host: hostname`` ("": the cluster's
    name)."""

    sampling: float = 100.0
    path: str = SPANS_PATH
    hostname: str = ""

    def hcm(self) -> hcm.HttpConnectionManager.Tracing:
        config = zipkin_pb2.ZipkinConfig(
            collector_cluster=COLLECTOR_CLUSTER, collector_endpoint=self.path, trace_id_128bit=True,
            collector_endpoint_version=zipkin_pb2.ZipkinConfig.HTTP_JSON, collector_hostname=self.hostname)
        config.shared_span_context.value = True
        typed = any_pb2.Any()
        typed.Pack(config, deterministic=True)
        return hcm.HttpConnectionManager.Tracing(
            provider=http_tracer_pb2.Tracing.Http(name=ZIPKIN, typed_config=typed),
            random_sampling=percent_pb2.Percent(value=self.sampling))


def external(url: str) -> tuple[str, int, str] | None:
    """``(host, port, path)`` of a ``trace_collector`` URL (port 9411, Zipkin's, when none;
    path ``/api/v2/spans`` when none or ``/``); None for "" (Dockyard's own collector)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"{url!r} is not an http:// URL")
    path = parts.path if parts.path not in ("", "/") else SPANS_PATH
    return parts.hostname, parts.port or 9411, path


def tracing_of(collector: str, sampling: float) -> Tracing | None:
    """The sidecars' :class:`Tracing` from the settings; None when ``sampling`` is 0."""
    if not 0 <= sampling <= 100:
        raise ValueError(f"sampling {sampling} is not a percentage")
    if sampling == 0:
        return None
    target = external(collector)
    if target is None:
        return Tracing(sampling)
    return Tracing(sampling, target[2], target[0])


def collector_cluster(host: str, port: int, connect_timeout: str = "1s") -> dict[str, Any]:
    """The bootstrap's cluster :data:`COLLECTOR_CLUSTER` (JSON-able): STATIC for an address,
    STRICT_DNS for a name."""
    if not host or not 0 < port < 65536:
        raise ValueError(f"collector {host}:{port} is not an address")
    kind = "STRICT_DNS"
    with contextlib.suppress(ValueError):
        kind = "STATIC" if ipaddress.ip_address(host) else kind
    address = {"socket_address": {"address": host, "port_value": port}}
    return {"name": COLLECTOR_CLUSTER, "type": kind,
            "connect_timeout": connect_timeout,
            "load_assignment": {"cluster_name": COLLECTOR_CLUSTER,
                                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]}}


def traced(labels: frozenset[str] | None) -> bool:
    """Whether a node may get the tracer: its bootstrap's metadata keys (None: not connected
    yet, so a bootstrap of now, which has the cluster whenever tracing is on) name
    :data:`NODE_LABEL`."""
    return labels is None or NODE_LABEL in labels
