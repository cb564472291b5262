"""runner.balancing: ECS's checks of ``loadBalancers``, targets, and the load balancer's say in
a task's health (with the grace period)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from runner import balancing, deployments
from runner.errors import InvalidParameterException

TG = "arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123456789abcdef"
LB = "arn:aws:elasticloadbalancing:us-east-1:000000000000:loadbalancer/app/web/0123456789abcdef"


@dataclass(frozen=True)
class Group:
    arn: str
    target_type: str = "ip"
    deregistration_delay: float = 30.0
    load_balancers: tuple[str, ...] = (LB,)


def definition(mode: str = "awsvpc") -> dict:
    return {"networkMode": mode, "containerDefinitions": [
        {"name": "app", "portMappings": [{"containerPort": 8080}]}]}


def groups(**kinds: Group):
    return lambda arn: kinds.get(arn.rsplit("/", 2)[-2])


def entry(**over) -> dict:
    return {"targetGroupArn": TG, "containerName": "app", "containerPort": 8080, **over}


def test_a_valid_entry_is_normalised() -> None:
    out = balancing.check([entry()], definition(), groups(web=Group(TG)))
    assert out == [{"targetGroupArn": TG, "containerName": "app", "containerPort": 8080}]
    assert balancing.check(None, definition(), None) == []


@pytest.mark.parametrize(
    ("entries", "defn", "group", "words"),
    [
        ([entry(containerName="db")], definition(), Group(TG),
         "The container db does not exist in the task definition"),
        ([entry(containerPort=9090)], definition(), Group(TG), "did not have a container port 9090 defined"),
        ([entry()], definition(), None, "does not exist"),
        ([entry()], definition(), Group(TG, load_balancers=()), "does not have an associated load balancer"),
        ([entry()], definition(), Group(TG, target_type="instance"),
         "has target type instance, which is incompatible with the awsvpc network mode"),
        ([entry()], definition("bridge"), Group(TG),
         "has target type ip, which is incompatible with the bridge"),
        ([entry()] * 6, definition(), Group(TG), "at most 5"),
        ([entry(), entry()], definition(), Group(TG), "repeated"),
        ([{"loadBalancerName": "classic", "containerName": "app", "containerPort": 8080}], definition(),
         Group(TG), "Classic Load Balancers"),
        ([entry(containerPort=None)], definition(), Group(TG), "containerPort must be specified"),
        ("web", definition(), Group(TG), "must be a list"),
    ],
)
def test_bad_entries_are_refused_as_ecs_refuses_them(entries, defn, group, words) -> None:
    lookup = groups(web=group) if group is not None else groups()
    with pytest.raises(InvalidParameterException) as e:
        balancing.check(entries, defn, lookup)
    assert words in str(e.value)


def test_targets_are_the_task_address_or_its_instance() -> None:
    assert balancing.target_of(("172.18.0.5", 8080), "ip", "") == ("172.18.0.5", 8080)
    assert balancing.target_of(("", 32768), "instance", "i-0abc") == ("i-0abc", 32768)
    assert balancing.target_of(None, "ip", "") is None
    assert balancing.target_of(("", 8080), "ip", "") is None  # no address yet


def test_a_task_is_healthy_once_every_target_is() -> None:
    now = 1000.0
    assert balancing.judge("UNKNOWN", False, [(TG, "initial", "")], 990, 0, now).health == "UNKNOWN"
    assert balancing.judge("UNKNOWN", False, [(TG, "healthy", "")], 990, 0, now).health == "HEALTHY"
    two = [(TG, "healthy", ""), (TG + "2", "initial", "")]
    assert balancing.judge("UNKNOWN", False, two, 990, 0, now).health == "UNKNOWN"
    # its container health check must pass too
    assert balancing.judge("UNKNOWN", True, [(TG, "healthy", "")], 990, 0, now).health == "UNKNOWN"
    # a group no listener uses or without health checks does not hold the task back
    assert balancing.judge("UNKNOWN", False, [(TG, "unused", "")], 990, 0, now).health == "HEALTHY"
    # not registered yet: the container's own health
    assert balancing.judge("UNKNOWN", False, [], 990, 0, now) == balancing.Judged("UNKNOWN", False)


def test_an_unhealthy_target_counts_only_after_the_grace_period() -> None:
    states = [(TG, "unhealthy", "Health checks failed with these codes: [500]")]
    during = balancing.judge("UNKNOWN", False, states, 990.0, 30, 1000.0)
    assert during.health == "UNKNOWN" and not during.target_group
    after = balancing.judge("UNKNOWN", False, states, 960.0, 30, 1000.0)
    assert after.health == "UNHEALTHY" and after.target_group == TG
    assert after.reason == "Health checks failed with these codes: [500]"


def test_ecs_texts() -> None:
    assert balancing.stopped_reason(TG) == f"Task failed ELB health checks in (target-group {TG})"
    assert balancing.unhealthy_message("web", "abc", 8080, TG, "Request timed out") == (
        f"(service web) (task abc) (port 8080) is unhealthy in (target-group {TG}) "
        "due to (reason Request timed out)."
    )
    registered = balancing.registered_message("web", 2, TG)
    assert registered == f"(service web) registered 2 targets in (target-group {TG})"
    assert balancing.draining_message("web", 1) == "(service web) has begun draining connections on 1 tasks."


def test_a_task_the_load_balancer_reports_unhealthy_is_replaced_with_ecs_reason() -> None:
    reason = balancing.stopped_reason(TG)
    tasks = [
        deployments.TaskState("a", "d1", "RUNNING", health="UNHEALTHY", checked=True, unhealthy_reason=reason,
                              ever_running=True, created_at=1),
        deployments.TaskState("b", "d1", "RUNNING", health="HEALTHY", checked=True, ever_running=True,
                              created_at=2),
    ]
    spec = deployments.Spec(2, 100, 200)
    dep = deployments.Deployment("d1", rollout="COMPLETED")
    first = deployments.plan(spec, [dep], tasks, 100.0)
    assert first.starts == (deployments.Start("d1", 1),) and not first.stops  # the replacement first
    replacement = deployments.TaskState("c", "d1", "RUNNING", health="HEALTHY", checked=True,
                                        ever_running=True, created_at=3)
    second = deployments.plan(spec, [dep], [*tasks, replacement], 101.0)
    assert second.stops == (deployments.Stop("a", reason),)
    stopped = deployments.TaskState("a", "d1", "STOPPED", desired_status="STOPPED", stopped_reason=reason)
    assert deployments.is_failed(stopped)  # counts towards the circuit breaker
