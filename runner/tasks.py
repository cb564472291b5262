"""ECS tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

The API only writes desired state: RunTask places each task on a container instance and
records it as ``PROVISIONING`` with ``desiredStatus: RUNNING``; StopTask sets
``desiredStatus: STOPPED`` with its stop code. The supervisor (:mod:`runner.supervisor`)
watches the ``ecs/task`` topic and makes the Docker hosts match, reporting progress back
through :func:`update`. A task row keeps a snapshot of its task definition, so a task runs and
describes the same whatever happens to the definition later.

Stopped tasks stay describable for :data:`RETENTION` seconds (ECS keeps them about an hour).

Services build on :func:`launch` (place and record tasks) and :func:`request_stop`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, instances, scheduler, taskdef, taskdefs
from runner.agent import lifecycle
from runner.errors import InvalidParameterException
from runner.numbers import loose_int
from runner.taskdef import TaskDefinition
from runner.taskshapes import shape, task_arn

__all__ = [
    "MISSING_KEY",
    "RETENTION",
    "TOPIC",
    "get_row",
    "launch",
    "public_failures",
    "request_stop",
    "shape",
    "task_arn",
    "update",
]

MIGRATIONS = [
    Migration(
        "tasks",
        1,
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY, cluster TEXT NOT NULL, instance_id TEXT NOT NULL,
            definition_arn TEXT NOT NULL, family TEXT NOT NULL, definition TEXT NOT NULL,
            overrides TEXT NOT NULL DEFAULT '{}', launch_type TEXT NOT NULL,
            last_status TEXT NOT NULL, desired_status TEXT NOT NULL,
            started_by TEXT NOT NULL DEFAULT '', grp TEXT NOT NULL DEFAULT '',
            cpu INTEGER NOT NULL, memory INTEGER NOT NULL, host_ports TEXT NOT NULL DEFAULT '[]',
            stop_code TEXT NOT NULL DEFAULT '', stopped_reason TEXT NOT NULL DEFAULT '',
            health TEXT NOT NULL DEFAULT 'UNKNOWN', containers TEXT NOT NULL DEFAULT '{}',
            network TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]',
            extra TEXT NOT NULL DEFAULT '{}', created_at REAL NOT NULL,
            pull_started_at REAL, pull_stopped_at REAL, started_at REAL, connectivity_at REAL,
            stopping_at REAL, stopped_at REAL, execution_stopped_at REAL,
            version INTEGER NOT NULL DEFAULT 1);
        CREATE INDEX tasks_cluster ON tasks (cluster, desired_status, created_at);
        CREATE INDEX tasks_instance ON tasks (instance_id, last_status);
        CREATE INDEX tasks_open ON tasks (last_status, stopped_at);
        """,
    )
]

TOPIC = "ecs/task"
RETENTION = 2 * 3600.0
MISSING_KEY = "dockyard:missingAttributes"
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")
def task_id(ident: Any) -> str:
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("task must be a task id or ARN.")
    return ident.rsplit("/", 1)[-1]


def get_row(store: Store, ident: str) -> Any:
    return store.query_one("SELECT * FROM tasks WHERE id = ?", (ident,))


# -- pure ------------------------------------------------------------------------------------
def host_view(inst: instances.Instance, usage: dict[str, dict[str, Any]]) -> scheduler.HostView:
    """What the scheduler sees of one instance: remaining capacity, ports, tasks, attributes."""
    u = usage.get(inst.docker_host, instances.empty_usage())
    ports = {(int(p.split("/")[0]), p.split("/")[1]) for p in u["ports"]}
    ports |= {(int(p), "tcp") for p in instances.RESERVED_PORTS}
    return scheduler.HostView(
        id=inst.id,
        cpu=inst.cpu - u["cpu"],
        memory=inst.memory - u["memory"],
        ports=frozenset(ports),
        attributes=dict(inst.attributes),
        tasks=tuple(scheduler.TaskView(t, g) for t, g in u["tasks"]),
        connected=inst.connected,
    )


def task_needs(
    td: TaskDefinition,
    overrides: Mapping[str, Any] | None = None,
    group: str = "",
    launch_type: str = "EC2",
    placement: Mapping[str, Any] | None = None,
) -> scheduler.TaskNeeds:
    """The scheduler's view of one task: :func:`runner.scheduler.needs_for` with the request's
    placement (its memberOf constraints after the definition's own) and the task-level
    ``cpu``/``memory`` overrides winning over the definition's sizes."""
    placement = placement or {}
    overrides = overrides or {}
    needs = scheduler.needs_for(
        td,
        group,
        constraints=scheduler.parse_constraints(placement.get("placementConstraints")),
        strategy=scheduler.parse_strategies(placement.get("placementStrategy")),
        launch_type=launch_type,
    )
    cpu = loose_int(overrides.get("cpu")) or needs.cpu
    return replace(needs, cpu=cpu, memory=loose_int(overrides.get("memory")) or needs.memory)


# -- store writes ------------------------------------------------------------------------------
async def update(store: Store, ident: str, **fields: Any) -> Any:
    """Record the agent's progress on one task (JSON columns given as Python values).

    ``last_status`` never moves backwards; the row's ``version`` goes up on every change.
    Returns the updated row, or None if the task is gone."""
    for key in ("containers", "network"):
        if key in fields and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key])
    async with store.transaction() as tx:
        row = tx.query_one("SELECT * FROM tasks WHERE id = ?", (ident,))
        if row is None:
            return None
        if "last_status" in fields and lifecycle.status_index(fields["last_status"]) < lifecycle.status_index(
            row["last_status"]
        ):
            del fields["last_status"]
        fields = {k: v for k, v in fields.items() if row[k] != v}
        if not fields:
            return row
        sets = ", ".join(f"{k} = ?" for k in fields)
        tx.execute(f"UPDATE tasks SET {sets}, version = version + 1 WHERE id = ?", (*fields.values(), ident))
        tx.changed(TOPIC, ident)
        return tx.query_one("SELECT * FROM tasks WHERE id = ?", (ident,))


async def request_stop(store: Store, ident: str, code: str, reason: str) -> Any:
    """Ask for a task to stop (first stop code and reason win); returns the row or None."""
    async with store.transaction() as tx:
        row = tx.query_one("SELECT * FROM tasks WHERE id = ?", (ident,))
        if row is None:
            return None
        if row["desired_status"] != "STOPPED":
            tx.execute(
                "UPDATE tasks SET desired_status = 'STOPPED', stop_code = ?, stopped_reason = ?,"
                " stopping_at = COALESCE(stopping_at, ?), version = version + 1 WHERE id = ?",
                (code, reason, time.time(), ident),
            )
            tx.changed(TOPIC, ident)
        return tx.query_one("SELECT * FROM tasks WHERE id = ?", (ident,))


async def _definition(store: Store, config: Config, ident: Any) -> dict[str, Any]:
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("taskDefinition is required.")
    return taskdefs.usable(store, config, ident)[1]  # INACTIVE, DELETE_IN_PROGRESS: ClientException


def _check_overrides(defn: Mapping[str, Any], overrides: Any) -> dict[str, Any]:
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise InvalidParameterException("overrides must be an object.")
    names = {c["name"] for c in defn.get("containerDefinitions") or []}
    for o in overrides.get("containerOverrides") or []:
        if not isinstance(o, dict) or o.get("name") not in names:
            raise InvalidParameterException(
                f"Override for container named {o.get('name') if isinstance(o, dict) else o} is not "
                "a container in the TaskDefinition."
            )
        if "command" in o and not (
            isinstance(o["command"], list) and all(isinstance(x, str) for x in o["command"])
        ):
            raise InvalidParameterException("containerOverrides.command must be a list of strings.")
    return overrides


async def launch(
    store: Store,
    config: Config,
    *,
    cluster: str,
    definition: Mapping[str, Any],
    count: int = 1,
    launch_type: str = "EC2",
    started_by: str = "",
    group: str = "",
    overrides: Mapping[str, Any] | None = None,
    tags: list[dict[str, str]] | None = None,
    extra: Mapping[str, Any] | None = None,
    on_instances: list[str] | None = None,
    placement: Mapping[str, Any] | None = None,
) -> tuple[list[Any], list[dict[str, str]]]:
    """Place and record ``count`` tasks of ``definition``; returns (task rows, failures).

    ``on_instances`` (StartTask) names the instance ids to use, one task each; otherwise each
    task goes where :mod:`runner.scheduler` says among the cluster's instances (FARGATE: any host
    Dockyard knows when the cluster has none). A task that fits nowhere is a failure entry
    (``reason`` ``RESOURCE:CPU``, ``ATTRIBUTE`` and so on, ``detail`` the explanation), not an
    error; with ``ATTRIBUTE`` the entry also names the missing attributes under
    :data:`MISSING_KEY`, which :func:`public_failures` drops from API responses."""
    overrides = dict(overrides or {})
    group = group or f"family:{definition.get('family', '')}"
    needs = task_needs(taskdef.parse(definition), overrides, group, launch_type, placement)
    host_ports = [f"{port}/{proto}" for port, proto in needs.ports]
    candidates = instances.instances_in(store, config, cluster)
    if not candidates and launch_type == "FARGATE":
        candidates = instances.instances_in(store, config)
    if on_instances is None and not candidates:
        raise InvalidParameterException("No Container Instances were found in your cluster.")
    rows, failures = [], []
    now = time.time()
    async with store.transaction() as tx:
        usage = instances.usage_by_host(store)
        by_id = {i.id: i for i in candidates}
        chosen: list[instances.Instance] = []
        if on_instances is not None:
            for iid in on_instances:
                inst = by_id.get(iid)
                if inst is None:
                    arn = instances.instance_arn(config, cluster, iid)
                    failures.append({"arn": arn, "reason": "MISSING"})
                else:
                    chosen.append(inst)
        else:
            placed = scheduler.place([host_view(i, usage) for i in candidates], needs, count)
            for result in placed.results:
                if not isinstance(result, scheduler.Placement):
                    failure = {"reason": result.reason, "detail": result.explain()}
                    if result.closest is not None:
                        failure["arn"] = instances.instance_arn(config, cluster, result.closest.host_id)
                        if result.closest.missing:  # for the service event; not in the response
                            failure[MISSING_KEY] = ", ".join(result.closest.missing)
                    failures.append(failure)
                    continue
                chosen.append(by_id[result.host_id])
        for inst in chosen:
            ident = uuid.uuid4().hex
            tx.execute(
                "INSERT INTO tasks (id, cluster, instance_id, definition_arn, family, definition,"
                " overrides, launch_type, last_status, desired_status, started_by, grp, cpu, memory,"
                " host_ports, tags, extra, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'PROVISIONING',"
                " 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ident,
                    cluster,
                    inst.id,
                    definition.get("taskDefinitionArn", ""),
                    definition.get("family", ""),
                    json.dumps(definition),
                    json.dumps(overrides),
                    launch_type,
                    started_by,
                    group,
                    needs.cpu,
                    needs.memory,
                    json.dumps(host_ports),
                    json.dumps(tags or []),
                    json.dumps(dict(extra or {})),
                    now,
                ),
            )
            tx.changed(TOPIC, ident)
            rows.append(tx.query_one("SELECT * FROM tasks WHERE id = ?", (ident,)))
    return rows, failures


def public_failures(failures: list[dict[str, str]]) -> list[dict[str, str]]:
    """``failures`` as ECS's Failure shape (arn, reason, detail) for an API response."""
    return [{k: v for k, v in f.items() if k != MISSING_KEY} for f in failures]


# -- operations ------------------------------------------------------------------------------
_ECHOED = (
    "networkConfiguration",
    "capacityProviderStrategy",
    "platformVersion",
    "propagateTags",
    "referenceId",
    "enableECSManagedTags",
    "enableExecuteCommand",
    "placementConstraints",
    "placementStrategy",
)


def _common(store: Store, config: Config, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    cluster = str(clusters.get_active(store, params.get("cluster"))["name"])
    started_by = params.get("startedBy", "")
    if not isinstance(started_by, str) or len(started_by) > 128:
        raise InvalidParameterException("startedBy can have up to 128 characters.")
    group = params.get("group", "")
    if not isinstance(group, str) or len(group) > 255:
        raise InvalidParameterException("group can have up to 255 characters.")
    return cluster, {k: params[k] for k in _ECHOED if k in params}


async def run_task(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster, extra = _common(store, config, params)
    count = params.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10:
        raise InvalidParameterException("count must be an integer from 1 to 10.")
    launch_type = params.get("launchType") or "EC2"
    if launch_type not in LAUNCH_TYPES:
        raise InvalidParameterException(f"launchType must be one of {', '.join(LAUNCH_TYPES)}.")
    defn = await _definition(store, config, params.get("taskDefinition"))
    check_compatibility(defn, launch_type)
    overrides = _check_overrides(defn, params.get("overrides"))
    rows, failures = await launch(
        store,
        config,
        cluster=cluster,
        definition=defn,
        count=count,
        launch_type=launch_type,
        started_by=params.get("startedBy", ""),
        group=params.get("group", ""),
        overrides=overrides,
        tags=clusters.validate_tags(params.get("tags")),
        extra=extra,
        placement={k: params.get(k) for k in ("placementConstraints", "placementStrategy")},
    )
    return {"tasks": [shape(config, r) for r in rows], "failures": public_failures(failures)}


def check_compatibility(defn: Mapping[str, Any], launch_type: str) -> None:
    compat = defn.get("compatibilities") or defn.get("requiresCompatibilities") or ["EC2"]
    if launch_type == "FARGATE" and "FARGATE" not in compat:
        raise InvalidParameterException("Task definition does not support launch_type FARGATE.")
    if launch_type == "FARGATE" and (defn.get("networkMode") or "bridge") != "awsvpc":
        raise InvalidParameterException("Fargate only supports network mode 'awsvpc'.")


async def start_task(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster, extra = _common(store, config, params)
    idents = params.get("containerInstances")
    if not isinstance(idents, list) or not 1 <= len(idents) <= 10:
        raise InvalidParameterException("containerInstances must list 1 to 10 container instances.")
    defn = await _definition(store, config, params.get("taskDefinition"))
    overrides = _check_overrides(defn, params.get("overrides"))
    rows, failures = await launch(
        store,
        config,
        cluster=cluster,
        definition=defn,
        launch_type="EC2",
        started_by=params.get("startedBy", ""),
        group=params.get("group", ""),
        overrides=overrides,
        tags=clusters.validate_tags(params.get("tags")),
        extra=extra,
        on_instances=[instances.instance_id(i) for i in idents],
    )
    return {"tasks": [shape(config, r) for r in rows], "failures": public_failures(failures)}


def find(store: Store, cluster: str, ident: Any) -> Any:
    row = store.query_one("SELECT * FROM tasks WHERE id = ? AND cluster = ?", (task_id(ident), cluster))
    if row is None:
        raise InvalidParameterException("The referenced task was not found.")
    return row


async def stop_task(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = str(clusters.get_active(store, params.get("cluster"))["name"])
    row = find(store, cluster, params.get("task"))
    reason = params.get("reason") or "Task stopped by user"
    if not isinstance(reason, str) or len(reason) > 255:
        raise InvalidParameterException("reason can have up to 255 characters.")
    row = await request_stop(store, row["id"], lifecycle.USER_INITIATED, reason)
    return {"task": shape(config, row)}


async def describe_tasks(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = clusters.cluster_name(params.get("cluster"))
    if store.query_one("SELECT 1 FROM clusters WHERE name = ?", (name,)) is None:
        raise clusters.ClusterNotFoundException("Cluster not found.")
    idents = params.get("tasks")
    if not isinstance(idents, list) or not idents or len(idents) > 100:
        raise InvalidParameterException("tasks must list 1 to 100 task ids or ARNs.")
    include = params.get("include") or []
    found, failures = [], []
    for ident in idents:
        row = store.query_one("SELECT * FROM tasks WHERE id = ? AND cluster = ?", (task_id(ident), name))
        if row is None:
            arn = ident if str(ident).startswith("arn:") else task_arn(config, name, str(ident))
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(shape(config, row, include))
    return {"tasks": found, "failures": failures}


async def list_tasks(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = str(clusters.get_active(store, params.get("cluster"))["name"])
    desired = params.get("desiredStatus") or "RUNNING"
    if desired not in ("RUNNING", "PENDING", "STOPPED"):
        raise InvalidParameterException("desiredStatus must be RUNNING, PENDING or STOPPED.")
    sql = "SELECT * FROM tasks WHERE cluster = ?"
    args: list[Any] = [cluster]
    if desired == "PENDING":
        sql += " AND desired_status = 'RUNNING' AND last_status IN ('PROVISIONING', 'PENDING', 'ACTIVATING')"
    else:
        sql += " AND desired_status = ?"
        args.append(desired)
    if params.get("family"):
        sql += " AND family = ?"
        args.append(params["family"])
    if params.get("startedBy"):
        sql += " AND started_by = ?"
        args.append(params["startedBy"])
    if params.get("serviceName"):
        sql += " AND grp = ?"
        args.append(f"service:{str(params['serviceName']).rsplit('/', 1)[-1]}")
    if params.get("launchType"):
        sql += " AND launch_type = ?"
        args.append(params["launchType"])
    if params.get("containerInstance"):
        sql += " AND instance_id = ?"
        args.append(instances.instance_id(params["containerInstance"]))
    rows = store.query(sql + " ORDER BY created_at, id", args)
    chunk, token = page([task_arn(config, cluster, r["id"]) for r in rows], params, InvalidParameterException)
    out: dict[str, Any] = {"taskArns": chunk}
    if token:
        out["nextToken"] = token
    return out


OPERATIONS = {
    "RunTask": run_task,
    "StartTask": start_task,
    "StopTask": stop_task,
    "DescribeTasks": describe_tasks,
    "ListTasks": list_tasks,
}
