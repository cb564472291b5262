"""The running tasks' CPU time and memory from the Docker Engine: what the mesh's telemetry turns
into ``AWS/ECS`` ``CPUUtilization`` and ``MemoryUtilization`` (``mesh.seams.UsageView``,
structurally; the runner does not import the mesh).

One one-shot ``docker stats`` per container of every RUNNING task, concurrently, through the
task's host (:class:`runner.tasklogs.HostLookup`). Memory in use is Docker's ``usage`` less the
inactive page cache (cgroup v2 ``inactive_file``, v1 ``total_inactive_file``), as ``docker
stats`` shows it. A container the engine cannot answer for (it just stopped) is left out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import data
from runner.agent.transport import DockerError
from runner.tasklogs import HostLookup
from runner.taskshapes import task_arn

__all__ = ["TaskUsage", "Usage", "memory_in_use"]


@dataclass(frozen=True)
class TaskUsage:
    task_arn: str
    cluster: str
    service: str
    cpu_seconds: float
    memory_bytes: float
    at: float
    cpu_units: int
    memory_mib: int


def memory_in_use(stats: Mapping[str, Any]) -> float:
    """Bytes in use of one ``docker stats`` reading, page cache left out."""
    mem = stats.get("memory_stats") or {}
    inner = mem.get("stats") or {}
    cache = inner.get("inactive_file", inner.get("total_inactive_file", 0))
    return float(max(0, (mem.get("usage") or 0) - (cache or 0)))


def cpu_seconds(stats: Mapping[str, Any]) -> float:
    return float(((stats.get("cpu_stats") or {}).get("cpu_usage") or {}).get("total_usage") or 0) / 1e9


class Usage:
    """See module docstring."""

    def __init__(self, store: Store, config: Config, hosts: HostLookup) -> None:
        self.store = store
        self.config = config
        self.hosts = hosts

    async def _read(self, task: data.Task) -> TaskUsage | None:
        host = self.hosts.host_of(task.instance_id)
        ids = [c.runtime_id for c in task.containers if c.runtime_id]
        if host is None or not ids:
            return None
        readings = await asyncio.gather(*(host.stats(i) for i in ids), return_exceptions=True)
        ok = [r for r in readings if isinstance(r, dict)]
        if not ok:
            if not all(isinstance(r, DockerError) for r in readings):
                raise next(r for r in readings if isinstance(r, BaseException))
            return None
        return TaskUsage(
            task_arn(self.config, task.cluster, task.id), task.cluster, task.service,
            sum(cpu_seconds(r) for r in ok), sum(memory_in_use(r) for r in ok), time.time(),
            task.cpu, task.memory,
        )

    async def usage(self) -> list[TaskUsage]:
        tasks = await asyncio.to_thread(data.running_tasks, self.store)
        got = await asyncio.gather(*(self._read(t) for t in tasks))
        return [u for u in got if u is not None]
