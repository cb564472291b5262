"""Placement decisions over several runs, through the harness (tests/unit/runner/scheduler_harness.py)."""

from __future__ import annotations

from runner.scheduler import Constraint, HostView, Strategy, TaskNeeds
from tests.unit.runner.scheduler_harness import Harness


def test_binpack_on_memory_fills_the_fullest_host_first_then_overflows():
    h = Harness.of(HostView("a", 4096, 1024), HostView("b", 4096, 3072))
    needs = TaskNeeds(cpu=128, memory=512, strategy=(Strategy("binpack", "memory"),))
    h.run(needs, 2)
    h.run(needs, 3)
    assert h.hosts_used() == ["a", "a", "b", "b", "b"]
    assert [s.host for s in h.run(needs, 3)] == ["b", "b", "b"]  # b holds 3072 MiB: six tasks
    last = h.run(needs)[0]
    assert last.host is None and last.reason == "RESOURCE:MEMORY"


def test_spread_by_instance_alternates_and_a_later_run_sees_earlier_tasks():
    h = Harness.of(HostView("a", 4096, 8192), HostView("b", 4096, 8192), HostView("c", 4096, 8192))
    needs = TaskNeeds(cpu=128, memory=128, group="service:web", strategy=(Strategy("spread", "instanceId"),))
    h.run(needs, 3)
    assert sorted(h.hosts_used()) == ["a", "b", "c"]
    h.run(needs, 3)
    assert sorted(h.hosts_used()[3:]) == ["a", "b", "c"]


def test_distinct_instance_and_fixed_ports_stop_at_one_task_per_host():
    h = Harness.of(HostView("a", 4096, 8192), HostView("b", 4096, 8192))
    by_port = TaskNeeds(cpu=128, memory=128, ports=((80, "tcp"),))
    assert [s.host is not None for s in h.run(by_port, 3)] == [True, True, False]
    assert h.plan[-1].reason == "RESOURCE:PORTS"
    distinct = TaskNeeds(cpu=128, memory=128, group="g", constraints=(Constraint("distinctInstance"),))
    assert [s.host is not None for s in h.run(distinct, 3)] == [True, True, False]
