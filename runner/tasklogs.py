"""GetTaskLogs (Dockyard's own operation, behind ``dockyard logs``).

Logs come from Docker through the task's host, or, once the container was removed at the
task's stop, from the copy the worker saved then (:mod:`runner.agent.savedlogs`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Protocol

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, tasks
from runner.agent import savedlogs
from runner.agent.host import Host
from runner.agent.transport import DockerError
from runner.errors import InvalidParameterException
from runner.numbers import param_int

__all__ = ["MAX_LOG_LINES", "HostLookup", "task_logs"]

MAX_LOG_LINES = savedlogs.MAX_LOG_LINES


class HostLookup(Protocol):
    """What GetTaskLogs needs of the supervisor: the live host of a container instance."""

    def host_of(self, instance_id: str) -> Host | None: ...


async def task_logs(
    store: Store, config: Config, hosts: HostLookup, params: dict[str, Any]
) -> dict[str, Any]:
    """The last ``tail`` lines (default 200, at most :data:`MAX_LOG_LINES`) of each container
    of a task (or of ``containerName`` only)."""
    cluster = clusters.active(store, params.get("cluster")).name
    row = tasks.find(store, cluster, params.get("task"))
    tail = param_int(params, "tail", 200, 1, MAX_LOG_LINES)
    only = params.get("containerName")
    host = hosts.host_of(row["instance_id"])
    out = []
    for name, state in json.loads(row["containers"]).items():
        if only and name != only:
            continue
        text = ""
        saved = None
        if config.data_dir:
            saved = await asyncio.to_thread(savedlogs.read, config.data_dir, row["id"], name, tail)
        if saved is not None:  # the container was removed at the stop (runner.agent.savedlogs)
            text = saved.decode(errors="replace")
        elif host is not None and state.get("runtimeId"):
            try:
                text = (await host.logs(state["runtimeId"], tail)).decode(errors="replace")
            except DockerError as e:
                text = f"(logs unavailable: {e})\n"
        out.append({"containerName": name, "logs": text})
    if only and not out:
        raise InvalidParameterException(f"The task has no container named {only}.")
    return {"taskArn": tasks.task_arn(config, cluster, row["id"]), "containers": out}
