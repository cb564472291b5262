"""ECS tasks: RunTask, StartTask, StopTask, DescribeTasks, ListTasks.

The API only writes desired state: RunTask places each task on a container instance and
records it as ``PROVISIONING`` with ``desiredStatus: RUNNING``; StopTask sets
``desiredStatus: STOPPED`` with its stop code. The supervisor (:mod:`runner.supervisor`)
watches the ``ecs/task`` topic and makes the Docker hosts match, reporting progress back
through :func:`runner.data.update_task`. A task (:class:`runner.data.Task`) keeps a snapshot
of its task definition, so a task runs and describes the same whatever happens to the
definition later.

Stopped tasks stay describable for :data:`RETENTION` seconds (ECS keeps them about an hour).

This module is the operations only: placement is :mod:`runner.scheduler` (pure, through
:func:`runner.scheduler.choose`), the reads and writes are :mod:`runner.data`, the AWS shape is
:mod:`runner.taskshapes`. Services build on :func:`launch` (place and record tasks) and
:func:`runner.data.request_task_stop`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data, instances, scheduler, strategies, taskdef, taskdefs
from runner.agent import lifecycle
from runner.connect import TaskConnect
from runner.errors import InvalidParameterException
from runner.scheduler import LaunchFailure
from runner.scheduler.capacity import assign
from runner.taskshapes import shape, task_arn

__all__ = [
    "RETENTION",
    "TOPIC",
    "find",
    "launch",
    "public_failures",
    "shape",
    "task_arn",
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
    ),
    # Service Connect: a meshed task's runner.connect.TaskConnect as JSON, '' for none.
    Migration("tasks", 2, "ALTER TABLE tasks ADD COLUMN connect TEXT NOT NULL DEFAULT '';"),
]

TOPIC = data.TASK_TOPIC
RETENTION = 2 * 3600.0
LAUNCH_TYPES = ("EC2", "FARGATE", "EXTERNAL")


def task_id(ident: Any) -> str:
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("task must be a task id or ARN.")
    return ident.rsplit("/", 1)[-1]


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
    connect: TaskConnect | None = None,
    capacity_provider: str = "",
) -> tuple[list[data.Task], list[LaunchFailure]]:
    """Place and record ``count`` tasks of ``definition``; returns (tasks, failures).

    ``on_instances`` (StartTask) names the instance ids to use, one task each; otherwise each
    task goes where :mod:`runner.scheduler` says among the cluster's instances (FARGATE: any host
    Dockyard knows when the cluster has none). A task that fits nowhere is a failure
    (:class:`runner.scheduler.LaunchFailure`), not an error; :func:`public_failures` renders
    them as ECS's ``failures[]``. ``connect`` is the Service Connect state every task gets
    (:func:`runner.connect.task_connect`). With ``capacity_provider`` the tasks go only to that
    provider's instances (:func:`runner.strategies.members`) and show its name."""
    overrides = dict(overrides or {})
    group = group or f"family:{definition.get('family', '')}"
    needs = scheduler.task_needs(taskdef.parse(definition), overrides, group, launch_type, placement)
    host_ports = tuple(f"{port}/{proto}" for port, proto in needs.ports)
    candidates = instances.instances_in(store, config, cluster)
    if not candidates and launch_type == "FARGATE":
        candidates = instances.instances_in(store, config)
    if capacity_provider:
        extra = {**(extra or {}), "capacityProviderName": capacity_provider}
        if capacity_provider not in strategies.FARGATE:
            candidates = strategies.members(candidates, data.capacity_provider(store, capacity_provider))
            if not candidates and on_instances is None:
                raise InvalidParameterException(
                    f"No Container Instances were found in capacity provider {capacity_provider}."
                )
    if on_instances is None and not candidates:
        raise InvalidParameterException("No Container Instances were found in your cluster.")
    failures: list[LaunchFailure] = []

    def choose() -> list[data.NewTask]:
        chosen, missed = scheduler.choose(
            candidates,
            instances.usage_by_host(store),
            needs,
            count,
            on_instances=on_instances,
            reserved_ports=instances.RESERVED_PORTS,
        )
        failures.extend(missed)
        now = time.time()
        return [
            data.NewTask(
                id=uuid.uuid4().hex,
                cluster=cluster,
                instance_id=iid,
                definition=definition,
                launch_type=launch_type,
                created_at=now,
                group=group,
                started_by=started_by,
                cpu=needs.cpu,
                memory=needs.memory,
                overrides=overrides,
                host_ports=host_ports,
                tags=tuple(tags or ()),
                extra=dict(extra or {}),
                connect=connect,
            )
            for iid in chosen
        ]

    return await data.record_tasks(store, choose), failures


async def launch_by_strategy(
    store: Store,
    config: Config,
    *,
    strategy: list[Mapping[str, Any]],
    current: Mapping[str, int],
    count: int,
    **kw: Any,
) -> tuple[list[data.Task], list[LaunchFailure]]:
    """:func:`launch` ``count`` tasks over a capacity provider strategy: each provider gets the
    tasks :func:`runner.scheduler.capacity.assign` gives it (``current``: what each holds now);
    a provider without room or instances fails its share, the others still start theirs."""
    order = assign(strategies.strategy_of(strategy), current, count)
    started: list[data.Task] = []
    failures: list[LaunchFailure] = []
    for name in dict.fromkeys(order):
        n = order.count(name)
        launch_type = "FARGATE" if name in strategies.FARGATE else "EC2"
        try:
            got, missed = await launch(store, config, count=n, launch_type=launch_type,
                                       capacity_provider=name, **kw)
        except InvalidParameterException as e:
            got, missed = [], [LaunchFailure("RESOURCE:CAPACITY_PROVIDER", e.message)] * n
        started += got
        failures += missed
    return started, failures


def strategy_for(reader: data.Reader, cluster: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The capacity provider strategy of a RunTask or CreateService request: its own, else (with no
    ``launchType``) the cluster's default; [] for none. InvalidParameterException for both a
    strategy and a launch type, or a strategy ECS would refuse."""
    raw = params.get("capacityProviderStrategy")
    found = data.cluster(reader, cluster)
    associated = list(found.capacity_providers) if found else []
    if raw:
        if params.get("launchType"):
            raise InvalidParameterException(
                "Specifying both a launchType and capacityProviderStrategy is not supported."
            )
        return strategies.check_strategy(raw, associated)
    if params.get("launchType") or found is None:
        return []
    return [dict(i) for i in found.default_strategy]


def public_failures(config: Config, cluster: str, failures: list[LaunchFailure]) -> list[dict[str, str]]:
    """``failures`` as ECS's Failure shape (arn, reason, detail) for an API response."""
    out = []
    for f in failures:
        shown = {"reason": f.reason}
        if f.detail:
            shown["detail"] = f.detail
        if f.instance_id:
            shown["arn"] = instances.instance_arn(config, cluster, f.instance_id)
        out.append(shown)
    return out


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
    cluster = clusters.active(store, params.get("cluster")).name
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
    defn = taskdefs.usable(store, config, params.get("taskDefinition"))[1]
    strategy = strategy_for(store, cluster, params)
    for kind in {("FARGATE" if i["capacityProvider"] in strategies.FARGATE else "EC2") for i in strategy} or {
            launch_type}:
        check_compatibility(defn, kind)
    overrides = _check_overrides(defn, params.get("overrides"))
    common: dict[str, Any] = dict(
        cluster=cluster,
        definition=defn,
        started_by=params.get("startedBy", ""),
        group=params.get("group", ""),
        overrides=overrides,
        tags=clusters.validate_tags(params.get("tags")),
        extra=extra,
        placement={k: params.get(k) for k in ("placementConstraints", "placementStrategy")},
    )
    if strategy:
        rows, failures = await launch_by_strategy(store, config, strategy=strategy, current={}, count=count,
                                                  **common)
    else:
        rows, failures = await launch(store, config, count=count, launch_type=launch_type, **common)
    return {"tasks": [shape(config, r) for r in rows], "failures": public_failures(config, cluster, failures)}


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
    defn = taskdefs.usable(store, config, params.get("taskDefinition"))[1]
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
    return {"tasks": [shape(config, r) for r in rows], "failures": public_failures(config, cluster, failures)}


def find(store: Store, cluster: str, ident: Any) -> data.Task:
    """The cluster's task of that id or ARN, else InvalidParameterException."""
    task = data.task_in(store, cluster, task_id(ident))
    if task is None:
        raise InvalidParameterException("The referenced task was not found.")
    return task


async def stop_task(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
    task = find(store, cluster, params.get("task"))
    reason = params.get("reason") or "Task stopped by user"
    if not isinstance(reason, str) or len(reason) > 255:
        raise InvalidParameterException("reason can have up to 255 characters.")
    stopped = await data.request_task_stop(store, task.id, lifecycle.USER_INITIATED, reason)
    return {"task": shape(config, stopped or task)}


async def describe_tasks(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = clusters.cluster_name(params.get("cluster"))
    if data.cluster(store, name) is None:
        raise clusters.ClusterNotFoundException("Cluster not found.")
    idents = params.get("tasks")
    if not isinstance(idents, list) or not idents or len(idents) > 100:
        raise InvalidParameterException("tasks must list 1 to 100 task ids or ARNs.")
    include = params.get("include") or []
    found, failures = [], []
    for ident in idents:
        task = data.task_in(store, name, task_id(ident))
        if task is None:
            arn = ident if str(ident).startswith("arn:") else task_arn(config, name, str(ident))
            failures.append({"arn": arn, "reason": "MISSING"})
        else:
            found.append(shape(config, task, include))
    return {"tasks": found, "failures": failures}


async def list_tasks(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
    desired = params.get("desiredStatus") or "RUNNING"
    if desired not in ("RUNNING", "PENDING", "STOPPED"):
        raise InvalidParameterException("desiredStatus must be RUNNING, PENDING or STOPPED.")
    service = str(params.get("serviceName") or "").rsplit("/", 1)[-1]
    instance = params.get("containerInstance")
    ids = data.task_ids(
        store,
        cluster,
        desired=desired,
        family=str(params.get("family") or ""),
        started_by=str(params.get("startedBy") or ""),
        group=f"service:{service}" if service else "",
        launch_type=str(params.get("launchType") or ""),
        instance_id=instances.instance_id(instance) if instance else "",
    )
    chunk, token = page([task_arn(config, cluster, i) for i in ids], params, InvalidParameterException)
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
