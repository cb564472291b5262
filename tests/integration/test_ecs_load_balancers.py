"""ECS services behind an Application Load Balancer: the real aws CLI and boto3, real Docker
tasks (busybox httpd answering its ``VERSION``), the real edge Envoy.

One load balancer for the module, its HTTP listener forwarding to an ``ip`` target group
(deregistration delay 3 s); in order:

1. bad ``loadBalancers`` are refused with ECS's InvalidParameterException;
2. a service of 2 tasks registers them as targets (initial, then healthy in
   DescribeTargetHealth) and answers through the edge;
3. a rolling deployment to v2 under continuous HTTP load through the edge (keep-alive clients
   in threads, at least 5,000 requests) fails no request; the old targets show ``draining``
   and their tasks stop only after the delay;
4. a service whose target group never passes its checks keeps its task through
   ``healthCheckGracePeriodSeconds``, then replaces it with ECS's reason and event;
5. a ``bridge`` task is an ``instance`` target: its container instance's ``ec2InstanceId`` and
   the host port Docker bound;
6. a target tracking policy on ``ALBRequestCountPerTarget`` (the edge's ``AWS/ApplicationELB``
   metrics) scales a service behind the load balancer out under load.
"""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.test_ecs_service_connect import NET
from tests.integration.test_ecs_services import messages, service, service_tasks, stable
from tests.integration.test_ecs_tasks import own_cluster
from tests.support.edge import edge_port, error_code, forward_rule, target_group, tg_health, wait_for
from tests.support.images import echo_image
from tests.support.server import Dockyard

DELAY = 3  # seconds of deregistration delay (connection draining)


@dataclass
class Site:
    cluster: str
    family: str
    lb: str
    tg: str
    port: int
    listener: str
    extra_tgs: dict[str, str] = field(default_factory=dict)


def drained_group(dockyard: Dockyard, name: str, target_type: str = "ip", matcher: str = "200") -> str:
    """A target group on port 8080 whose targets drain for :data:`DELAY` seconds."""
    arn = target_group(dockyard, name, 8080, target_type=target_type, matcher=matcher)
    dockyard.aws(
        "elbv2",
        "modify-target-group-attributes",
        "--target-group-arn",
        arn,
        "--attributes",
        f"Key=deregistration_delay.timeout_seconds,Value={DELAY}",
    )
    return arn


def register(dockyard: Dockyard, family: str, version: str, mode: str = "awsvpc") -> str:
    container = {
        "name": "app",
        "image": echo_image(),
        "memory": 32,
        "essential": True,
        "environment": [{"name": "VERSION", "value": version}],
        "portMappings": [{"containerPort": 8080}],
    }
    out = dockyard.aws(
        "ecs",
        "register-task-definition",
        "--family",
        family,
        "--network-mode",
        mode,
        "--container-definitions",
        json.dumps([container]),
    )
    return out["taskDefinition"]["taskDefinitionArn"]


def lbs(tg: str) -> str:
    return json.dumps([{"targetGroupArn": tg, "containerName": "app", "containerPort": 8080}])


@pytest.fixture(scope="module")
def site(dockyard: Dockyard) -> Iterator[Site]:
    suffix = uuid.uuid4().hex[:6]
    with own_cluster(dockyard, "lb") as cluster:
        lb = dockyard.aws(
            "elbv2", "create-load-balancer", "--name", f"ecs-{suffix}", "--type", "application"
        )["LoadBalancers"][0]["LoadBalancerArn"]
        tg = drained_group(dockyard, f"ecs-web-{suffix}")
        sick = drained_group(dockyard, f"ecs-sick-{suffix}", matcher="201")  # the app answers 200
        port = edge_port()
        listener = dockyard.aws(
            "elbv2",
            "create-listener",
            "--load-balancer-arn",
            lb,
            "--protocol",
            "HTTP",
            "--port",
            str(port),
            "--default-actions",
            f"Type=forward,TargetGroupArn={tg}",
        )["Listeners"][0]["ListenerArn"]
        forward_rule(dockyard, listener, 10, "/sick*", sick)
        unused = drained_group(dockyard, f"ecs-unused-{suffix}")
        by_instance = drained_group(dockyard, f"ecs-inst-{suffix}", target_type="instance")
        forward_rule(dockyard, listener, 20, "/instance*", by_instance)
        site = Site(
            cluster,
            f"lb-web-{suffix}",
            lb,
            tg,
            port,
            listener,
            {"sick": sick, "unused": unused, "instance": by_instance},
        )
        try:
            yield site
        finally:
            ecs = dockyard.client("ecs")
            for name in ("web", "sick", "bridged", "scaled"):
                try:
                    ecs.delete_service(cluster=cluster, service=name, force=True)
                except (ecs.exceptions.ServiceNotFoundException, ecs.exceptions.ServiceNotActiveException):
                    pass
            dockyard.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", lb)


def get(port: int, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode().strip()
    finally:
        conn.close()


def test_bad_load_balancers_are_refused_as_ecs_refuses_them(dockyard: Dockyard, site: Site) -> None:
    td = register(dockyard, site.family, "v1")
    missing = site.tg.rsplit("/", 1)[0] + "/ffffffffffffffff"

    def fails(entries: list[dict[str, Any]], family: str = td) -> str:
        proc = dockyard.aws(
            "ecs",
            "create-service",
            "--cluster",
            site.cluster,
            "--service-name",
            "bad",
            "--task-definition",
            family,
            "--desired-count",
            "1",
            "--network-configuration",
            NET,
            "--load-balancers",
            json.dumps(entries),
            check=False,
        )
        assert error_code(proc) == "InvalidParameterException", proc.stderr
        return proc.stderr

    entry = {"targetGroupArn": site.tg, "containerName": "app", "containerPort": 8080}
    assert "The container db does not exist in the task definition" in fails(
        [{**entry, "containerName": "db"}]
    )
    assert "did not have a container port 9090 defined" in fails([{**entry, "containerPort": 9090}])
    assert "does not exist" in fails([{**entry, "targetGroupArn": missing}])
    assert "does not have an associated load balancer" in fails(
        [{**entry, "targetGroupArn": site.extra_tgs["unused"]}]
    )
    assert "incompatible with the awsvpc network mode" in fails(
        [{**entry, "targetGroupArn": site.extra_tgs["instance"]}]
    )
    # an ip group and a bridge task definition (whose tasks are reached at their instance)
    bridge = register(dockyard, site.family + "-bridge", "v1", mode="bridge")
    assert "incompatible with the bridge network mode" in fails([entry], bridge)
    assert "at most 5" in fails([entry] * 6)
    ecs = dockyard.client("ecs")
    assert not ecs.list_services(cluster=site.cluster)["serviceArns"]


def test_tasks_become_targets_and_answer_through_the_load_balancer(dockyard: Dockyard, site: Site) -> None:
    td = register(dockyard, site.family, "v1")
    out = dockyard.aws(
        "ecs",
        "create-service",
        "--cluster",
        site.cluster,
        "--service-name",
        "web",
        "--task-definition",
        td,
        "--desired-count",
        "2",
        "--network-configuration",
        NET,
        "--load-balancers",
        lbs(site.tg),
    )
    assert out["service"]["loadBalancers"] == json.loads(lbs(site.tg))
    ecs = dockyard.client("ecs")
    tasks = wait_for(
        lambda: (
            len(t := service_tasks(ecs, site.cluster, "web")) == 2
            and all(x["lastStatus"] == "RUNNING" for x in t)
            and t
        ),
        what="two running tasks",
    )
    ips = {
        x["value"]
        for t in tasks
        for a in t["attachments"]
        for x in a["details"]
        if x["name"] == "privateIPv4Address"
    }
    assert len(ips) == 2
    health = wait_for(lambda: len(h := tg_health(dockyard, site.tg)) == 2 and h, what="two targets")
    assert set(health) == {f"{ip}:8080" for ip in ips}
    assert all(h["State"] in ("initial", "healthy") for h in health.values())
    wait_for(
        lambda: all(h["State"] == "healthy" for h in tg_health(dockyard, site.tg).values()),
        what="healthy targets",
    )
    assert get(site.port) == (200, "v1")
    s = wait_for(lambda: stable(ecs, site.cluster, "web"), what="a steady service")
    assert any("registered" in m and site.tg in m for m in messages(s))


class Load:
    """Keep-alive HTTP clients through the edge, counting answers by status and body."""

    def __init__(self, port: int, clients: int = 4) -> None:
        self.port = port
        self.seen: Counter[str] = Counter()
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            try:
                conn.request("GET", "/")
                resp = conn.getresponse()
                body = resp.read().decode().strip()
                with self.lock:
                    if resp.status == 200:
                        self.seen[body] += 1
                    else:
                        self.failures.append(f"{resp.status} {body[:80]}")
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.failures.append(repr(e))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.close()

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.seen.values()) + len(self.failures)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)


def test_a_rolling_deployment_behind_the_load_balancer_fails_no_request(
    dockyard: Dockyard, site: Site
) -> None:
    ecs = dockyard.client("ecs")
    wait_for(lambda: stable(ecs, site.cluster, "web"), what="a steady service")
    old = {t["taskArn"] for t in service_tasks(ecs, site.cluster, "web")}
    v2 = register(dockyard, site.family, "v2")
    load = Load(site.port)
    try:
        wait_for(lambda: load.total >= 200, what="load running")
        dockyard.aws(
            "ecs", "update-service", "--cluster", site.cluster, "--service", "web", "--task-definition", v2
        )
        draining = wait_for(
            lambda: [h for h in tg_health(dockyard, site.tg).values() if h["State"] == "draining"],
            timeout=120,
            what="a draining target",
        )
        assert draining[0]["Reason"] == "Target.DeregistrationInProgress"
        wait_for(
            lambda: (s := stable(ecs, site.cluster, "web")) and s["taskDefinition"] == v2,
            timeout=180,
            what="v2 deployed",
        )
        wait_for(lambda: load.seen["v2"] >= 200 and load.total >= 5000, timeout=180, what="5,000 requests")
    finally:
        load.finish()
    assert load.failures == [], load.failures[:10]
    assert load.seen["v1"] > 0 and load.seen["v2"] > 0 and sum(load.seen.values()) >= 5000

    def all_stopped() -> list[dict[str, Any]] | None:
        found = ecs.describe_tasks(cluster=site.cluster, tasks=list(old))["tasks"]
        return found if all(t["lastStatus"] == "STOPPED" for t in found) else None

    stopped = wait_for(all_stopped, timeout=60, what="the old tasks stopped")
    for t in stopped:
        # connection draining: the containers were stopped only after the delay
        assert (t["stoppedAt"] - t["stoppingAt"]).total_seconds() >= DELAY, t
    s = service(ecs, site.cluster, "web")
    assert any("has begun draining connections on" in m for m in messages(s))
    assert any("deregistered" in m and site.tg in m for m in messages(s))
    assert {h["State"] for h in tg_health(dockyard, site.tg).values()} <= {"healthy", "draining"}


def test_a_task_the_target_group_reports_unhealthy_is_replaced_after_the_grace_period(
    dockyard: Dockyard, site: Site
) -> None:
    grace = 6
    sick = site.extra_tgs["sick"]
    td = register(dockyard, site.family + "-sick", "sick")
    dockyard.aws(
        "ecs",
        "create-service",
        "--cluster",
        site.cluster,
        "--service-name",
        "sick",
        "--task-definition",
        td,
        "--desired-count",
        "1",
        "--network-configuration",
        NET,
        "--load-balancers",
        lbs(sick),
        "--health-check-grace-period-seconds",
        str(grace),
    )
    ecs = dockyard.client("ecs")
    first = wait_for(lambda: service_tasks(ecs, site.cluster, "sick"), what="a task")[0]
    unhealthy = wait_for(
        lambda: [h for h in tg_health(dockyard, sick).values() if h["State"] == "unhealthy"],
        timeout=60,
        what="an unhealthy target",
    )
    assert unhealthy[0]["Reason"] == "Target.ResponseCodeMismatch"
    reason = f"Task failed ELB health checks in (target-group {sick})"
    done = wait_for(
        lambda: [
            t for t in service_tasks(ecs, site.cluster, "sick", "STOPPED") if t["taskArn"] == first["taskArn"]
        ],
        timeout=120,
        what="the first task replaced",
    )[0]
    assert done["stoppedReason"] == reason
    assert (done["stoppingAt"] - done["startedAt"]).total_seconds() >= grace  # not during the grace period
    s = service(ecs, site.cluster, "sick")
    assert any(
        f"(task {first['taskArn'].rsplit('/', 1)[1]})" in m
        and f"is unhealthy in (target-group {sick})" in m
        and "Health checks failed with these codes: [200]" in m
        for m in messages(s)
    ), messages(s)
    ecs.delete_service(cluster=site.cluster, service="sick", force=True)


def test_a_bridge_task_is_an_instance_target_at_its_host_port(dockyard: Dockyard, site: Site) -> None:
    group = site.extra_tgs["instance"]
    td = register(dockyard, site.family + "-bridge", "bridged", mode="bridge")
    dockyard.aws(
        "ecs",
        "create-service",
        "--cluster",
        site.cluster,
        "--service-name",
        "bridged",
        "--task-definition",
        td,
        "--desired-count",
        "1",
        "--load-balancers",
        lbs(group),
    )
    ecs = dockyard.client("ecs")
    try:
        task = wait_for(
            lambda: [
                t
                for t in service_tasks(ecs, site.cluster, "bridged")
                if t["lastStatus"] == "RUNNING" and t["containers"][0].get("networkBindings")
            ],
            what="a running bridge task",
        )[0]
        host_port = task["containers"][0]["networkBindings"][0]["hostPort"]
        instance = ecs.describe_container_instances(
            cluster=site.cluster, containerInstances=[task["containerInstanceArn"]]
        )
        ec2 = instance["containerInstances"][0]["ec2InstanceId"]
        health = wait_for(
            lambda: (
                (h := tg_health(dockyard, group)).get(f"{ec2}:{host_port}", {}).get("State") == "healthy"
                and h
            ),
            what="the instance target healthy",
        )
        assert list(health) == [f"{ec2}:{host_port}"]
        status, body = get(site.port, "/instance")  # routed to the task: its httpd has no such file
        assert status == 404 and "404" in body
    finally:
        ecs.delete_service(cluster=site.cluster, service="bridged", force=True)
    wait_for(
        lambda: (
            not tg_health(dockyard, group)
            or all(h["State"] == "draining" for h in tg_health(dockyard, group).values())
        ),
        what="the target deregistered",
    )


def test_requests_per_target_through_the_load_balancer_scale_the_service_out(
    dockyard: Dockyard, site: Site
) -> None:
    td = register(dockyard, site.family, "v1")
    dockyard.aws("ecs", "create-service", "--cluster", site.cluster, "--service-name", "scaled",
                 "--task-definition", td, "--desired-count", "1", "--network-configuration", NET,
                 "--load-balancers", lbs(site.tg))
    resource = f"service/{site.cluster}/scaled"
    ids = ["--service-namespace", "ecs", "--resource-id", resource, "--scalable-dimension",
           "ecs:service:DesiredCount"]
    # ResourceLabel: app/<lb>/<id>/targetgroup/<tg>/<id>, from the two ARNs
    label = f"{site.lb.split(':loadbalancer/', 1)[1]}/{site.tg.split(':', 5)[5]}"
    dockyard.aws("application-autoscaling", "register-scalable-target", *ids, "--min-capacity", "1",
                 "--max-capacity", "3")
    spec = {"TargetValue": 3.0, "ScaleOutCooldown": 0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": label}}
    dockyard.aws("application-autoscaling", "put-scaling-policy", *ids, "--policy-name", "rps",
                 "--policy-type", "TargetTrackingScaling",
                 "--target-tracking-scaling-policy-configuration", json.dumps(spec))
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            try:
                get(site.port)
            except OSError:
                pass
            stop.wait(0.05)

    threading.Thread(target=load, daemon=True).start()
    ecs = dockyard.client("ecs")
    try:
        wait_for(lambda: ecs.describe_services(cluster=site.cluster, services=["scaled"])["services"][0][
            "desiredCount"] == 3, 150, "the requests per target to scale the service out")
        activities = dockyard.aws("application-autoscaling", "describe-scaling-activities",
                                  "--service-namespace", "ecs", "--resource-id", resource)
        activities = activities["ScalingActivities"]
        cause = f"monitor alarm TargetTracking-{resource}-AlarmHigh-rps in state ALARM"
        assert any(a["Cause"].startswith(cause) for a in activities), activities
    finally:
        stop.set()
        dockyard.aws("application-autoscaling", "deregister-scalable-target", *ids, check=False)
        ecs.delete_service(cluster=site.cluster, service="scaled", force=True)
