"""Per-revision windows from the metric store (mesh.revisions), fed as the collector feeds it:
Envoy readings -> deltas -> CloudWatch samples -> store."""

from __future__ import annotations

from mesh.revisions import RevisionMetrics, Window
from mesh.telemetry.metrics_collector import record
from mesh.telemetry.metrics_envoy import Node, Reading, deltas, samples
from mesh.telemetry.metrics_store import Store


def flush(
    store: Store, node: Node, now: float, total: float, errors: float, fast: float, slow: float
) -> None:
    """One flush of a sidecar's ingress stats: ``fast`` answers under 10 ms, ``slow`` under 1 s."""
    readings = {
        "cluster.local_http.upstream_rq_total": Reading("counter", value=total),
        "cluster.local_http.upstream_rq_5xx": Reading("counter", value=errors),
        "cluster.local_http.upstream_rq_time": Reading(
            "histogram", count=fast + slow, total=fast * 5 + slow * 800,
            buckets=((10.0, fast), (1000.0, fast + slow)),
        ),
    }
    record(store, samples(node, deltas({}, readings)), now)


def test_each_revision_has_its_own_window() -> None:
    store = Store()
    v1 = Node("arn:task/a", "c", "web", 1)
    v2 = Node("arn:task/b", "c", "web", 2)
    flush(store, v1, 1000.0, 900, 0, 900, 0)
    flush(store, v2, 1000.0, 100, 20, 50, 50)
    flush(store, v2, 1060.0, 100, 100, 0, 100)  # after the window
    m = RevisionMetrics(lambda: store)
    base, canary = m.window("c", "web", 1, 990.0, 1050.0), m.window("c", "web", 2, 990.0, 1050.0)
    assert (base.requests, base.errors) == (900, 0)
    assert base.p99 is not None and base.p99 <= 10.0
    assert (canary.requests, canary.errors) == (100, 20)
    assert canary.p99 is not None and 10.0 < canary.p99 <= 1000.0
    assert m.window("c", "web", 3, 990.0, 1050.0) == Window()
    assert m.window("other", "web", 1, 990.0, 1050.0) == Window()


def test_without_telemetry_every_window_is_empty() -> None:
    assert RevisionMetrics(lambda: None).window("c", "web", 1, 0.0, 1e10) == Window()
