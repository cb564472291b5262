"""edge.metrics: the edge Envoy's counters -> AWS/ApplicationELB datapoints."""

from __future__ import annotations

from edge.metrics import Group, Topology, datapoints, deltas, dimension, parse

LB = "app/web/50dc6c495c0c9188"
TG = "targetgroup/api/73e2d6bc24d8a067"
TOPO = Topology(((LB, ("l1", "l2"), (Group(TG, "tg_73e2d6bc24d8a067", 2, 1),)),))


def values(points: list, name: str) -> dict:
    return {p.dimensions: p.value for p in points if p.name == name}


def test_dimension_of_arns() -> None:
    arn = "arn:aws:elasticloadbalancing:us-east-1:000000000000:"
    assert dimension(arn + "loadbalancer/" + LB) == LB
    assert dimension(arn + TG) == TG


def test_parse_keeps_counters_and_gauges_only() -> None:
    body = {"stats": [{"name": "a", "value": 3}, {"name": "b", "value": 1.5},
                      {"histograms": {"computed_quantiles": []}}, {"name": "c", "value": "x"}]}
    assert parse(body) == {"a": 3.0, "b": 1.5}
    assert parse({}) == {}


def test_deltas_subtract_and_take_a_reset_whole() -> None:
    assert deltas({"a": 5, "b": 9}, {"a": 8, "b": 2, "c": 4}) == {"a": 3, "b": 2, "c": 4}


def test_datapoints_by_group_and_balancer() -> None:
    changes = {
        "cluster.tg_73e2d6bc24d8a067.upstream_rq_total": 10,
        "cluster.tg_73e2d6bc24d8a067.upstream_rq_2xx": 7,
        "cluster.tg_73e2d6bc24d8a067.upstream_rq_5xx": 3,
        "http.l1.downstream_rq_total": 9,
        "http.l2.downstream_rq_total": 4,
        "http.l1.downstream_rq_5xx": 5,  # 3 from the target, 2 the balancer's own
        "http.l2.downstream_rq_4xx": 1,
        "cluster.other.upstream_rq_total": 99,  # not a group of this balancer
    }
    points = datapoints(TOPO, changes)
    by_tg, by_lb = (("TargetGroup", TG),), (("LoadBalancer", LB),)
    both = (("LoadBalancer", LB), ("TargetGroup", TG))
    assert values(points, "RequestCount") == {by_tg: 10, both: 10, by_lb: 13}
    assert values(points, "RequestCountPerTarget") == {by_tg: 5, both: 5}
    assert values(points, "HTTPCode_Target_2XX_Count")[by_tg] == 7
    assert values(points, "HTTPCode_Target_4XX_Count")[both] == 0
    assert values(points, "HTTPCode_ELB_5XX_Count") == {by_lb: 2}
    assert values(points, "HTTPCode_ELB_4XX_Count") == {by_lb: 1}
    assert values(points, "HealthyHostCount") == {by_tg: 2, both: 2}
    assert values(points, "UnHealthyHostCount") == {by_tg: 1, both: 1}


def test_idle_group_shows_zero_and_fails_open_per_target() -> None:
    topo = Topology(((LB, ("l1",), (Group(TG, "tg_x", 0, 4),)),))
    points = datapoints(topo, {"cluster.tg_x.upstream_rq_total": 8})
    assert values(points, "RequestCountPerTarget")[(("TargetGroup", TG),)] == 2  # none healthy: all 4
    assert values(datapoints(topo, {}), "RequestCount")[(("TargetGroup", TG),)] == 0
    none = Topology(((LB, ("l1",), (Group(TG, "tg_x", 0, 0),)),))
    assert "RequestCountPerTarget" not in {p.name for p in datapoints(none, {})}
