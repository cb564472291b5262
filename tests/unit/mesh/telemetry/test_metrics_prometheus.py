"""The sidecars' series on ``/metrics`` (``mesh.telemetry.metrics_prometheus.families``, pure) and
``dockyard mesh stats``' rows (``mesh.stats_cli``, pure)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from mesh.stats_cli import queries, stats_rows
from mesh.telemetry.metrics_envoy import Node, Reading
from mesh.telemetry.metrics_prometheus import families

WEB = Node("task/web1", "c1", "web", 2)
FRONT = Node("task/front1", "c1", "front", 1)


def text(readings) -> str:
    nodes = {n.task_arn: n for n in (WEB, FRONT)}

    class Exporter:
        def collect(self):
            return families(readings, nodes.get)

    registry = CollectorRegistry()
    registry.register(Exporter())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def test_series_are_summed_per_label_set_with_status_classes_and_histograms():
    out = text({
        "task/web1": {"cluster.local_web.upstream_rq_total": Reading("counter", value=7),
                      "cluster.local_web.upstream_rq_5xx": Reading("counter", value=2),
                      "cluster.local_web.external.upstream_rq_5xx": Reading("counter", value=2),
                      "cluster.local_web.upstream_rq_time": Reading(
                          "histogram", count=7, total=70, buckets=((5.0, 3), (25.0, 7)))},
        "task/front1": {"cluster.sc/ns.local/web.upstream_rq_total": Reading("counter", value=7),
                        "cluster.sc/ns.local/web.upstream_cx_active": Reading("gauge", value=1)},
        "task/gone": {"cluster.local_web.upstream_rq_total": Reading("counter", value=99)},
    })
    web = 'cluster="c1",revision="2",route="local_web",service="web",target="self"'
    front = 'cluster="c1",revision="1",route="sc/ns.local/web",service="front",target="web"'
    assert f"dockyard_mesh_requests_total{{{web}}} 7.0" in out
    assert f"dockyard_mesh_requests_total{{{front}}} 7.0" in out
    code = 'cluster="c1",code="5xx",revision="2",route="local_web",service="web",target="self"'
    assert f"dockyard_mesh_responses_total{{{code}}} 2.0" in out  # the sub-scope's not again
    le = 'cluster="c1",le="{}",revision="2",route="local_web",service="web",target="self"'
    assert f"dockyard_mesh_request_duration_milliseconds_bucket{{{le.format('5')}}} 3.0" in out
    assert f"dockyard_mesh_request_duration_milliseconds_bucket{{{le.format('+Inf')}}} 7.0" in out
    assert f"dockyard_mesh_active_connections{{{front}}} 1.0" in out
    assert "99" not in out  # a node the view does not know


def test_mesh_stats_rows_per_revision():
    qs = queries("web", ["1", "2"], 60)
    assert [q["Id"] for q in qs] == ["r0", "e0", "p0", "q0", "r1", "e1", "p1", "q1"]
    assert all(q["MetricStat"]["Period"] == 60 for q in qs)
    results = [{"Id": "r0", "Values": [100.0]}, {"Id": "e0", "Values": [5.0]}, {"Id": "p0", "Values": [1.24]},
               {"Id": "q0", "Values": [9.0]}, {"Id": "r1", "Values": []}, {"Id": "e1", "Values": []},
               {"Id": "p1", "Values": []}, {"Id": "q1", "Values": []}]
    assert stats_rows(["1", "2"], results) == [
        {"revision": "1", "requests": 100, "errors": 5, "error_rate": 5.0, "p50_ms": 1.2, "p99_ms": 9.0},
        {"revision": "2", "requests": 0, "errors": 0, "error_rate": 0.0, "p50_ms": None, "p99_ms": None},
    ]
