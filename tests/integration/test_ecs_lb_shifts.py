"""ECS traffic-shifting deployments behind an Application Load Balancer
(``loadBalancers[].advancedConfiguration``): the real aws CLI and boto3, real Docker tasks, the
real edge Envoy. The session server's deployment minute is one second.

One load balancer, two ``ip`` target groups (blue, green) and a listener whose production rule
(every path) and test rule (header ``x-test: 1``) forward to both; in order:

1. bad ``advancedConfiguration`` is refused with ECS's InvalidParameterException;
2. a service on v1 behind blue answers through the listener;
3. a CANARY update to v2: v2's tasks join green, during the canary's bake time requests through
   the listener see both revisions in about the canary's share, then only v2; DescribeRules
   shows the production rule's weights going 70/30, then 0/100, and the test rule all on green;
4. a second CANARY (v3, into blue this time) rolled back by StopServiceDeployment: both rules
   back on green at once, only v2 answers, v3's targets leave blue.
"""

from __future__ import annotations

import http.client
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.test_ecs_load_balancers import drained_group, register
from tests.integration.test_ecs_service_connect import NET
from tests.integration.test_ecs_services import service, stable
from tests.integration.test_ecs_tasks import own_cluster
from tests.support.edge import edge_port, error_code, tg_health, wait_for
from tests.support.server import Dockyard

ROLE = "arn:aws:iam::000000000000:role/ecsInfrastructureRoleForLoadBalancers"
CANARY = 30  # percent
BAKE = 40  # deployment minutes (seconds here) the canary is held


@dataclass
class Site:
    cluster: str
    family: str
    blue: str
    green: str
    port: int
    production: str
    test: str
    elsewhere: str  # a rule forwarding to blue only


def both(blue: str, green: str, blue_weight: int = 1) -> str:
    return json.dumps([{"Type": "forward", "ForwardConfig": {"TargetGroups": [
        {"TargetGroupArn": blue, "Weight": blue_weight},
        {"TargetGroupArn": green, "Weight": 1 - blue_weight}]}}])


def rule(dockyard: Dockyard, listener: str, priority: int, conditions: list, actions: str) -> str:
    return dockyard.aws("elbv2", "create-rule", "--listener-arn", listener, "--priority", str(priority),
                        "--conditions", json.dumps(conditions), "--actions", actions)["Rules"][0]["RuleArn"]


@pytest.fixture(scope="module")
def site(dockyard: Dockyard) -> Iterator[Site]:
    suffix = uuid.uuid4().hex[:6]
    with own_cluster(dockyard, "lbshift") as cluster:
        lb = dockyard.aws("elbv2", "create-load-balancer", "--name", f"shift-{suffix}", "--type",
                          "application")["LoadBalancers"][0]["LoadBalancerArn"]
        blue = drained_group(dockyard, f"shift-blue-{suffix}")
        green = drained_group(dockyard, f"shift-green-{suffix}")
        port = edge_port()
        listener = dockyard.aws(
            "elbv2", "create-listener", "--load-balancer-arn", lb, "--protocol", "HTTP", "--port", str(port),
            "--default-actions", "Type=fixed-response,FixedResponseConfig={StatusCode=404}",
        )["Listeners"][0]["ListenerArn"]
        test = rule(dockyard, listener, 5, [{"Field": "http-header", "HttpHeaderConfig": {
            "HttpHeaderName": "x-test", "Values": ["1"]}}], both(blue, green))
        elsewhere = rule(dockyard, listener, 8, [{"Field": "path-pattern", "PathPatternConfig": {
            "Values": ["/blue-only*"]}}], f"Type=forward,TargetGroupArn={blue}")
        production = rule(dockyard, listener, 10, [{"Field": "path-pattern", "PathPatternConfig": {
            "Values": ["/*"]}}], both(blue, green))
        try:
            yield Site(cluster, f"lbshift-{suffix}", blue, green, port, production, test, elsewhere)
        finally:
            ecs = dockyard.client("ecs")
            try:
                ecs.delete_service(cluster=cluster, service="web", force=True)
            except (ecs.exceptions.ServiceNotFoundException, ecs.exceptions.ServiceNotActiveException):
                pass
            dockyard.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb)


def entries(site: Site, **adv: Any) -> str:
    config = {"alternateTargetGroupArn": site.green, "productionListenerRule": site.production,
              "testListenerRule": site.test, "roleArn": ROLE, **adv}
    return json.dumps([{"targetGroupArn": site.blue, "containerName": "app", "containerPort": 8080,
                        "advancedConfiguration": {k: v for k, v in config.items() if v is not None}}])


def canary(bake: int = BAKE) -> str:
    return json.dumps({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": CANARY,
                                                                     "canaryBakeTimeInMinutes": bake}})


def weights(dockyard: Dockyard, arn: str, site: Site) -> tuple[int, int]:
    """(blue, green) weights of the rule's forward action, as DescribeRules shows them."""
    body = dockyard.aws("elbv2", "describe-rules", "--rule-arns", arn)["Rules"][0]
    groups = {g["TargetGroupArn"]: g.get("Weight", 1) for a in body["Actions"] if a["Type"] == "forward"
              for g in (a.get("ForwardConfig") or {}).get("TargetGroups", [])}
    return groups.get(site.blue, 0), groups.get(site.green, 0)


def test_bad_advanced_configurations_are_refused(dockyard: Dockyard, site: Site) -> None:
    td = register(dockyard, site.family, "v1")

    def fails(lbs: str) -> str:
        proc = dockyard.aws(
            "ecs", "create-service", "--cluster", site.cluster, "--service-name", "bad", "--task-definition",
            td, "--desired-count", "1", "--network-configuration", NET, "--load-balancers", lbs,
            "--deployment-configuration", canary(), check=False)
        assert error_code(proc) == "InvalidParameterException", proc.stderr
        return proc.stderr

    assert "roleArn must be specified" in fails(entries(site, roleArn=None))
    same = entries(site, alternateTargetGroupArn=site.blue)
    assert "must be different from the targetGroupArn" in fails(same)
    assert "does not exist" in fails(entries(site, productionListenerRule=site.production + "0"))
    assert "must forward to both" in fails(entries(site, testListenerRule=site.elsewhere))
    plain = json.dumps([{"targetGroupArn": site.blue, "containerName": "app", "containerPort": 8080}])
    assert "shifts traffic through Service Connect or a load balancer" in fails(plain)
    assert not dockyard.client("ecs").list_services(cluster=site.cluster)["serviceArns"]


def answers(port: int, n: int, headers: dict[str, str] | None = None) -> Counter[str]:
    """What ``n`` requests through the listener (a new connection each) were answered."""
    seen: Counter[str] = Counter()
    for _ in range(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            conn.request("GET", "/", headers=headers or {})
            resp = conn.getresponse()
            body = resp.read().decode().strip()
        finally:
            conn.close()
        seen[body if resp.status == 200 else f"HTTP {resp.status}"] += 1
    return seen


def test_a_canary_shifts_the_listener_rule_between_the_groups(dockyard: Dockyard, site: Site) -> None:
    ecs = dockyard.client("ecs")
    v1 = register(dockyard, site.family, "v1")
    out = dockyard.aws(
        "ecs", "create-service", "--cluster", site.cluster, "--service-name", "web", "--task-definition", v1,
        "--desired-count", "2", "--network-configuration", NET, "--load-balancers", entries(site),
        "--deployment-configuration", canary())
    advanced = out["service"]["loadBalancers"][0]["advancedConfiguration"]
    assert advanced["alternateTargetGroupArn"] == site.green
    wait_for(lambda: stable(ecs, site.cluster, "web"), timeout=120, what="v1 steady")
    wait_for(lambda: len(h := tg_health(dockyard, site.blue)) == 2
             and all(x["State"] == "healthy" for x in h.values()), timeout=60, what="healthy blue targets")
    assert answers(site.port, 10) == Counter({"v1": 10})
    assert weights(dockyard, site.production, site) == (1, 0)  # as created: a plain service moves nothing

    v2 = register(dockyard, site.family, "v2")
    ecs.update_service(cluster=site.cluster, service="web", taskDefinition=v2)
    # v2's tasks join the alternate group; the canary's weights are set once they are healthy
    wait_for(lambda: weights(dockyard, site.production, site) == (100 - CANARY, CANARY), timeout=120,
             what="the canary's weights")
    assert len(tg_health(dockyard, site.green)) == 2
    assert weights(dockyard, site.test, site) == (0, 100)  # test traffic is all on v2 from TEST_TRAFFIC_SHIFT
    assert answers(site.port, 10, {"x-test": "1"}) == Counter({"v2": 10})
    seen = answers(site.port, 200)
    assert set(seen) == {"v1", "v2"}, seen
    assert 0.15 <= seen["v2"] / 200 <= 0.45, seen  # about the canary's 30 %
    assert weights(dockyard, site.production, site) == (100 - CANARY, CANARY), "sampled past the bake time"

    wait_for(lambda: weights(dockyard, site.production, site) == (0, 100), timeout=BAKE + 60,
             what="all production traffic on v2")
    assert answers(site.port, 30) == Counter({"v2": 30})
    done = wait_for(lambda: stable(ecs, site.cluster, "web"), timeout=120, what="v2 steady")
    assert done["taskDefinition"] == v2
    wait_for(lambda: not tg_health(dockyard, site.blue), timeout=60, what="v1's targets gone from blue")
    assert answers(site.port, 20) == Counter({"v2": 20})
    events = [e["message"] for e in service(ecs, site.cluster, "web")["events"]]
    assert any("set the production listener rule's weights" in m for m in events), events


def test_a_rollback_puts_the_rules_back_on_the_source_group(dockyard: Dockyard, site: Site) -> None:
    ecs = dockyard.client("ecs")
    v2 = service(ecs, site.cluster, "web")["taskDefinition"]
    v3 = register(dockyard, site.family, "v3")
    ecs.update_service(cluster=site.cluster, service="web", taskDefinition=v3)
    # v2 is in green now: v3's tasks take blue, and the canary's share is blue's
    wait_for(lambda: weights(dockyard, site.production, site) == (CANARY, 100 - CANARY), timeout=120,
             what="the second canary's weights")
    listed = dockyard.aws("ecs", "list-service-deployments", "--cluster", site.cluster, "--service", "web",
                          "--status", "IN_PROGRESS")["serviceDeployments"]
    assert len(listed) == 1, listed
    dockyard.aws("ecs", "stop-service-deployment", "--service-deployment-arn",
                 listed[0]["serviceDeploymentArn"], "--stop-type", "ROLLBACK")
    wait_for(lambda: weights(dockyard, site.production, site) == (0, 100), timeout=60,
             what="production back on v2's group")
    assert weights(dockyard, site.test, site) == (0, 100)
    assert answers(site.port, 20) == Counter({"v2": 20})
    wait_for(lambda: not tg_health(dockyard, site.blue), timeout=120, what="v3's targets gone from blue")
    done = wait_for(lambda: stable(ecs, site.cluster, "web"), timeout=120, what="v2 steady again")
    assert done["taskDefinition"] == v2
