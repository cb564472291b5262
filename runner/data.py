"""The runner's named reads and writes, returning frozen dataclasses (as registry.metadata).

First slice of issue 8 item 1: the supervisor's and the service loop's SQL. The resource
modules (clusters, taskdefs, instances, tasks, services, secrets, tags) still hold their own
SQL and pass ``sqlite3.Row`` s; they move here next.
Second slice: clusters, task definitions, container instances (and attributes), secrets, tags, change times.
Over 500 lines on purpose while the slices land in one file (the lead merges them); then split by resource.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dockyard.store import Store, Tx

__all__ = [
    "CLUSTER_TOPIC",
    "INSTANCE_TOPIC",
    "SECRET_TOPIC",
    "TASKDEF_TOPIC",
    "Cluster",
    "ClusterCounts",
    "ExpiredTask",
    "Family",
    "Reader",
    "Registration",
    "SecretInfo",
    "StoredDefinition",
    "StoredInstance",
    "TagTarget",
    "TaskPlacement",
    "active_cluster_names",
    "add_definition",
    "add_instance",
    "change_times",
    "cluster",
    "cluster_counts",
    "clusters_of_host",
    "deactivate_cluster",
    "deactivate_instance",
    "definition",
    "definition_ids",
    "delete_secret",
    "delete_task",
    "docker_host_of",
    "expired_tasks",
    "families",
    "forget_registration",
    "instance",
    "instance_on",
    "instances_of",
    "latest_active_definition",
    "owner",
    "put_cluster",
    "put_secret",
    "record_registration",
    "refresh_instance",
    "registrations_of_service",
    "registrations_of_task",
    "secret_infos",
    "secret_value",
    "set_definition_status",
    "set_instance_attributes",
    "set_owner",
    "set_tags",
    "tags_of",
    "task_placements",
    "unstopped_task_ids",
    "unstopped_tasks_on",
]

TASK_TOPIC = "ecs/task"  # runner.tasks.TOPIC
CLUSTER_TOPIC = "ecs/cluster"  # runner.clusters.TOPIC
TASKDEF_TOPIC = "ecs/taskdef"  # runner.taskdefs.TOPIC
INSTANCE_TOPIC = "ecs/container-instance"  # runner.instances.TOPIC
SECRET_TOPIC = "runner/secret"  # runner.secrets.TOPIC

Reader = Store | Tx  # reads work on the store or inside a transaction (consistent with its writes)


def _tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


# -- clusters -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cluster:
    name: str
    status: str
    created_at: float
    tags: tuple[dict[str, str], ...]
    settings: tuple[dict[str, Any], ...]
    configuration: Mapping[str, Any]


@dataclass(frozen=True)
class ClusterCounts:
    """What a cluster holds: unstopped tasks by (launch type, last status), ACTIVE and DRAINING
    services by (status, launch type), ACTIVE and DRAINING container instances (``remote``: those
    not the local engine)."""

    tasks: Mapping[tuple[str, str], int]
    services: Mapping[tuple[str, str], int]
    instances: int
    remote_instances: int


def _cluster(r: Any) -> Cluster:
    return Cluster(
        r["name"], r["status"], r["created_at"], _tuple(r["tags"]), _tuple(r["settings"]),
        json.loads(r["configuration"]),
    )


def cluster(reader: Reader, name: str) -> Cluster | None:
    r = reader.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
    return _cluster(r) if r else None


def active_cluster_names(reader: Reader) -> list[str]:
    rows = reader.query("SELECT name FROM clusters WHERE status = 'ACTIVE' ORDER BY name")
    return [r["name"] for r in rows]


def put_cluster(
    tx: Tx, name: str, tags: list[dict[str, str]], settings: list[Any], configuration: Mapping[str, Any]
) -> None:
    """Create ``name`` ACTIVE (replacing an INACTIVE one of that name)."""
    tx.execute(
        "INSERT OR REPLACE INTO clusters (name, status, created_at, tags, settings, configuration)"
        " VALUES (?, 'ACTIVE', ?, ?, ?, ?)",
        (name, time.time(), json.dumps(tags), json.dumps(settings), json.dumps(configuration)),
    )
    tx.changed(CLUSTER_TOPIC, name)


def cluster_counts(reader: Reader, name: str) -> ClusterCounts:
    tasks = {
        (r[0], r[1]): r[2]
        for r in reader.query(
            "SELECT launch_type, last_status, COUNT(*) FROM tasks"
            " WHERE cluster = ? AND last_status != 'STOPPED' GROUP BY launch_type, last_status",
            (name,),
        )
    }
    services = {
        (r[0], r[1] or "EC2"): r[2]
        for r in reader.query(
            "SELECT status, json_extract(spec, '$.launchType'), COUNT(*) FROM services"
            " WHERE cluster = ? AND status IN ('ACTIVE', 'DRAINING') GROUP BY 1, 2",
            (name,),
        )
    }
    by_local = {
        bool(r[0]): r[1]
        for r in reader.query(
            "SELECT local, COUNT(*) FROM container_instances"
            " WHERE cluster = ? AND status IN ('ACTIVE', 'DRAINING') GROUP BY local",
            (name,),
        )
    }
    return ClusterCounts(tasks, services, sum(by_local.values()), by_local.get(False, 0))


def deactivate_cluster(tx: Tx, name: str) -> None:
    """``name`` INACTIVE, and the local engine's container instance of it with it."""
    tx.execute("UPDATE clusters SET status = 'INACTIVE' WHERE name = ?", (name,))
    tx.changed(CLUSTER_TOPIC, name)
    for r in tx.query(
        "SELECT id FROM container_instances WHERE cluster = ? AND local = 1 AND status != 'INACTIVE'", (name,)
    ):
        deactivate_instance(tx, r["id"])


# -- task definitions -------------------------------------------------------------------------
@dataclass(frozen=True)
class StoredDefinition:
    """One task definition revision as stored (``spec``: the rendered definition)."""

    family: str
    revision: int
    status: str
    spec: Mapping[str, Any]
    registered_at: float
    registered_by: str
    deregistered_at: float | None
    tags: tuple[dict[str, str], ...]


@dataclass(frozen=True)
class Family:
    name: str
    active: bool  # it has an ACTIVE revision


def _definition(r: Any) -> StoredDefinition:
    return StoredDefinition(
        r["family"], r["revision"], r["status"], json.loads(r["spec"]), r["registered_at"],
        r["registered_by"], r["deregistered_at"], _tuple(r["tags"]),
    )


def definition(reader: Reader, family: str, revision: int) -> StoredDefinition | None:
    r = reader.query_one(
        "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
    )
    return _definition(r) if r else None


def latest_active_definition(reader: Reader, family: str) -> StoredDefinition | None:
    r = reader.query_one(
        "SELECT * FROM task_definitions WHERE family = ? AND status = 'ACTIVE'"
        " ORDER BY revision DESC LIMIT 1",
        (family,),
    )
    return _definition(r) if r else None


def definition_ids(
    reader: Reader, status: str, family: str | None, descending: bool
) -> list[tuple[str, int]]:
    """``(family, revision)`` of every definition in ``status`` (of ``family``), sorted."""
    sql, args = "SELECT family, revision FROM task_definitions WHERE status = ?", [status]
    if family is not None:
        sql += " AND family = ?"
        args.append(family)
    order = "DESC" if descending else "ASC"
    return [(r[0], r[1]) for r in reader.query(f"{sql} ORDER BY family {order}, revision {order}", args)]


def families(reader: Reader, prefix: str) -> list[Family]:
    rows = reader.query(
        "SELECT family, SUM(status = 'ACTIVE') FROM task_definitions"
        " WHERE substr(family, 1, ?) = ? GROUP BY family ORDER BY family",
        (len(prefix), prefix),
    )
    return [Family(r[0], bool(r[1])) for r in rows]


def add_definition(tx: Tx, family: str, spec: str, registered_by: str, tags: list[dict[str, str]]) -> int:
    """Store ``spec`` (JSON) as the family's next revision, ACTIVE; returns the revision."""
    last = tx.query_one("SELECT MAX(revision) FROM task_definitions WHERE family = ?", (family,))
    revision = int((last[0] if last else 0) or 0) + 1
    tx.execute(
        "INSERT INTO task_definitions (family, revision, status, spec, registered_at, registered_by, tags)"
        " VALUES (?, ?, 'ACTIVE', ?, ?, ?, ?)",
        (family, revision, spec, time.time(), registered_by, json.dumps(tags)),
    )
    tx.changed(TASKDEF_TOPIC, f"{family}:{revision}")
    return revision


def set_definition_status(tx: Tx, family: str, revision: int, status: str) -> None:
    """INACTIVE (with ``deregisteredAt`` now) or DELETE_IN_PROGRESS."""
    if status == "INACTIVE":
        tx.execute(
            "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at = ?"
            " WHERE family = ? AND revision = ?",
            (time.time(), family, revision),
        )
    else:
        tx.execute(
            "UPDATE task_definitions SET status = ? WHERE family = ? AND revision = ?",
            (status, family, revision),
        )
    tx.changed(TASKDEF_TOPIC, f"{family}:{revision}")


# -- container instances ----------------------------------------------------------------------
@dataclass(frozen=True)
class StoredInstance:
    """A container instance as stored (``builtin``/``attributes``: ECS attribute lists)."""

    id: str
    cluster: str
    docker_host: str
    ec2_instance_id: str
    status: str
    cpu: int
    memory: int
    builtin: tuple[dict[str, Any], ...]
    attributes: tuple[dict[str, Any], ...]
    version_info: Mapping[str, Any]
    tags: tuple[dict[str, str], ...]
    local: bool
    registered_at: float
    heartbeat_at: float
    version: int = 1


@dataclass(frozen=True)
class TaskPlacement:
    """An unstopped task where it sits: what it reserves on its instance's Docker host."""

    id: str
    group: str
    instance_id: str
    cpu: int
    memory: int
    host_ports: tuple[str, ...]
    last_status: str
    docker_host: str


def _instance(r: Any) -> StoredInstance:
    return StoredInstance(
        r["id"], r["cluster"], r["docker_host"], r["ec2_instance_id"], r["status"], r["cpu"], r["memory"],
        _tuple(r["builtin"]), _tuple(r["attributes"]), json.loads(r["version_info"]), _tuple(r["tags"]),
        bool(r["local"]), r["registered_at"], r["heartbeat_at"], r["version"],
    )


def instance(reader: Reader, instance_id: str, cluster: str | None = None) -> StoredInstance | None:
    """The instance ``instance_id`` (in ``cluster`` when given), whatever its status."""
    sql, args = "SELECT * FROM container_instances WHERE id = ?", [instance_id]
    if cluster is not None:
        sql += " AND cluster = ?"
        args.append(cluster)
    r = reader.query_one(sql, args)
    return _instance(r) if r else None


def instance_on(reader: Reader, cluster: str, docker_host: str) -> StoredInstance | None:
    r = reader.query_one(
        "SELECT * FROM container_instances WHERE cluster = ? AND docker_host = ?", (cluster, docker_host)
    )
    return _instance(r) if r else None


def instances_of(
    reader: Reader, cluster: str | None = None, statuses: tuple[str, ...] = ("ACTIVE",)
) -> list[StoredInstance]:
    """Instances in ``statuses`` (of ``cluster``, or of every cluster), oldest first."""
    sql = f"SELECT * FROM container_instances WHERE status IN ({', '.join('?' * len(statuses))})"
    args: list[Any] = list(statuses)
    if cluster is not None:
        sql += " AND cluster = ?"
        args.append(cluster)
    return [_instance(r) for r in reader.query(sql + " ORDER BY registered_at, id", args)]


def clusters_of_host(reader: Reader, docker_host: str) -> set[str]:
    """The clusters ``docker_host`` is an ACTIVE instance of."""
    rows = reader.query(
        "SELECT cluster FROM container_instances WHERE docker_host = ? AND status = 'ACTIVE'", (docker_host,)
    )
    return {r[0] for r in rows}


def task_placements(reader: Reader) -> list[TaskPlacement]:
    """Every unstopped task on a known instance."""
    rows = reader.query(
        "SELECT t.id, t.grp, t.instance_id, t.cpu, t.memory, t.host_ports, t.last_status, i.docker_host"
        " FROM tasks t JOIN container_instances i ON i.id = t.instance_id WHERE t.last_status != 'STOPPED'"
    )
    return [
        TaskPlacement(r[0], r[1], r[2], r[3], r[4], _tuple(r[5]), r[6], r[7]) for r in rows
    ]


def unstopped_tasks_on(reader: Reader, instance_id: str) -> int:
    row = reader.query_one(
        "SELECT COUNT(*) FROM tasks WHERE instance_id = ? AND last_status != 'STOPPED'", (instance_id,)
    )
    return int(row[0]) if row else 0


def add_instance(tx: Tx, inst: StoredInstance) -> None:
    tx.execute(
        "INSERT INTO container_instances (id, cluster, docker_host, ec2_instance_id, status, cpu, memory,"
        " builtin, attributes, version_info, tags, local, registered_at, heartbeat_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            inst.id, inst.cluster, inst.docker_host, inst.ec2_instance_id, inst.status, inst.cpu, inst.memory,
            json.dumps(list(inst.builtin)), json.dumps(list(inst.attributes)), json.dumps(inst.version_info),
            json.dumps(list(inst.tags)), int(inst.local), inst.registered_at, inst.heartbeat_at,
        ),
    )
    tx.changed(INSTANCE_TOPIC, inst.id)


def refresh_instance(tx: Tx, inst: StoredInstance, changed: bool) -> None:
    """A heartbeat: ``inst`` ACTIVE with its capacity, attributes, version info and heartbeat
    time; its ``version`` goes up (and its topic changes) only when ``changed``."""
    tx.execute(
        "UPDATE container_instances SET status = 'ACTIVE', cpu = ?, memory = ?, builtin = ?,"
        " attributes = ?, version_info = ?, heartbeat_at = ?, version = version + ? WHERE id = ?",
        (
            inst.cpu, inst.memory, json.dumps(list(inst.builtin)), json.dumps(list(inst.attributes)),
            json.dumps(inst.version_info), inst.heartbeat_at, int(changed), inst.id,
        ),
    )
    if changed:
        tx.changed(INSTANCE_TOPIC, inst.id)


def set_instance_attributes(tx: Tx, instance_id: str, attributes: list[dict[str, Any]]) -> None:
    tx.execute(
        "UPDATE container_instances SET attributes = ?, version = version + 1 WHERE id = ?",
        (json.dumps(attributes), instance_id),
    )
    tx.changed(INSTANCE_TOPIC, instance_id)


def deactivate_instance(tx: Tx, instance_id: str) -> None:
    tx.execute(
        "UPDATE container_instances SET status = 'INACTIVE', version = version + 1 WHERE id = ?",
        (instance_id,),
    )
    tx.changed(INSTANCE_TOPIC, instance_id)


def owner(reader: Reader) -> str | None:
    row = reader.query_one("SELECT id FROM runner_owner")
    return str(row[0]) if row else None


def set_owner(tx: Tx, ident: str) -> None:
    tx.execute("INSERT INTO runner_owner (id) VALUES (?)", (ident,))


# -- secrets ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecretInfo:
    """A secret without its value."""

    name: str
    created_at: float
    updated_at: float


def secret_value(reader: Reader, name: str) -> str | None:
    row = reader.query_one("SELECT value FROM secrets WHERE name = ?", (name,))
    return str(row[0]) if row else None


def secret_infos(reader: Reader) -> list[SecretInfo]:
    rows = reader.query("SELECT name, created_at, updated_at FROM secrets ORDER BY name")
    return [SecretInfo(r[0], r[1], r[2]) for r in rows]


def put_secret(tx: Tx, name: str, value: str) -> bool:
    """Create or replace; True if it was new."""
    new = tx.query_one("SELECT 1 FROM secrets WHERE name = ?", (name,)) is None
    now = time.time()
    tx.execute(
        "INSERT INTO secrets (name, value, created_at, updated_at) VALUES (?, ?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value, now, now),
    )
    tx.changed(SECRET_TOPIC, name)
    return new


def delete_secret(tx: Tx, name: str) -> bool:
    """False if there was none."""
    if not tx.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount:
        return False
    tx.changed(SECRET_TOPIC, name)
    return True


# -- tags -------------------------------------------------------------------------------------
# Where each kind of taggable resource keeps its tags: table and the row a TagTarget's key names.
_TAG_ROWS = {
    "cluster": ("clusters", "name = ? AND status = 'ACTIVE'"),
    "task-definition": ("task_definitions", "family = ? AND revision = ? AND status != 'DELETE_IN_PROGRESS'"),
    "service": ("services", "cluster = ? AND name = ? AND status != 'INACTIVE'"),
    "task": ("tasks", "cluster = ? AND id = ?"),
    "container-instance": ("container_instances", "cluster = ? AND id = ?"),
}


@dataclass(frozen=True)
class TagTarget:
    """One taggable resource: its ``kind`` (an ECS ARN's resource type), the values naming its
    row (``params``) and the change ``topic``/``key`` a tag write publishes."""

    kind: str
    params: tuple[Any, ...]
    topic: str
    key: str


def tags_of(reader: Reader, target: TagTarget) -> list[dict[str, str]] | None:
    """The resource's tags (None: no such resource)."""
    table, where = _TAG_ROWS[target.kind]
    found = reader.query_one(f"SELECT tags FROM {table} WHERE {where}", target.params)
    return None if found is None else list(json.loads(found[0]))


def set_tags(tx: Tx, target: TagTarget, tags: list[dict[str, str]]) -> None:
    table, where = _TAG_ROWS[target.kind]
    tx.execute(f"UPDATE {table} SET tags = ? WHERE {where}", (json.dumps(tags), *target.params))
    tx.changed(target.topic, target.key)


# -- the change log ---------------------------------------------------------------------------
def change_times(reader: Reader, first: int, last: int) -> dict[int, float]:
    """When each change from revision ``first`` to ``last`` committed (those still kept)."""
    rows = reader.query("SELECT revision, at FROM changes WHERE revision BETWEEN ? AND ?", (first, last))
    return {r[0]: r[1] for r in rows}




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
