"""The runner's named reads and writes, returning frozen dataclasses (as registry.metadata).

The home of the runner's SQL (the schema stays with each module's ``MIGRATIONS``): the other
modules get typed values (:class:`Task`, :class:`Service`, ...) and change the store only
through the named writes here, each one transaction that publishes its change topic.
``tests/unit/runner/test_data_layout.py`` checks that tasks, services, the service loop,
the supervisor and the worker hold no SQL.

A task is :class:`Task` everywhere in the runner (the worker, the supervisor, the service
loop, the event stream); its AWS shape is rendered at the edge (``runner.taskshapes``), and
its lifecycle is what a consumer such as the mesh reads: id, cluster, service, task
definition ``family:revision``, containers with their names, Docker ids, published ports
(:class:`Binding`) and the task's own address (:class:`TaskNetwork`), where each container
port is reached (:meth:`Task.endpoint`), statuses and health.

Why this module is longer than 500 lines: it is the whole data layer of a part with a dozen
tables, one section per table, each independent of the others, so that the SQL has one
place to be read, reviewed and later ported (PostgreSQL). The sections could become a
package (``runner/data/``, one module per table) without changing a caller.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard.store import Store, Tx
from runner.agent import lifecycle
from runner.connect import TaskConnect, connect_from_json, connect_json

__all__ = [
    "CLUSTER_TOPIC",
    "INSTANCE_TOPIC",
    "SECRET_TOPIC",
    "TASKDEF_TOPIC",
    "CapacityProvider",
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
    "TargetRegistration",
    "TaskPlacement",
    "account_setting",
    "account_settings",
    "active_cluster_names",
    "add_definition",
    "add_instance",
    "capacity_provider",
    "capacity_providers",
    "change_times",
    "cluster",
    "cluster_counts",
    "clusters_to_join",
    "clusters_with_provider",
    "deactivate_cluster",
    "deactivate_instance",
    "definition",
    "definition_ids",
    "delete_account_setting",
    "delete_capacity_provider",
    "delete_secret",
    "delete_task",
    "docker_host_of",
    "drain_target",
    "expired_tasks",
    "families",
    "forget_registration",
    "forget_targets",
    "instance",
    "instance_on",
    "instances_of",
    "latest_active_definition",
    "owner",
    "put_account_setting",
    "put_capacity_provider",
    "put_cluster",
    "put_secret",
    "record_registration",
    "record_target",
    "refresh_instance",
    "registrations_of_service",
    "registrations_of_task",
    "secret_infos",
    "secret_value",
    "set_cluster_capacity",
    "set_definition_status",
    "set_instance_attributes",
    "set_instance_status",
    "set_owner",
    "set_tags",
    "tags_of",
    "targets_of_service",
    "targets_of_task",
    "task_placements",
    "unstopped_task_ids",
    "unstopped_tasks_on",
    "update_cluster",
]

TASK_TOPIC = "ecs/task"  # runner.tasks.TOPIC
CLUSTER_TOPIC = "ecs/cluster"  # runner.clusters.TOPIC
TASKDEF_TOPIC = "ecs/taskdef"  # runner.taskdefs.TOPIC
INSTANCE_TOPIC = "ecs/container-instance"  # runner.instances.TOPIC
SECRET_TOPIC = "runner/secret"  # runner.secrets.TOPIC
ACCOUNT_SETTING_TOPIC = "ecs/account-setting"
CAPACITY_TOPIC = "ecs/capacity-provider"

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
    service_connect_namespace: str = ""  # serviceConnectDefaults.namespace: the namespace's ARN
    capacity_providers: tuple[str, ...] = ()  # PutClusterCapacityProviders (runner.capacity)
    default_strategy: tuple[Mapping[str, Any], ...] = ()  # its defaultCapacityProviderStrategy


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
        json.loads(r["configuration"]), r["service_connect"], _tuple(r["capacity_providers"]),
        _tuple(r["default_strategy"]),
    )


def cluster(reader: Reader, name: str) -> Cluster | None:
    r = reader.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
    return _cluster(r) if r else None


def active_cluster_names(reader: Reader) -> list[str]:
    rows = reader.query("SELECT name FROM clusters WHERE status = 'ACTIVE' ORDER BY name")
    return [r["name"] for r in rows]


def put_cluster(
    tx: Tx, name: str, tags: list[dict[str, str]], settings: list[Any], configuration: Mapping[str, Any],
    service_connect_namespace: str = "",
) -> None:
    """Create ``name`` ACTIVE (replacing an INACTIVE one of that name)."""
    tx.execute(
        "INSERT OR REPLACE INTO clusters (name, status, created_at, tags, settings, configuration,"
        " service_connect) VALUES (?, 'ACTIVE', ?, ?, ?, ?, ?)",
        (name, time.time(), json.dumps(tags), json.dumps(settings), json.dumps(configuration),
         service_connect_namespace),
    )
    tx.changed(CLUSTER_TOPIC, name)


def update_cluster(
    tx: Tx, name: str, *, settings: list[Any] | None = None, configuration: Mapping[str, Any] | None = None,
    service_connect_namespace: str | None = None,
) -> None:
    """UpdateCluster(Settings): replace what is given (None: kept; ``""`` namespace: none)."""
    for column, value in (("settings", None if settings is None else json.dumps(settings)),
                          ("configuration", None if configuration is None else json.dumps(configuration)),
                          ("service_connect", service_connect_namespace)):
        if value is not None:
            tx.execute(f"UPDATE clusters SET {column} = ? WHERE name = ?", (value, name))
    tx.changed(CLUSTER_TOPIC, name)


def set_cluster_capacity(tx: Tx, name: str, providers: list[str], strategy: list[Mapping[str, Any]]) -> None:
    tx.execute("UPDATE clusters SET capacity_providers = ?, default_strategy = ? WHERE name = ?",
               (json.dumps(providers), json.dumps(strategy), name))
    tx.changed(CLUSTER_TOPIC, name)


# -- capacity providers (runner.capacity) -------------------------------------------------------
@dataclass(frozen=True)
class CapacityProvider:
    """A capacity provider: the container instances whose ``autoscaling-group`` attribute is
    ``group`` (the name in its ``autoScalingGroupArn``); ``spec`` its normalised
    ``autoScalingGroupProvider``."""

    name: str
    group: str
    spec: Mapping[str, Any]
    tags: tuple[dict[str, str], ...]
    update_status: str
    created_at: float


def _provider(r: Any) -> CapacityProvider:
    return CapacityProvider(r["name"], r["grp"], json.loads(r["spec"]), _tuple(r["tags"]), r["update_status"],
                            r["created_at"])


def capacity_provider(reader: Reader, name: str) -> CapacityProvider | None:
    r = reader.query_one("SELECT * FROM capacity_providers WHERE name = ?", (name,))
    return _provider(r) if r else None


def capacity_providers(reader: Reader) -> list[CapacityProvider]:
    return [_provider(r) for r in reader.query("SELECT * FROM capacity_providers ORDER BY created_at, name")]


def put_capacity_provider(tx: Tx, p: CapacityProvider) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO capacity_providers (name, grp, spec, tags, update_status, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (p.name, p.group, json.dumps(dict(p.spec)), json.dumps(list(p.tags)), p.update_status, p.created_at),
    )
    tx.changed(CAPACITY_TOPIC, p.name)


def delete_capacity_provider(tx: Tx, name: str) -> None:
    tx.execute("DELETE FROM capacity_providers WHERE name = ?", (name,))
    tx.changed(CAPACITY_TOPIC, name)


def clusters_with_provider(reader: Reader, name: str) -> list[str]:
    """The ACTIVE clusters ``name`` is associated with."""
    rows = reader.query("SELECT name, capacity_providers FROM clusters WHERE status = 'ACTIVE' ORDER BY name")
    return [r["name"] for r in rows if name in json.loads(r["capacity_providers"])]


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


def instance_on(
    reader: Reader, cluster: str, docker_host: str, *, inactive: bool = False
) -> StoredInstance | None:
    """``docker_host``'s instance in ``cluster`` that is not deregistered (INACTIVE), or with
    ``inactive`` the latest deregistered one when there is none other."""
    r = reader.query_one(
        "SELECT * FROM container_instances WHERE cluster = ? AND docker_host = ?"
        + ("" if inactive else " AND status != 'INACTIVE'")
        + " ORDER BY status = 'INACTIVE', registered_at DESC LIMIT 1",
        (cluster, docker_host),
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


def clusters_to_join(reader: Reader, docker_host: str) -> list[str]:
    """The ACTIVE clusters ``docker_host`` is no instance of: neither ACTIVE or DRAINING, nor
    deregistered since the cluster was (re)created (a deregistration stays one until then)."""
    rows = reader.query(
        "SELECT name FROM clusters c WHERE status = 'ACTIVE' AND NOT EXISTS ("
        " SELECT 1 FROM container_instances i WHERE i.cluster = c.name AND i.docker_host = ?"
        " AND (i.status != 'INACTIVE' OR i.registered_at >= c.created_at)) ORDER BY name",
        (docker_host,),
    )
    return [r[0] for r in rows]


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
    """A heartbeat: ``inst`` ACTIVE (a DRAINING one stays DRAINING; an INACTIVE one, the local
    engine back in its cluster created anew, is registered again now) with its capacity,
    attributes, version info and heartbeat time; its ``version`` goes up (and its topic
    changes) only when ``changed``."""
    tx.execute(
        "UPDATE container_instances SET"
        " status = CASE status WHEN 'DRAINING' THEN 'DRAINING' ELSE 'ACTIVE' END,"
        " registered_at = CASE status WHEN 'INACTIVE' THEN ? ELSE registered_at END,"
        " cpu = ?, memory = ?, builtin = ?, attributes = ?, version_info = ?, heartbeat_at = ?,"
        " version = version + ? WHERE id = ?",
        (
            inst.heartbeat_at, inst.cpu, inst.memory, json.dumps(list(inst.builtin)),
            json.dumps(list(inst.attributes)), json.dumps(inst.version_info), inst.heartbeat_at,
            int(changed), inst.id,
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


def set_instance_status(tx: Tx, instance_id: str, status: str) -> None:
    """ACTIVE or DRAINING (UpdateContainerInstancesState)."""
    tx.execute(
        "UPDATE container_instances SET status = ?, version = version + 1 WHERE id = ?", (status, instance_id)
    )
    tx.changed(INSTANCE_TOPIC, instance_id)


def orphan_tasks_on(tx: Tx, instance_id: str, reason: str) -> list[str]:
    """A forced deregistration: the instance's unstopped tasks STOPPED in the store (no longer
    counted, placed on or supervised), their containers left as they are; the task ids."""
    ids = [r[0] for r in tx.query(
        "SELECT id FROM tasks WHERE instance_id = ? AND last_status != 'STOPPED'", (instance_id,)
    )]
    now = time.time()
    for task_id in ids:
        tx.execute(
            "UPDATE tasks SET desired_status = 'STOPPED', last_status = 'STOPPED', stopped_reason = ?,"
            " stopping_at = COALESCE(stopping_at, ?), stopped_at = ?, version = version + 1 WHERE id = ?",
            (reason, now, now, task_id),
        )
        tx.changed(TASK_TOPIC, task_id)
    return ids


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


# -- account settings (runner.accountsettings) -------------------------------------------------
def account_settings(reader: Reader) -> dict[tuple[str, str], str]:
    """Every stored setting: (name, principal ARN or "" for the account's default) -> value."""
    return {(r[0], r[1]): r[2] for r in reader.query("SELECT name, principal, value FROM account_settings")}


def account_setting(reader: Reader, name: str, principal: str = "") -> str | None:
    row = reader.query_one(
        "SELECT value FROM account_settings WHERE name = ? AND principal = ?", (name, principal)
    )
    return str(row[0]) if row else None


def put_account_setting(tx: Tx, name: str, principal: str, value: str) -> None:
    tx.execute(
        "INSERT INTO account_settings (name, principal, value) VALUES (?, ?, ?)"
        " ON CONFLICT (name, principal) DO UPDATE SET value = excluded.value",
        (name, principal, value),
    )
    tx.changed(ACCOUNT_SETTING_TOPIC, name)


def delete_account_setting(tx: Tx, name: str, principal: str) -> str | None:
    """The value deleted; None if there was none."""
    value = account_setting(tx, name, principal)
    if value is not None:
        tx.execute("DELETE FROM account_settings WHERE name = ? AND principal = ?", (name, principal))
        tx.changed(ACCOUNT_SETTING_TOPIC, name)
    return value


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


# -- service targets (loadBalancers; runner.balancing) -----------------------------------------
@dataclass(frozen=True)
class TargetRegistration:
    """A task registered as a target of an ELBv2 target group; ``drain_until`` (epoch seconds)
    set once it is deregistered: the task stops only after it."""

    task_id: str
    target_group: str
    target_id: str
    port: int
    drain_until: float | None = None

    @property
    def target(self) -> tuple[str, int]:
        return (self.target_id, self.port)


def _target_registration(r: Any) -> TargetRegistration:
    return TargetRegistration(r["task_id"], r["target_group"], r["target_id"], r["port"], r["drain_until"])


def targets_of_service(reader: Reader, cluster: str, service: str) -> list[TargetRegistration]:
    rows = reader.query(
        "SELECT * FROM service_targets WHERE cluster = ? AND service = ? ORDER BY registered_at, task_id",
        (cluster, service),
    )
    return [_target_registration(r) for r in rows]


def targets_of_task(reader: Reader, task_id: str) -> list[TargetRegistration]:
    rows = reader.query("SELECT * FROM service_targets WHERE task_id = ?", (task_id,))
    return [_target_registration(r) for r in rows]


async def record_target(store: Store, reg: TargetRegistration, cluster: str, service: str) -> None:
    async with store.transaction() as tx:
        tx.execute(
            "INSERT OR IGNORE INTO service_targets (task_id, target_group, target_id, port, cluster,"
            " service, registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (reg.task_id, reg.target_group, reg.target_id, reg.port, cluster, service, time.time()),
        )


async def drain_target(store: Store, reg: TargetRegistration, until: float) -> None:
    """Mark the registration deregistered, draining until ``until`` (the first mark wins)."""
    async with store.transaction() as tx:
        tx.execute(
            "UPDATE service_targets SET drain_until = COALESCE(drain_until, ?) WHERE task_id = ?"
            " AND target_group = ? AND target_id = ? AND port = ?",
            (until, reg.task_id, reg.target_group, reg.target_id, reg.port),
        )


async def forget_targets(store: Store, task_id: str) -> None:
    async with store.transaction() as tx:
        tx.execute("DELETE FROM service_targets WHERE task_id = ?", (task_id,))


# == tasks (rtasks) ===========================================================================
# A task row as the runner passes it around: :class:`Task`. The JSON columns are parsed here and
# written back from the typed values; the AWS shapes are rendered at the edge (runner.taskshapes).

SERVICE_TOPIC = "ecs/service"  # runner.services.TOPIC
# The columns the worker reports progress in (``update_task``'s keyword arguments).
PROGRESS_FIELDS = frozenset({
    "last_status", "health", "containers", "network", "pull_started_at", "pull_stopped_at",
    "started_at", "connectivity_at", "stopping_at", "stopped_at", "execution_stopped_at",
})


@dataclass(frozen=True)
class Binding:
    """A published port of a container (bridge mode): ``host_port`` on the task's host."""

    container_port: int
    host_port: int
    protocol: str = "tcp"
    bind_ip: str = "0.0.0.0"


@dataclass(frozen=True)
class ContainerState:
    """What the worker last reported of one container (``runtime_id``: its Docker id;
    ``image``: the reference it was created from; ``exit_code`` None while it has not exited)."""

    name: str
    runtime_id: str = ""
    image: str = ""
    last_status: str = "PENDING"
    health: str = "UNKNOWN"
    exit_code: int | None = None
    reason: str = ""
    image_digest: str = ""
    bindings: tuple[Binding, ...] = ()


@dataclass(frozen=True)
class TaskNetwork:
    """An awsvpc task's namespace: the pause container holding it, its address, the ENI id shown."""

    pause: str = ""
    ip: str = ""
    attachment: str = ""


@dataclass(frozen=True)
class Task:
    """One task: where it runs, the task definition snapshot it was started with (ECS JSON, as
    DescribeTaskDefinition answered it then), its statuses and what its containers reported.

    ``containers`` holds a state per container the worker has reported on (in report order;
    empty until the first report): :meth:`state_of` gives a default for the others."""

    id: str
    cluster: str
    instance_id: str
    definition_arn: str
    family: str
    definition: Mapping[str, Any]
    launch_type: str
    last_status: str
    desired_status: str
    created_at: float
    group: str = ""
    started_by: str = ""
    cpu: int = 0
    memory: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    host_ports: tuple[str, ...] = ()  # fixed host ports it reserves, "80/tcp"
    stop_code: str = ""
    stopped_reason: str = ""
    health: str = "UNKNOWN"
    containers: tuple[ContainerState, ...] = ()
    network: TaskNetwork = TaskNetwork()
    tags: tuple[Mapping[str, str], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # request fields echoed back
    connect: TaskConnect | None = None  # Service Connect: set when placed (runner.connect)
    pull_started_at: float | None = None
    pull_stopped_at: float | None = None
    started_at: float | None = None
    connectivity_at: float | None = None
    stopping_at: float | None = None
    stopped_at: float | None = None
    execution_stopped_at: float | None = None
    version: int = 1
    protected_until: float | None = None  # task scale-in protection (runner.protection)

    @property
    def revision(self) -> int:
        return int(self.definition.get("revision") or 0)

    @property
    def definition_key(self) -> str:
        """``family:revision`` of the task definition it runs."""
        return f"{self.family}:{self.revision}"

    @property
    def service(self) -> str:
        """The service it belongs to (its group is ``service:NAME``), or ``""``."""
        return self.group[len("service:"):] if self.group.startswith("service:") else ""

    @property
    def network_mode(self) -> str:
        return str(self.definition.get("networkMode") or "bridge")

    @property
    def container_definitions(self) -> list[Mapping[str, Any]]:
        return list(self.definition.get("containerDefinitions") or [])

    @property
    def has_health_check(self) -> bool:
        """Some essential container of its definition has a health check."""
        return any(
            c.get("essential", True) and (c.get("healthCheck") or {}).get("command")
            for c in self.container_definitions
        )

    def state_of(self, name: str) -> ContainerState:
        return next((c for c in self.containers if c.name == name), ContainerState(name))

    def endpoint(self, container: str, container_port: int) -> tuple[str, int] | None:
        """Where ``container_port`` of ``container`` is reached, as (address, port): awsvpc at
        the task's own address and that port; bridge at the port Docker bound on the host;
        host and none at that port on the host. The address ``""`` means the address of the
        task's container instance. None while it cannot be reached yet (an awsvpc task with no
        address, a bridge port not bound)."""
        mode = self.network_mode
        if mode == "awsvpc":
            return (self.network.ip, container_port) if self.network.ip else None
        if mode == "bridge":
            bound = [b for b in self.state_of(container).bindings if b.container_port == container_port]
            return ("", bound[0].host_port) if bound else None
        return ("", container_port)


@dataclass(frozen=True)
class NewTask:
    """A task to record (:func:`record_tasks`): placed, not yet started."""

    id: str
    cluster: str
    instance_id: str
    definition: Mapping[str, Any]
    launch_type: str
    created_at: float
    group: str = ""
    started_by: str = ""
    cpu: int = 0
    memory: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    host_ports: tuple[str, ...] = ()
    tags: tuple[Mapping[str, str], ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)
    connect: TaskConnect | None = None


@dataclass(frozen=True)
class TaskBrief:
    """A live task of a service, for its counts: its deployment (``startedBy``) and status."""

    deployment: str
    last_status: str


def _binding(b: Mapping[str, Any]) -> Binding:
    return Binding(int(b["containerPort"]), int(b["hostPort"]), b.get("protocol") or "tcp",
                   b.get("bindIP") or "0.0.0.0")


def _state(name: str, d: Mapping[str, Any]) -> ContainerState:
    return ContainerState(
        name,
        runtime_id=d.get("runtimeId") or "",
        image=d.get("image") or "",
        last_status=d.get("lastStatus") or "PENDING",
        health=d.get("healthStatus") or "UNKNOWN",
        exit_code=d.get("exitCode"),
        reason=d.get("reason") or "",
        image_digest=d.get("imageDigest") or "",
        bindings=tuple(_binding(b) for b in d.get("networkBindings") or []),
    )


def _state_json(s: ContainerState) -> dict[str, Any]:
    out: dict[str, Any] = {"lastStatus": s.last_status, "healthStatus": s.health}
    for key, value in (("runtimeId", s.runtime_id), ("image", s.image), ("imageDigest", s.image_digest),
                       ("reason", s.reason)):
        if value:
            out[key] = value
    if s.exit_code is not None:
        out["exitCode"] = s.exit_code
    if s.bindings:
        out["networkBindings"] = [
            {"bindIP": b.bind_ip, "containerPort": b.container_port, "hostPort": b.host_port,
             "protocol": b.protocol}
            for b in s.bindings
        ]
    return out


def _task(r: Any) -> Task:
    net = json.loads(r["network"])
    return Task(
        id=r["id"],
        cluster=r["cluster"],
        instance_id=r["instance_id"],
        definition_arn=r["definition_arn"],
        family=r["family"],
        definition=json.loads(r["definition"]),
        launch_type=r["launch_type"],
        last_status=r["last_status"],
        desired_status=r["desired_status"],
        created_at=r["created_at"],
        group=r["grp"],
        started_by=r["started_by"],
        cpu=r["cpu"],
        memory=r["memory"],
        overrides=json.loads(r["overrides"]),
        host_ports=tuple(json.loads(r["host_ports"])),
        stop_code=r["stop_code"],
        stopped_reason=r["stopped_reason"],
        health=r["health"],
        containers=tuple(_state(n, d) for n, d in json.loads(r["containers"]).items()),
        network=TaskNetwork(net.get("pause", ""), net.get("ip", ""), net.get("attachment", "")),
        tags=tuple(json.loads(r["tags"])),
        extra=json.loads(r["extra"]),
        connect=connect_from_json(r["connect"]),
        pull_started_at=r["pull_started_at"],
        pull_stopped_at=r["pull_stopped_at"],
        started_at=r["started_at"],
        connectivity_at=r["connectivity_at"],
        stopping_at=r["stopping_at"],
        stopped_at=r["stopped_at"],
        execution_stopped_at=r["execution_stopped_at"],
        version=r["version"],
        protected_until=r["protected_until"],
    )


def _column(key: str, value: Any) -> Any:
    """A progress field as stored: the typed containers and network as their JSON."""
    if key == "containers":
        return json.dumps({s.name: _state_json(s) for s in value})
    if key == "network":
        return json.dumps({k: v for k, v in (("pause", value.pause), ("ip", value.ip),
                                             ("attachment", value.attachment)) if v})
    return value


def task(store: Store, task_id: str) -> Task | None:
    r = store.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
    return _task(r) if r else None


def task_in(store: Store, cluster: str, task_id: str) -> Task | None:
    r = store.query_one("SELECT * FROM tasks WHERE id = ? AND cluster = ?", (task_id, cluster))
    return _task(r) if r else None


def task_ids(
    store: Store,
    cluster: str,
    *,
    desired: str = "RUNNING",
    family: str = "",
    started_by: str = "",
    group: str = "",
    launch_type: str = "",
    instance_id: str = "",
) -> list[str]:
    """ListTasks: ids of the cluster's tasks, oldest first. ``desired`` is RUNNING, STOPPED or
    PENDING (wanted RUNNING and not there yet); empty filters match everything."""
    sql = "SELECT id FROM tasks WHERE cluster = ?"
    args: list[Any] = [cluster]
    if desired == "PENDING":
        sql += " AND desired_status = 'RUNNING' AND last_status IN ('PROVISIONING', 'PENDING', 'ACTIVATING')"
    else:
        sql += " AND desired_status = ?"
        args.append(desired)
    for column, value in (("family", family), ("started_by", started_by), ("grp", group),
                          ("launch_type", launch_type), ("instance_id", instance_id)):
        if value:
            sql += f" AND {column} = ?"
            args.append(value)
    return [r["id"] for r in store.query(sql + " ORDER BY created_at, id", args)]


def tasks_of_group(store: Store, cluster: str, group: str, *, running: bool = False) -> list[Task]:
    """The group's tasks (every status, or with ``running`` only those RUNNING and wanted so),
    oldest first."""
    sql = "SELECT * FROM tasks WHERE cluster = ? AND grp = ?"
    if running:
        sql += " AND desired_status = 'RUNNING' AND last_status = 'RUNNING'"
    return [_task(r) for r in store.query(sql + " ORDER BY created_at, id", (cluster, group))]


def running_tasks(store: Store) -> list[Task]:
    """Every task RUNNING now, oldest first."""
    rows = store.query("SELECT * FROM tasks WHERE last_status = 'RUNNING' ORDER BY created_at, id")
    return [_task(r) for r in rows]


def meshed_tasks(store: Store) -> list[Task]:
    """Every task with a Service Connect state (``connect``) that is not STOPPED, oldest first."""
    rows = store.query("SELECT * FROM tasks WHERE connect != '' AND last_status != 'STOPPED'"
                       " ORDER BY created_at, id")
    return [_task(r) for r in rows]


def live_tasks_of_group(store: Store, cluster: str, group: str) -> list[TaskBrief]:
    """The group's tasks wanted RUNNING and not STOPPED, in brief."""
    rows = store.query(
        "SELECT started_by, last_status FROM tasks WHERE cluster = ? AND grp = ?"
        " AND desired_status = 'RUNNING' AND last_status != 'STOPPED'",
        (cluster, group),
    )
    return [TaskBrief(r["started_by"], r["last_status"]) for r in rows]


async def record_tasks(store: Store, choose: Callable[[], Sequence[NewTask]]) -> list[Task]:
    """Record the tasks ``choose()`` returns, ``PROVISIONING`` and wanted ``RUNNING``.

    ``choose`` runs inside the write transaction, so what it reads of the store (the hosts'
    usage) cannot change before its tasks are recorded: two launches never book the same room."""
    async with store.transaction() as tx:
        new = list(choose())
        for t in new:
            tx.execute(
                "INSERT INTO tasks (id, cluster, instance_id, definition_arn, family, definition,"
                " overrides, launch_type, last_status, desired_status, started_by, grp, cpu, memory,"
                " host_ports, tags, extra, created_at, connect) VALUES (?, ?, ?, ?, ?, ?, ?, ?,"
                " 'PROVISIONING', 'RUNNING', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    t.id, t.cluster, t.instance_id, t.definition.get("taskDefinitionArn", ""),
                    t.definition.get("family", ""), json.dumps(t.definition), json.dumps(dict(t.overrides)),
                    t.launch_type, t.started_by, t.group, t.cpu, t.memory, json.dumps(list(t.host_ports)),
                    json.dumps([dict(x) for x in t.tags]), json.dumps(dict(t.extra)), t.created_at,
                    connect_json(t.connect),
                ),
            )
            tx.changed(TASK_TOPIC, t.id)
        return [_task(tx.query_one("SELECT * FROM tasks WHERE id = ?", (t.id,))) for t in new]


def _tx_task(tx: Tx, task_id: str) -> Task | None:
    r = tx.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
    return _task(r) if r else None


async def update_task(store: Store, task_id: str, **fields: Any) -> Task | None:
    """Record the worker's progress on one task (keys from :data:`PROGRESS_FIELDS`;
    ``containers`` a sequence of :class:`ContainerState`, ``network`` a :class:`TaskNetwork`).

    ``last_status`` never moves backwards; the task's ``version`` goes up on every change.
    Returns the task as updated, or None if it is gone. Unknown keys raise ValueError."""
    unknown = set(fields) - PROGRESS_FIELDS
    if unknown:
        raise ValueError(f"not a task progress field: {', '.join(sorted(unknown))}")
    values = {k: _column(k, v) for k, v in fields.items()}
    async with store.transaction() as tx:
        row = tx.query_one("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            return None
        if "last_status" in values and lifecycle.status_index(values["last_status"]) < lifecycle.status_index(
            row["last_status"]
        ):
            del values["last_status"]
        values = {k: v for k, v in values.items() if row[k] != v}
        if not values:
            return _task(row)
        sets = ", ".join(f"{k} = ?" for k in values)
        tx.execute(f"UPDATE tasks SET {sets}, version = version + 1 WHERE id = ?",
                   (*values.values(), task_id))
        tx.changed(TASK_TOPIC, task_id)
        return _tx_task(tx, task_id)


async def request_task_stop(store: Store, task_id: str, code: str, reason: str) -> Task | None:
    """Want the task STOPPED (the first stop code and reason win); the task, or None if gone."""
    async with store.transaction() as tx:
        row = tx.query_one("SELECT desired_status FROM tasks WHERE id = ?", (task_id,))
        if row is None:
            return None
        if row["desired_status"] != "STOPPED":
            tx.execute(
                "UPDATE tasks SET desired_status = 'STOPPED', stop_code = ?, stopped_reason = ?,"
                " stopping_at = COALESCE(stopping_at, ?), version = version + 1 WHERE id = ?",
                (code, reason, time.time(), task_id),
            )
            tx.changed(TASK_TOPIC, task_id)
        return _tx_task(tx, task_id)


def set_task_protection(tx: Tx, task_id: str, until: float | None) -> None:
    """Task scale-in protection until ``until`` (epoch seconds; None: unprotected)."""
    tx.execute("UPDATE tasks SET protected_until = ?, version = version + 1 WHERE id = ?", (until, task_id))
    tx.changed(TASK_TOPIC, task_id)


# == services (rtasks) ========================================================================
@dataclass(frozen=True)
class Service:
    """One service row (see runner.services): ``spec`` its normalised request, ``deployments``
    ECS's ``deployments[]`` (PRIMARY first, each with its full ``definition``),
    ``last_completed`` the last COMPLETED deployment, ``events`` newest first.

    The JSON values are plain dicts and lists: a caller that edits them works on a copy
    (``copy.deepcopy``) and writes a new Service with :func:`modify_service` or
    :func:`save_service`."""

    cluster: str
    name: str
    status: str
    spec: Mapping[str, Any]
    created_at: float
    updated_at: float
    deployments: tuple[Mapping[str, Any], ...] = ()
    last_completed: Mapping[str, Any] | None = None
    events: tuple[Mapping[str, Any], ...] = ()
    steady: bool = False
    tags: tuple[Mapping[str, str], ...] = ()
    version: int = 1

    @property
    def key(self) -> str:
        """The change key of the service topic: ``cluster/name``."""
        return f"{self.cluster}/{self.name}"

    @property
    def primary(self) -> Mapping[str, Any] | None:
        return next((d for d in self.deployments if d["status"] == "PRIMARY"), None)


def _service(r: Any) -> Service:
    return Service(
        cluster=r["cluster"],
        name=r["name"],
        status=r["status"],
        spec=json.loads(r["spec"]),
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        deployments=tuple(json.loads(r["deployments"])),
        last_completed=json.loads(r["last_completed"]) or None,
        events=tuple(json.loads(r["events"])),
        steady=bool(r["steady"]),
        tags=tuple(json.loads(r["tags"])),
        version=r["version"],
    )


def _service_columns(s: Service) -> tuple[Any, ...]:
    """The columns a service write sets: status, spec, deployments, last_completed, events, steady."""
    return (
        s.status,
        json.dumps(s.spec),
        json.dumps(list(s.deployments)),
        json.dumps(s.last_completed or {}),
        json.dumps(list(s.events)),
        int(s.steady),
    )


_SET_SERVICE = (
    "UPDATE services SET status = ?, spec = ?, deployments = ?, last_completed = ?, events = ?, steady = ?,"
    " updated_at = ?, version = version + 1 WHERE cluster = ? AND name = ?"
)


def service(store: Store, cluster: str, name: str) -> Service | None:
    r = store.query_one("SELECT * FROM services WHERE cluster = ? AND name = ?", (cluster, name))
    return _service(r) if r else None


def service_keys(store: Store) -> list[tuple[str, str]]:
    """(cluster, name) of every service not INACTIVE."""
    return [(r["cluster"], r["name"])
            for r in store.query("SELECT cluster, name FROM services WHERE status != 'INACTIVE'")]


def services_in(store: Store, cluster: str) -> list[Service]:
    """The cluster's services not INACTIVE, oldest first."""
    rows = store.query(
        "SELECT * FROM services WHERE cluster = ? AND status != 'INACTIVE' ORDER BY created_at, name",
        (cluster,),
    )
    return [_service(r) for r in rows]


def active_services(store: Store) -> list[Service]:
    """Every ACTIVE service of every cluster, oldest first."""
    rows = store.query("SELECT * FROM services WHERE status = 'ACTIVE' ORDER BY created_at")
    return [_service(r) for r in rows]


def live_services(store: Store) -> list[Service]:
    """Every service not INACTIVE (ACTIVE or DRAINING: its tasks may still run), oldest first."""
    rows = store.query("SELECT * FROM services WHERE status != 'INACTIVE' ORDER BY created_at, cluster, name")
    return [_service(r) for r in rows]


async def create_service(store: Store, new: Service) -> bool:
    """Record ``new`` (ACTIVE, replacing an INACTIVE one of that name); False when a service of
    that name exists and is not INACTIVE."""
    async with store.transaction() as tx:
        row = tx.query_one(
            "SELECT status FROM services WHERE cluster = ? AND name = ?", (new.cluster, new.name)
        )
        if row is not None and row["status"] != "INACTIVE":
            return False
        tx.execute(
            "INSERT OR REPLACE INTO services (cluster, name, status, spec, deployments, last_completed,"
            " events, steady, tags, created_at, updated_at) VALUES (?, ?, 'ACTIVE', ?, ?, ?, ?, ?, ?, ?, ?)",
            (new.cluster, new.name, *_service_columns(new)[1:], json.dumps([dict(t) for t in new.tags]),
             new.created_at, new.updated_at),
        )
        tx.changed(SERVICE_TOPIC, new.key)
    return True


async def modify_service(
    store: Store, cluster: str, name: str, change: Callable[[Service | None], Service]
) -> Service:
    """Read the service and write ``change(service)`` back in one transaction (``change`` gets
    None for an unknown service and raises to refuse); returns the service as written."""
    async with store.transaction() as tx:
        r = tx.query_one("SELECT * FROM services WHERE cluster = ? AND name = ?", (cluster, name))
        new = change(_service(r) if r else None)
        tx.execute(_SET_SERVICE, (*_service_columns(new), new.updated_at, cluster, name))
        tx.changed(SERVICE_TOPIC, f"{cluster}/{name}")
        r = tx.query_one("SELECT * FROM services WHERE cluster = ? AND name = ?", (cluster, name))
        return _service(r)


async def save_service(store: Store, old: Service, new: Service) -> bool:
    """Write ``new`` over ``old`` unless the row moved on since ``old`` was read (its version
    changed: a concurrent UpdateService wins) or nothing changed; True if written."""
    if _service_columns(new) == _service_columns(old):
        return False
    async with store.transaction() as tx:
        cur = tx.execute(_SET_SERVICE + " AND version = ?",
                         (*_service_columns(new), new.updated_at, old.cluster, old.name, old.version))
        if cur.rowcount:
            tx.changed(SERVICE_TOPIC, old.key)
        return bool(cur.rowcount)


# -- service deployments (runner.servicedeployments) ------------------------------------------
@dataclass(frozen=True)
class ServiceDeploymentRecord:
    """One ECS service deployment as recorded (``body``: its ServiceDeployment with the
    revision it targets under ``revision``; see runner.servicedeployments)."""

    arn: str
    revision_arn: str
    cluster: str
    service: str
    created_at: float
    body: Mapping[str, Any]


MAX_SERVICE_DEPLOYMENTS = 50  # kept per service, newest first


def _record(r: Any) -> ServiceDeploymentRecord:
    return ServiceDeploymentRecord(r["arn"], r["revision_arn"], r["cluster"], r["service"], r["created_at"],
                                   json.loads(r["body"]))


async def put_service_deployment(store: Store, rec: ServiceDeploymentRecord) -> None:
    """Write (or replace) the record; a service keeps its newest :data:`MAX_SERVICE_DEPLOYMENTS`."""
    async with store.transaction() as tx:
        tx.execute(
            "INSERT OR REPLACE INTO service_deployments"
            " (arn, revision_arn, cluster, service, created_at, body) VALUES (?, ?, ?, ?, ?, ?)",
            (rec.arn, rec.revision_arn, rec.cluster, rec.service, rec.created_at, json.dumps(rec.body)),
        )
        tx.execute(
            "DELETE FROM service_deployments WHERE cluster = ? AND service = ? AND arn NOT IN ("
            " SELECT arn FROM service_deployments WHERE cluster = ? AND service = ?"
            " ORDER BY created_at DESC LIMIT ?)",
            (rec.cluster, rec.service, rec.cluster, rec.service, MAX_SERVICE_DEPLOYMENTS),
        )


def service_deployment(store: Store, arn: str) -> ServiceDeploymentRecord | None:
    r = store.query_one("SELECT * FROM service_deployments WHERE arn = ?", (arn,))
    return _record(r) if r else None


def service_deployment_by_revision(store: Store, revision_arn: str) -> ServiceDeploymentRecord | None:
    r = store.query_one("SELECT * FROM service_deployments WHERE revision_arn = ?", (revision_arn,))
    return _record(r) if r else None


def service_deployments_of(store: Store, cluster: str, service: str) -> list[ServiceDeploymentRecord]:
    """A service's records, newest first."""
    rows = store.query("SELECT * FROM service_deployments WHERE cluster = ? AND service = ?"
                       " ORDER BY created_at DESC, arn", (cluster, service))
    return [_record(r) for r in rows]


# The names of the tasks and services sections (rtasks), one block.
__all__ += [
    "MAX_SERVICE_DEPLOYMENTS",
    "PROGRESS_FIELDS",
    "SERVICE_TOPIC",
    "Binding",
    "ContainerState",
    "NewTask",
    "Service",
    "ServiceDeploymentRecord",
    "Task",
    "TaskBrief",
    "TaskNetwork",
    "active_services",
    "create_service",
    "live_services",
    "live_tasks_of_group",
    "meshed_tasks",
    "modify_service",
    "put_service_deployment",
    "record_tasks",
    "request_task_stop",
    "running_tasks",
    "save_service",
    "service",
    "service_deployment",
    "service_deployment_by_revision",
    "service_deployments_of",
    "service_keys",
    "services_in",
    "set_task_protection",
    "task",
    "task_ids",
    "task_in",
    "tasks_of_group",
    "update_task",
]


# -- Application Auto Scaling (runner.autoscaling) ------------------------------------------------
SCALING_TOPIC = "application-autoscaling"


@dataclass(frozen=True)
class ScalableTarget:
    resource: str  # service/<cluster>/<service>
    min_capacity: int
    max_capacity: int
    suspended: Mapping[str, bool]
    role_arn: str
    tags: tuple[dict[str, str], ...]
    created_at: float


@dataclass(frozen=True)
class ScalingPolicy:
    resource: str
    name: str
    arn: str
    type: str  # TargetTrackingScaling | StepScaling
    config: Mapping[str, Any]
    created_at: float


@dataclass(frozen=True)
class ScheduledAction:
    resource: str
    name: str
    arn: str
    expression: str
    timezone: str
    start_time: float | None
    end_time: float | None
    action: Mapping[str, Any]
    created_at: float
    last_run: float | None


@dataclass(frozen=True)
class ScalingActivity:
    id: str
    resource: str
    description: str
    cause: str
    start_time: float
    end_time: float | None
    status: str
    message: str
    not_scaled: tuple[str, ...]


def _scalable(r: Any) -> ScalableTarget:
    return ScalableTarget(r["resource_id"], r["min_capacity"], r["max_capacity"], json.loads(r["suspended"]),
                          r["role_arn"], _tuple(r["tags"]), r["created_at"])


def scalable_target(reader: Reader, resource: str) -> ScalableTarget | None:
    r = reader.query_one("SELECT * FROM scalable_targets WHERE resource_id = ?", (resource,))
    return _scalable(r) if r else None


def scalable_targets(reader: Reader) -> list[ScalableTarget]:
    rows = reader.query("SELECT * FROM scalable_targets ORDER BY created_at, resource_id")
    return [_scalable(r) for r in rows]


def put_scalable_target(tx: Tx, t: ScalableTarget) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO scalable_targets (resource_id, min_capacity, max_capacity, suspended,"
        " role_arn, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (t.resource, t.min_capacity, t.max_capacity, json.dumps(dict(t.suspended)), t.role_arn,
         json.dumps(list(t.tags)), t.created_at),
    )
    tx.changed(SCALING_TOPIC, t.resource)


def set_scalable_target_tags(tx: Tx, resource: str, tags: list[dict[str, str]]) -> None:
    tx.execute("UPDATE scalable_targets SET tags = ? WHERE resource_id = ?", (json.dumps(tags), resource))
    tx.changed(SCALING_TOPIC, resource)


def delete_scalable_target(tx: Tx, resource: str) -> bool:
    """The target and its policies and scheduled actions (as AWS deletes them); False if none."""
    if not tx.execute("DELETE FROM scalable_targets WHERE resource_id = ?", (resource,)).rowcount:
        return False
    tx.execute("DELETE FROM scaling_policies WHERE resource_id = ?", (resource,))
    tx.execute("DELETE FROM scheduled_actions WHERE resource_id = ?", (resource,))
    tx.changed(SCALING_TOPIC, resource)
    return True


def _policy(r: Any) -> ScalingPolicy:
    return ScalingPolicy(r["resource_id"], r["name"], r["arn"], r["type"], json.loads(r["config"]),
                         r["created_at"])


def scaling_policies(reader: Reader, resource: str | None = None) -> list[ScalingPolicy]:
    sql, args = "SELECT * FROM scaling_policies", ()
    if resource is not None:
        sql, args = sql + " WHERE resource_id = ?", (resource,)
    return [_policy(r) for r in reader.query(sql + " ORDER BY created_at, name", args)]


def put_scaling_policy(tx: Tx, p: ScalingPolicy) -> None:
    tx.execute(
        "INSERT INTO scaling_policies (resource_id, name, arn, type, config, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (resource_id, name) DO UPDATE SET type = excluded.type, config = excluded.config",
        (p.resource, p.name, p.arn, p.type, json.dumps(dict(p.config)), p.created_at),
    )
    tx.changed(SCALING_TOPIC, p.resource)


def delete_scaling_policy(tx: Tx, resource: str, name: str) -> bool:
    sql = "DELETE FROM scaling_policies WHERE resource_id = ? AND name = ?"
    gone = tx.execute(sql, (resource, name)).rowcount
    if gone:
        tx.changed(SCALING_TOPIC, resource)
    return bool(gone)


def _scheduled(r: Any) -> ScheduledAction:
    return ScheduledAction(r["resource_id"], r["name"], r["arn"], r["expression"], r["timezone"],
                           r["start_time"], r["end_time"], json.loads(r["action"]), r["created_at"],
                           r["last_run"])


def scheduled_action(reader: Reader, resource: str, name: str) -> ScheduledAction | None:
    sql = "SELECT * FROM scheduled_actions WHERE resource_id = ? AND name = ?"
    r = reader.query_one(sql, (resource, name))
    return _scheduled(r) if r else None


def scheduled_actions(reader: Reader, resource: str | None = None) -> list[ScheduledAction]:
    sql, args = "SELECT * FROM scheduled_actions", ()
    if resource is not None:
        sql, args = sql + " WHERE resource_id = ?", (resource,)
    return [_scheduled(r) for r in reader.query(sql + " ORDER BY created_at, name", args)]


def put_scheduled_action(tx: Tx, a: ScheduledAction) -> None:
    tx.execute(
        "INSERT OR REPLACE INTO scheduled_actions (resource_id, name, arn, expression, timezone, start_time,"
        " end_time, action, created_at, last_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a.resource, a.name, a.arn, a.expression, a.timezone, a.start_time, a.end_time,
         json.dumps(dict(a.action)), a.created_at, a.last_run),
    )
    tx.changed(SCALING_TOPIC, a.resource)


def delete_scheduled_action(tx: Tx, resource: str, name: str) -> bool:
    sql = "DELETE FROM scheduled_actions WHERE resource_id = ? AND name = ?"
    gone = tx.execute(sql, (resource, name)).rowcount
    if gone:
        tx.changed(SCALING_TOPIC, resource)
    return bool(gone)


def scaling_activities(
    reader: Reader, resource: str | None = None, limit: int = 1000
) -> list[ScalingActivity]:
    """The newest first."""
    sql, args = "SELECT * FROM scaling_activities", ()
    if resource is not None:
        sql, args = sql + " WHERE resource_id = ?", (resource,)
    rows = reader.query(sql + f" ORDER BY start_time DESC LIMIT {int(limit)}", args)
    return [ScalingActivity(r["id"], r["resource_id"], r["description"], r["cause"], r["start_time"],
                            r["end_time"], r["status"], r["message"], _tuple(r["not_scaled"])) for r in rows]


def add_scaling_activity(tx: Tx, a: ScalingActivity, keep: int = 1000) -> None:
    """Record ``a``, keeping the newest ``keep`` activities of its resource."""
    tx.execute(
        "INSERT INTO scaling_activities (id, resource_id, description, cause, start_time, end_time, status,"
        " message, not_scaled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (a.id, a.resource, a.description, a.cause, a.start_time, a.end_time, a.status, a.message,
         json.dumps(list(a.not_scaled))),
    )
    tx.execute(
        "DELETE FROM scaling_activities WHERE resource_id = ? AND id NOT IN"
        " (SELECT id FROM scaling_activities WHERE resource_id = ? ORDER BY start_time DESC LIMIT ?)",
        (a.resource, a.resource, keep),
    )
    tx.changed(SCALING_TOPIC, a.resource)


__all__ += [
    "SCALING_TOPIC",
    "ScalableTarget",
    "ScalingActivity",
    "ScalingPolicy",
    "ScheduledAction",
    "add_scaling_activity",
    "delete_scalable_target",
    "delete_scaling_policy",
    "delete_scheduled_action",
    "put_scalable_target",
    "put_scaling_policy",
    "put_scheduled_action",
    "scalable_target",
    "scalable_targets",
    "scaling_activities",
    "scaling_policies",
    "scheduled_action",
    "scheduled_actions",
    "set_scalable_target_tags",
]
