"""Container readings -> CPUUtilization / MemoryUtilization (``mesh.telemetry.metrics_usage``)
and the reading of one ``docker stats`` answer (``runner.usage``)."""

from __future__ import annotations

import pytest

from mesh.telemetry.metrics_usage import MIB, samples
from runner.usage import TaskUsage, cpu_seconds, memory_in_use

ARN = "arn:aws:ecs:us-east-1:000000000000:task/c1/abc"


def reading(cpu: float, at: float, memory: float = 16 * MIB, units: int = 512, mib: int = 64,
            service: str = "web") -> TaskUsage:
    return TaskUsage(ARN, "c1", service, cpu, memory, at, units, mib)


def by_series(items: list) -> dict:
    return {(s.name, s.dimensions): s.value for s in items}


def test_the_first_reading_gives_memory_only_then_cpu_over_the_interval():
    first, keep = samples({}, [reading(10.0, 100.0)])
    assert {name for name, _ in by_series(first)} == {"MemoryUtilization"}
    assert by_series(first)[("MemoryUtilization", (("ClusterName", "c1"), ("ServiceName", "web")))] == 25.0
    # 1 s of CPU in 4 s is a quarter vCPU: 256 units of the 512 reserved
    second, _ = samples(keep, [reading(11.0, 104.0)])
    got = by_series(second)
    for dims in ((("ClusterName", "c1"),), (("ClusterName", "c1"), ("ServiceName", "web")),
                 (("ClusterName", "c1"), ("ServiceName", "web"), ("TaskId", "abc"))):
        assert got[("CPUUtilization", dims)] == pytest.approx(50.0)
    assert all(s.unit == "Percent" for s in second)


def test_no_reservation_means_one_vcpu_and_no_memory_utilization():
    _, keep = samples({}, [reading(0.0, 0.0, units=0, mib=0, service="")])
    got = by_series(samples(keep, [reading(2.0, 1.0, units=0, mib=0, service="")])[0])
    assert got == {("CPUUtilization", (("ClusterName", "c1"),)): 200.0,
                   ("CPUUtilization", (("ClusterName", "c1"), ("TaskId", "abc"))): 200.0}


def test_a_restarted_counter_or_stopped_task_is_not_a_sample():
    _, keep = samples({}, [reading(50.0, 10.0)])
    assert not any(s.name == "CPUUtilization" for s in samples(keep, [reading(1.0, 20.0)])[0])
    assert samples(keep, [])[1] == {}


def test_docker_stats_memory_leaves_the_page_cache_out():
    v2 = {"memory_stats": {"usage": 10_000, "stats": {"inactive_file": 4_000}},
          "cpu_stats": {"cpu_usage": {"total_usage": 2_500_000_000}}}
    v1 = {"memory_stats": {"usage": 10_000, "stats": {"total_inactive_file": 1_000}}}
    assert (memory_in_use(v2), memory_in_use(v1), memory_in_use({})) == (6_000, 9_000, 0)
    assert (cpu_seconds(v2), cpu_seconds({})) == (2.5, 0)
