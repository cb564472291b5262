"""The edge's AWS/ApplicationELB metrics through the real ``aws cloudwatch`` CLI: requests
through a real ALB listener (the edge Envoy) to a real upstream are counted by target group and
by load balancer (docs/edge.md, "CloudWatch metrics")."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.support.edge import Upstream, curl, edge_port, target_group, tg_health, wait_for
from tests.support.server import Dockyard

NS = "AWS/ApplicationELB"


@pytest.fixture(scope="module")
def alb(dockyard: Dockyard) -> Iterator[tuple[str, str, int]]:
    """(load balancer dimension, target group dimension, listener port) of a new ALB forwarding
    to one healthy upstream."""
    up = Upstream("metrics")
    lb = dockyard.aws("elbv2", "create-load-balancer", "--name", "edge-metrics",
                      "--type", "application")["LoadBalancers"][0]["LoadBalancerArn"]
    tg = target_group(dockyard, "edge-metrics", up.port, path="/health")
    dockyard.aws("elbv2", "register-targets", "--target-group-arn", tg, "--targets",
                 f"Id=127.0.0.1,Port={up.port}")
    port = edge_port()
    forward = json.dumps([{"Type": "forward", "TargetGroupArn": tg}])
    listener = dockyard.aws("elbv2", "create-listener", "--load-balancer-arn", lb, "--protocol", "HTTP",
                            "--port", str(port), "--default-actions", forward)["Listeners"][0]["ListenerArn"]
    wait_for(lambda: tg_health(dockyard, tg).get(f"127.0.0.1:{up.port}", {}).get("State") == "healthy",
             what="a healthy target")
    try:
        yield lb.split(":loadbalancer/", 1)[1], tg.split(":", 5)[5], port
    finally:
        dockyard.aws("elbv2", "delete-listener", "--listener-arn", listener)
        dockyard.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb)
        dockyard.aws("elbv2", "delete-target-group", "--target-group-arn", tg)
        up.stop()


def total(dockyard: Dockyard, name: str, dims: dict[str, str], stat: str = "Sum") -> float:
    now = time.time()
    out = dockyard.aws(
        "cloudwatch", "get-metric-statistics", "--namespace", NS, "--metric-name", name,
        "--start-time", datetime.fromtimestamp(now - 600, UTC).isoformat(),
        "--end-time", datetime.fromtimestamp(now + 60, UTC).isoformat(),
        "--period", "60", "--statistics", stat,
        "--dimensions", *(f"Name={k},Value={v}" for k, v in dims.items()),
    )
    return sum(p[stat] for p in out["Datapoints"])


def test_requests_through_the_listener_are_counted(dockyard: Dockyard, alb: tuple[str, str, int]) -> None:
    lb, tg, port = alb
    wait_for(lambda: curl(f"http://127.0.0.1:{port}/").stdout == "metrics", what="the listener forwarding")
    for _ in range(9):
        assert curl(f"http://127.0.0.1:{port}/x").stdout == "metrics"
    want = 10  # the first request included
    for dims in ({"TargetGroup": tg}, {"TargetGroup": tg, "LoadBalancer": lb}, {"LoadBalancer": lb}):
        wait_for(lambda d=dims: total(dockyard, "RequestCount", d) >= want, timeout=60,
                 what=f"RequestCount by {dims}")
        assert total(dockyard, "RequestCount", dims) == want
    assert total(dockyard, "HTTPCode_Target_2XX_Count", {"TargetGroup": tg}) == want
    assert total(dockyard, "HTTPCode_ELB_5XX_Count", {"LoadBalancer": lb}) == 0
    assert total(dockyard, "RequestCountPerTarget", {"TargetGroup": tg}) == want  # one healthy target
    assert total(dockyard, "HealthyHostCount", {"TargetGroup": tg}, "Maximum") == 1
    listed = dockyard.aws("cloudwatch", "list-metrics", "--namespace", NS, "--metric-name", "RequestCount")
    dim_sets = [{d["Name"]: d["Value"] for d in m["Dimensions"]} for m in listed["Metrics"]]
    assert {"TargetGroup": tg} in dim_sets
    assert {"LoadBalancer": lb} in dim_sets
    assert {"TargetGroup": tg, "LoadBalancer": lb} in dim_sets
