"""Container CPU and memory (the runner's :class:`mesh.seams.TaskUsage` readings) -> ``AWS/ECS``
``CPUUtilization`` and ``MemoryUtilization``: pure.

As ECS does, each task gives one sample per reading, in percent of what it reserves: CPU time
used since its previous reading over the wall time between them, in CPU units (1024 = one
vCPU) over the task's ``cpu`` (one vCPU when it reserves none); memory in use over the task's
``memory`` (MiB; no MemoryUtilization when it reserves none). The samples go to the series
``{ClusterName}`` and ``{ClusterName, ServiceName}`` (so a service's ``Average`` is over its
tasks, ``SampleCount`` the tasks read, ``Maximum`` the busiest) and Dockyard's
``{ClusterName, ServiceName, TaskId}`` per task. A task's first reading has no CPU sample
(there is no interval yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from mesh.seams import TaskUsage
from mesh.telemetry.metrics_envoy import Sample

__all__ = ["Previous", "samples"]

MIB = 1024 * 1024
Previous = Mapping[str, tuple[float, float]]  # task ARN -> (cpu_seconds, at)


def _dimension_sets(u: TaskUsage) -> list[dict[str, str]]:
    out = [{"ClusterName": u.cluster}]
    task_id = u.task_arn.rsplit("/", 1)[-1]
    if u.service:
        out += [{"ClusterName": u.cluster, "ServiceName": u.service},
                {"ClusterName": u.cluster, "ServiceName": u.service, "TaskId": task_id}]
    else:
        out.append({"ClusterName": u.cluster, "TaskId": task_id})
    return out


def samples(
    previous: Previous, readings: Sequence[TaskUsage]
) -> tuple[list[Sample], dict[str, tuple[float, float]]]:
    """The samples of ``readings`` and the readings to keep for the next call (the live tasks')."""
    out: list[Sample] = []
    keep: dict[str, tuple[float, float]] = {}
    for u in readings:
        keep[u.task_arn] = (u.cpu_seconds, u.at)
        values: dict[str, float] = {}
        before = previous.get(u.task_arn)
        if before is not None and u.at > before[1] and u.cpu_seconds >= before[0]:
            cores = (u.cpu_seconds - before[0]) / (u.at - before[1])
            values["CPUUtilization"] = 100.0 * cores * 1024 / (u.cpu_units or 1024)
        if u.memory_mib > 0:
            values["MemoryUtilization"] = 100.0 * u.memory_bytes / (u.memory_mib * MIB)
        for name, value in values.items():
            for dims in _dimension_sets(u):
                out.append(Sample(name, tuple(sorted(dims.items())), "gauge", value=value, unit="Percent"))
    return out, keep
