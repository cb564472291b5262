"""The runner's named reads and writes, returning frozen dataclasses (as registry.metadata).

First slice of issue 8 item 1: the supervisor's and the service loop's SQL. The resource
modules (clusters, taskdefs, instances, tasks, services, secrets, tags) still hold their own
SQL and pass ``sqlite3.Row`` s; they move here next.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from dockyard.store import Store

__all__ = [
    "ExpiredTask",
    "Registration",
    "delete_task",
    "docker_host_of",
    "expired_tasks",
    "forget_registration",
    "record_registration",
    "registrations_of_service",
    "registrations_of_task",
    "unstopped_task_ids",
]

TASK_TOPIC = "ecs/task"  # runner.tasks.TOPIC


@dataclass(frozen=True)
class Registration:
    """A task registered in a service registry (``registry_id``: the registry's service id)."""

    task_id: str
    registry_id: str


@dataclass(frozen=True)
class ExpiredTask:
    """A STOPPED task past its retention: its instance and its containers' Docker ids."""

    id: str
    instance_id: str
    runtime_ids: tuple[str, ...]


# -- tasks ------------------------------------------------------------------------------------
def unstopped_task_ids(store: Store) -> list[str]:
    return [r["id"] for r in store.query("SELECT id FROM tasks WHERE last_status != 'STOPPED'")]


def expired_tasks(store: Store, stopped_before: float) -> list[ExpiredTask]:
    rows = store.query(
        "SELECT id, instance_id, containers FROM tasks WHERE last_status = 'STOPPED' AND stopped_at < ?",
        (stopped_before,),
    )
    return [
        ExpiredTask(
            r["id"],
            r["instance_id"],
            tuple(s["runtimeId"] for s in json.loads(r["containers"]).values() if s.get("runtimeId")),
        )
        for r in rows
    ]


async def delete_task(store: Store, task_id: str) -> None:
    async with store.transaction() as tx:
        tx.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        tx.changed(TASK_TOPIC, task_id)


# -- container instances ----------------------------------------------------------------------
def docker_host_of(store: Store, instance_id: str) -> str | None:
    row = store.query_one("SELECT docker_host FROM container_instances WHERE id = ?", (instance_id,))
    return str(row["docker_host"]) if row else None


# -- service registrations --------------------------------------------------------------------
def registrations_of_service(store: Store, cluster: str, service: str) -> list[Registration]:
    rows = store.query(
        "SELECT task_id, registry_id FROM service_registrations WHERE cluster = ? AND service = ?",
        (cluster, service),
    )
    return [Registration(r["task_id"], r["registry_id"]) for r in rows]


def registrations_of_task(store: Store, task_id: str) -> list[Registration]:
    rows = store.query("SELECT task_id, registry_id FROM service_registrations WHERE task_id = ?", (task_id,))
    return [Registration(r["task_id"], r["registry_id"]) for r in rows]


async def record_registration(store: Store, reg: Registration, cluster: str, service: str) -> None:
    async with store.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO service_registrations (task_id, registry_id, cluster, service,"
            " registered_at) VALUES (?, ?, ?, ?, ?)",
            (reg.task_id, reg.registry_id, cluster, service, time.time()),
        )


async def forget_registration(store: Store, reg: Registration) -> None:
    async with store.transaction() as tx:
        tx.execute(
            "DELETE FROM service_registrations WHERE task_id = ? AND registry_id = ?",
            (reg.task_id, reg.registry_id),
        )
