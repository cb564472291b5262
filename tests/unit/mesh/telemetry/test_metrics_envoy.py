"""Envoy's streamed stats -> CloudWatch samples (``mesh.telemetry.metrics_envoy``), from real
``StreamMetricsMessage`` protobufs built with ``metrics_proto``."""

from __future__ import annotations

import math
import re

from mesh.telemetry import metrics_envoy as me
from mesh.telemetry import metrics_proto
from mesh.telemetry.metrics_collector import Collector, sink_config
from mesh.telemetry.metrics_envoy import Node, Reading
from mesh.telemetry.metrics_store import Store, key, statistic

NODE = Node("arn:aws:ecs:us-east-1:000000000000:task/c1/t1", "c1", "web", 3)


def message(counters: dict[str, float], gauges: dict[str, float] | None = None,
            histograms: dict[str, tuple[int, float, list[tuple[float, int]]]] | None = None,
            node: str = "") -> metrics_proto.StreamMetricsMessage:
    msg = metrics_proto.StreamMetricsMessage()
    if node:
        msg.identifier.node.id = node
    for name, v in counters.items():
        f = msg.envoy_metrics.add(name=name, type=0)
        f.metric.add().counter.value = v
    for name, v in (gauges or {}).items():
        f = msg.envoy_metrics.add(name=name, type=1)
        f.metric.add().gauge.value = v
    for name, (count, total, buckets) in (histograms or {}).items():
        f = msg.envoy_metrics.add(name=name, type=4)
        h = f.metric.add().histogram
        h.sample_count, h.sample_sum = count, total
        for bound, cum in buckets:
            h.bucket.add(upper_bound=bound, cumulative_count=cum)
    return metrics_proto.decode(msg.SerializeToString())


def test_readings_of_each_kind():
    got = me.readings(message({"cluster.local_web.upstream_rq_total": 7},
                              {"cluster.local_web.upstream_cx_active": 2},
                              {"cluster.local_web.upstream_rq_time": (3, 60.0, [(10, 1), (50, 3)])}))
    assert got == {
        "cluster.local_web.upstream_rq_total": Reading("counter", value=7),
        "cluster.local_web.upstream_cx_active": Reading("gauge", value=2),
        "cluster.local_web.upstream_rq_time": Reading("histogram", count=3, total=60.0,
                                                      buckets=((10, 1), (50, 3))),
    }


def test_deltas_subtract_counters_and_histogram_buckets_and_keep_gauges():
    before = {"c": Reading("counter", value=5), "g": Reading("gauge", value=4),
              "h": Reading("histogram", count=2, total=20, buckets=((10, 1), (50, 2)))}
    now = {"c": Reading("counter", value=8), "g": Reading("gauge", value=1),
           "h": Reading("histogram", count=6, total=150, buckets=((10, 2), (50, 5)))}
    d = me.deltas(before, now)
    assert d["c"].value == 3 and d["g"].value == 1
    # per bucket: 1 more <= 10, 2 more in (10, 50], 1 above 50
    assert (d["h"].count, d["h"].total, d["h"].buckets) == (4, 130, ((10, 1), (50, 2), (math.inf, 1)))


def test_a_counter_that_went_down_is_a_restart_taken_whole():
    d = me.deltas({"c": Reading("counter", value=50)}, {"c": Reading("counter", value=4)})
    assert d["c"].value == 4
    h = me.deltas({"h": Reading("histogram", count=9, total=9, buckets=((1, 9),))},
                  {"h": Reading("histogram", count=2, total=1, buckets=((1, 2),))})
    assert (h["h"].count, h["h"].buckets) == (2, ((1, 2),))


def test_ingress_samples_carry_the_revision_and_upstream_ones_the_target():
    changes = {"cluster.local_web.upstream_rq_5xx": Reading("counter", value=2),
               "cluster.sc/shop.local/pay.upstream_rq_total": Reading("counter", value=9),
               "cluster.am/m1/pay-v2.upstream_rq_total": Reading("counter", value=1),
               "cluster.dockyard_xds.upstream_rq_total": Reading("counter", value=100),
               "cluster.local_web.external.upstream_rq_5xx": Reading("counter", value=2),
               "cluster.sc/shop.local/pay.internal.upstream_rq_total": Reading("counter", value=9),
               "cluster.local_web.zone.a.b.upstream_rq_5xx": Reading("counter", value=2),
               "server.uptime": Reading("gauge", value=1)}
    got = {(s.name, s.dimensions): s.value for s in me.samples(NODE, changes)}
    svc = {"ClusterName": "c1", "ServiceName": "web"}
    rev = {"TaskDefinitionRevision": "3"}
    for d in ({"DiscoveryName": "web"}, svc, {**svc, "DiscoveryName": "web"}, {"DiscoveryName": "web", **rev},
              {**svc, **rev}):
        assert got[("HTTPCode_Target_5XX_Count", tuple(sorted(d.items())))] == 2
    for target, n in (("pay", 9), ("pay-v2", 1)):
        for d in ({"TargetDiscoveryName": target}, {"DiscoveryName": "web", "TargetDiscoveryName": target},
                  {**svc, "TargetDiscoveryName": target}):
            assert got[("RequestCount", tuple(sorted(d.items())))] == n
    assert len(got) == 5 + 3 + 3  # not the control plane's cluster, Envoy's sub-scopes or other stats


def test_discovery_name_is_the_service_connect_entrys_not_the_service_name():
    node = Node("arn:aws:ecs:us-east-1:000000000000:task/c1/t2", "c1", "shop-web", 4,
                (("http", "storefront"), ("admin", "")))
    got = {s.dimensions for s in me.samples(node, {
        "cluster.local_http.upstream_rq_5xx": Reading("counter", value=1),
        "cluster.local_admin.upstream_rq_5xx": Reading("counter", value=1),
        "cluster.sc/shop.local/pay.upstream_rq_total": Reading("counter", value=1)})}
    assert (("DiscoveryName", "storefront"),) in got
    assert (("DiscoveryName", "admin"),) in got  # no discoveryName: ECS's default, the port name
    assert (("ClusterName", "c1"), ("ServiceName", "shop-web")) in got
    assert (("ClusterName", "c1"), ("ServiceName", "shop-web"), ("TaskDefinitionRevision", "4")) in got
    assert (("DiscoveryName", "storefront"), ("TargetDiscoveryName", "pay")) in got  # the caller's
    assert not any(("DiscoveryName", "shop-web") in d for d in got)


def test_latency_samples_are_histograms_in_milliseconds():
    [s, *_] = me.samples(NODE, {"cluster.local_web.upstream_rq_time": Reading(
        "histogram", count=2, total=30, buckets=((10, 1), (50, 1)))})
    assert (s.name, s.kind, s.unit, s.buckets) == ("TargetResponseTime", "histogram", "Milliseconds",
                                                   ((10, 1), (50, 1)))


def test_the_inclusion_list_lets_only_the_mapped_stats_through():
    included = re.compile(me.INCLUDED)
    assert included.match("cluster.sc/ns.local/web.upstream_rq_5xx")
    assert included.match("cluster.local_web.outlier_detection.ejections_enforced_total")
    assert not included.match("cluster.local_web.upstream_rq_503")
    assert not included.match("http.ingress_web.downstream_rq_total")
    config = sink_config("dockyard_xds", 2)
    assert config["stats_flush_interval"] == "2s"
    sink = config["stats_sinks"][0]["typed_config"]
    assert sink["grpc_service"]["envoy_grpc"]["cluster_name"] == "dockyard_xds"


def test_the_collector_records_deltas_per_node_and_ignores_unknown_nodes():
    store = Store()
    clock = iter([1000.0, 1010.0, 1020.0])
    collector = Collector(store, lambda n: NODE if n == NODE.task_arn else None, clock=lambda: next(clock))
    stat = "cluster.local_web.upstream_rq_total"
    assert collector.flush(NODE.task_arn, message({stat: 5})) == 5
    assert collector.flush(NODE.task_arn, message({stat: 12})) == 5
    assert collector.flush("not-a-task", message({stat: 99})) == 0
    k = key("AWS/ECS", "RequestCount", {"DiscoveryName": "web"})
    assert [statistic(a, "Sum") for _, a in store.points(k, 0, 2000)] == [5, 7]
    assert "not-a-task" not in collector.last
