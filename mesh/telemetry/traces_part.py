"""Traces inside the mesh part: the settings read, the collector's routes on the control app,
and the sidecars told where to send (called by :func:`mesh.part.install`).

* ``trace_sampling`` 0: no tracer in the sidecars, no collector cluster; the API still answers
  (an empty store).
* ``trace_collector`` "": Dockyard's own collector (:class:`~mesh.telemetry.traces_api.Collector`,
  ``/api/v2`` on the control port, the sidecars' POSTs on their gateway); a URL: the sidecars'
  bootstrap names that host and port, the tracer its path (Zipkin's ``/api/v2/spans`` or
  Jaeger's Zipkin-compatible endpoint), and Dockyard's own store stays empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mesh.sidecars import Sidecars
from mesh.telemetry.traces import Bounds, TraceStore
from mesh.telemetry.traces_api import Collector, ExternalCollector
from mesh.telemetry.traces_envoy import Tracing, external, tracing_of

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["Traces", "install"]


@dataclass
class Traces:
    store: TraceStore
    collector: Collector
    tracing: Tracing | None  # what the snapshots put on every HTTP listener


def _control_port(platform: Platform) -> int:
    if platform.config.control_port:
        return platform.config.control_port
    for name, url in platform.endpoints:  # a port 0 configured: the one it got
        if name == "control":
            return urlsplit(url).port or 0
    return 0


def install(platform: Platform, sidecars: Sidecars) -> Traces:
    """The store and the collector's routes; the sidecars' target when tracing is on. The mesh's
    own context stops the collector's listeners (``Traces.collector.stop()``)."""
    cfg = platform.config
    store = TraceStore(Bounds(spans=cfg.trace_max_spans, bytes=cfg.trace_max_bytes, age=cfg.trace_max_age))
    collector = Collector(store, cfg.trace_max_body, host=cfg.host, port=lambda: _control_port(platform),
                          limits=platform.listener_limits())
    collector.add_routes(platform.control.router)
    tracing = tracing_of(cfg.trace_collector, cfg.trace_sampling)
    if tracing is not None:
        target = external(cfg.trace_collector)
        sidecars.traces = collector if target is None else ExternalCollector(target[0], target[1])
    return Traces(store, collector, tracing)
