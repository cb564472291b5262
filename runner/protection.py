"""Task scale-in protection: UpdateTaskProtection and GetTaskProtection, and the same from
inside a task through the agent endpoint (``$ECS_AGENT_URI/task-protection/v1/state``,
:mod:`runner.taskcreds`).

A protected task of a service is not stopped by a scale-in, by a deployment replacing its
revision or by a drain of its container instance until its protection expires
(:mod:`runner.deployments`: ``TaskState.protected_until``); a task that fails its health
checks is still replaced, as in ECS. Protection lasts ``expiresInMinutes`` (1 to 2,880,
default 120) from the call, and a call on a protected task starts the period again. Only
tasks of a service may be protected (others are ``TASK_NOT_VALID`` failures, as ECS answers),
and a task that is stopped or stopping is ``TASK_NOT_VALID`` too; nothing changes for a
failed task.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data, tasks
from runner.errors import ClientException, InvalidParameterException, ResourceNotFoundException
from runner.taskshapes import task_arn

__all__ = ["DEFAULT_MINUTES", "MAX_MINUTES", "MIGRATIONS", "OPERATIONS", "expiry", "get", "protect", "state",
           "update"]

MIGRATIONS = [Migration("tasks_protection", 1, "ALTER TABLE tasks ADD COLUMN protected_until REAL;")]

DEFAULT_MINUTES = 120
MAX_MINUTES = 2880


def expiry(enabled: Any, minutes: Any, now: float) -> float | None:
    """When protection asked for at ``now`` ends (pure; None: unprotect);
    InvalidParameterException for a bad ``protectionEnabled`` or ``expiresInMinutes``."""
    if not isinstance(enabled, bool):
        raise InvalidParameterException("protectionEnabled must be true or false.")
    if not enabled:
        if minutes is not None:
            raise InvalidParameterException("expiresInMinutes can only be given with protectionEnabled true.")
        return None
    if minutes is None:
        minutes = DEFAULT_MINUTES
    if not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= MAX_MINUTES:
        raise InvalidParameterException(
            f"expiresInMinutes must be between 1 and {MAX_MINUTES} minutes (48 hours)."
        )
    return now + minutes * 60.0


def state(config: Config, task: data.Task, now: float) -> dict[str, Any]:
    """The ``ProtectedTask`` shape: an expired protection shows as not enabled."""
    arn = task_arn(config, task.cluster, task.id)
    until = task.protected_until
    if until is None or until <= now:
        return {"taskArn": arn, "protectionEnabled": False}
    return {"taskArn": arn, "protectionEnabled": True, "expirationDate": until}


def _idents(params: dict[str, Any], most: int, required: bool) -> list[Any]:
    idents = params.get("tasks")
    if idents is None and not required:
        return []
    if not isinstance(idents, list) or not idents or len(idents) > most:
        raise InvalidParameterException(f"tasks must list 1 to {most} task ids or ARNs.")
    return idents


def _failure(config: Config, cluster: str, ident: Any, reason: str, detail: str = "") -> dict[str, str]:
    arn = ident if str(ident).startswith("arn:") else task_arn(config, cluster, str(ident))
    out = {"arn": arn, "reason": reason}
    if detail:
        out["detail"] = detail
    return out


def _problem(task: data.Task) -> str:
    """Why ``task`` cannot be protected ("" when it can)."""
    if not task.service:
        return "Task protection is only supported for tasks that belong to a service."
    if task.desired_status == "STOPPED" or task.last_status == "STOPPED":
        return "The task is stopped or stopping."
    return ""


async def protect(store: Store, config: Config, task_id: str, enabled: Any, minutes: Any) -> dict[str, Any]:
    """One task's protection set from inside it (the agent endpoint): its ``ProtectedTask``;
    InvalidParameterException for a bad period, ResourceNotFoundException for a task that is
    gone, ClientException for one that cannot be protected."""
    now = time.time()
    until = expiry(enabled, minutes, now)
    task = data.task(store, task_id)
    if task is None:
        raise ResourceNotFoundException("The task does not exist.")
    if why := _problem(task):
        raise ClientException(why)
    async with store.transaction() as tx:
        data.set_task_protection(tx, task.id, until)
    return state(config, _with(task, until), now)


async def update(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    now = time.time()
    until = expiry(params.get("protectionEnabled"), params.get("expiresInMinutes"), now)
    idents = _idents(params, 10, True)
    cluster = clusters.active(store, params.get("cluster")).name
    protected, failures = [], []
    async with store.transaction() as tx:
        for ident in idents:
            task = data.task_in(store, cluster, tasks.task_id(ident))
            if task is None:
                failures.append(_failure(config, cluster, ident, "MISSING"))
            elif why := _problem(task):
                failures.append(_failure(config, cluster, ident, "TASK_NOT_VALID", why))
            else:
                data.set_task_protection(tx, task.id, until)
                protected.append(state(config, _with(task, until), now))
    return {"protectedTasks": protected, "failures": failures}


def _with(task: data.Task, until: float | None) -> data.Task:
    return replace(task, protected_until=until)


async def get(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """GetTaskProtection: the named tasks' protection (or, without ``tasks``, every protected
    task of the cluster's services)."""
    now = time.time()
    cluster = clusters.active(store, params.get("cluster")).name
    idents = _idents(params, 100, False)
    protected, failures = [], []
    if not idents:
        ids = data.task_ids(store, cluster, desired="RUNNING")
        found = [t for t in (data.task(store, i) for i in ids) if t is not None and t.service]
        return {"protectedTasks": [state(config, t, now) for t in found
                                   if t.protected_until and t.protected_until > now], "failures": []}
    for ident in idents:
        task = data.task_in(store, cluster, tasks.task_id(ident))
        if task is None:
            failures.append(_failure(config, cluster, ident, "MISSING"))
        else:
            protected.append(state(config, task, now))
    return {"protectedTasks": protected, "failures": failures}


OPERATIONS = {"UpdateTaskProtection": update, "GetTaskProtection": get}
