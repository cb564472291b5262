"""Per-revision answers of a service from the sidecars' metrics: what the runner's canary
analysis reads (``runner.seams.RevisionMetrics``, structurally; wired by the assembly).

A task's sidecar counts the requests its ingress served (``RequestCount``,
``HTTPCode_Target_5XX_Count``, ``TargetResponseTime``) under ``ClusterName``/``ServiceName``
and Dockyard's ``TaskDefinitionRevision`` (``mesh.telemetry.metrics_envoy``: all its ports);
:meth:`RevisionMetrics.window` sums one revision's over a window of the metric store (whose
buckets are 10 s: a window is the buckets that start in it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mesh.telemetry.cloudwatch import total
from mesh.telemetry.metrics_envoy import NAMESPACE
from mesh.telemetry.metrics_store import Store, key, percentile

__all__ = ["RevisionMetrics", "Window"]


@dataclass(frozen=True)
class Window:
    requests: float = 0.0
    errors: float = 0.0
    p99: float | None = None


class RevisionMetrics:
    """See module docstring; ``store()`` is the telemetry's metric store (None: no telemetry,
    every window empty)."""

    def __init__(self, store: Callable[[], Store | None]) -> None:
        self.store = store

    def window(self, cluster: str, service: str, revision: int, start: float, end: float) -> Window:
        store = self.store()
        if store is None:
            return Window()
        dims = {"ClusterName": cluster, "ServiceName": service, "TaskDefinitionRevision": str(revision)}
        requests = total(store, key(NAMESPACE, "RequestCount", dims), start, end)
        errors = total(store, key(NAMESPACE, "HTTPCode_Target_5XX_Count", dims), start, end)
        latency = total(store, key(NAMESPACE, "TargetResponseTime", dims), start, end)
        return Window(requests.total, errors.total, percentile(latency, 99) if latency.count > 0 else None)
