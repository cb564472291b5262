"""runner.scheduler.placement: from instances and their usage to placements, pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from runner import scheduler
from runner.scheduler import LaunchFailure, TaskNeeds


@dataclass(frozen=True)
class Inst:
    id: str
    docker_host: str = "h1"
    cpu: int = 2048
    memory: int = 1024
    attributes: dict[str, str | None] = field(default_factory=dict)
    connected: bool = True


USAGE = {"h1": {"cpu": 512, "memory": 1000, "ports": {"8080/tcp"}, "tasks": [("t1", "service:web")]}}


def test_a_host_view_is_the_capacity_left_with_the_ports_used_and_reserved():
    view = scheduler.host_view(Inst("i1"), USAGE, ["22"])
    assert (view.cpu, view.memory) == (1536, 24)
    assert view.ports == frozenset({(8080, "tcp"), (22, "tcp")})
    assert [(t.id, t.group) for t in view.tasks] == [("t1", "service:web")]
    assert scheduler.host_view(Inst("i2", docker_host="h2"), USAGE).memory == 1024  # an idle host


def test_start_task_names_its_instances_and_an_unknown_one_is_missing():
    chosen, failures = scheduler.choose(
        [Inst("i1")], USAGE, TaskNeeds(cpu=0, memory=10), on_instances=["i1", "nope", "i1"]
    )
    assert chosen == ["i1", "i1"]
    assert failures == [LaunchFailure("MISSING", instance_id="nope")]


def test_a_task_placed_nowhere_names_the_closest_instance_and_why():
    hosts = [Inst("i1"), Inst("i2", docker_host="h2", memory=64)]
    chosen, failures = scheduler.choose(hosts, USAGE, TaskNeeds(cpu=0, memory=100), count=2)
    assert chosen == []
    assert [(f.reason, f.instance_id) for f in failures] == [("RESOURCE:MEMORY", "i1")] * 2
    assert "insufficient memory" in failures[0].detail


def test_each_placed_task_is_charged_before_the_next_is_placed():
    chosen, failures = scheduler.choose([Inst("i2", docker_host="h2", memory=150)], USAGE,
                                        TaskNeeds(cpu=0, memory=100), count=2)
    assert chosen == ["i2"] and [f.reason for f in failures] == ["RESOURCE:MEMORY"]


def test_a_missing_required_attribute_is_named():
    gelf = "com.amazonaws.ecs.capability.logging-driver.gelf"
    needs = TaskNeeds(cpu=0, memory=1, attributes=((gelf, None),))
    _, (failure,) = scheduler.choose([Inst("i1")], {}, needs)
    assert (failure.reason, failure.missing) == ("ATTRIBUTE", gelf)
