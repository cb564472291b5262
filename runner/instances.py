"""Container instances: the Docker hosts a cluster runs tasks on.

ECS operations: List/Describe/Register/DeregisterContainerInstance(s); the attribute
operations are in :mod:`runner.attributes`, what ``docker info`` means in :mod:`runner.engineinfo`.

* The local Docker Engine (``docker_host`` config, default the local socket; ``none``
  disables it) joins every ACTIVE cluster as a container instance at start and whenever a
  cluster is created.
* ``dockyard agent --control-plane URL --docker-host URL`` registers a further host through
  RegisterContainerInstance (with the Dockyard field ``dockerHost``: the Docker API URL the
  control plane drives it by) and repeats the call as a heartbeat; an instance whose last
  heartbeat is older than the ``agent_timeout`` config (default :data:`HEARTBEAT_GRACE`
  seconds, as ECS) shows ``agentConnected: false`` and gets no new tasks.
* DeregisterContainerInstance makes the instance INACTIVE for good: its agent's next
  heartbeat (which names the instance, as ECS's agent does with ``containerInstanceArn``) is
  refused and the agent exits; a registration that names no instance makes the host a new
  instance. With ``force``, the tasks still on it are orphaned as in ECS: STOPPED in the store
  (so services start replacements elsewhere, and they leave discovery, the mesh and the load
  balancers), while their containers keep running, no longer supervised, until they stop by
  other means. The local engine joins a cluster it was deregistered from again only when the
  cluster is created anew.
* Remaining capacity is registered minus what the host's unstopped tasks reserve, per Docker
  host (an engine in several clusters has one capacity). Custom attributes are set with
  PutAttributes (names starting ``ecs.`` are reserved).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from dockyard.aws.errors import register
from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data
from runner.engineinfo import agent_connected, builtin_attributes, capacity_from_info, ec2_id
from runner.errors import ClientException, InvalidParameterException

__all__ = [
    "HEARTBEAT_GRACE",
    "Instance",
    "agent_connected",
    "builtin_attributes",
    "capacity_from_info",
    "ensure_local",
    "instance_arn",
    "instances_in",
    "register",
    "usage_by_host",
]

MIGRATIONS = [
    Migration(
        "instances",
        1,
        """
        CREATE TABLE container_instances (
            id TEXT PRIMARY KEY, cluster TEXT NOT NULL, docker_host TEXT NOT NULL,
            ec2_instance_id TEXT NOT NULL, status TEXT NOT NULL,
            cpu INTEGER NOT NULL, memory INTEGER NOT NULL,
            builtin TEXT NOT NULL DEFAULT '[]', attributes TEXT NOT NULL DEFAULT '[]',
            version_info TEXT NOT NULL DEFAULT '{}', tags TEXT NOT NULL DEFAULT '[]',
            local INTEGER NOT NULL DEFAULT 0, registered_at REAL NOT NULL,
            heartbeat_at REAL NOT NULL, version INTEGER NOT NULL DEFAULT 1);
        CREATE UNIQUE INDEX container_instances_host ON container_instances (cluster, docker_host);
        CREATE TABLE runner_owner (id TEXT PRIMARY KEY);
        """,
    ),
    Migration(
        "instances",
        2,
        """
        CREATE TABLE runner_pull_credential (
            username TEXT PRIMARY KEY, password TEXT NOT NULL);
        """,
    ),
    # The pull credential moved to the registry (registry.pull, table registry_pull_credential).
    Migration("instances", 3, "DROP TABLE runner_pull_credential;"),
    # A deregistered (INACTIVE) instance is history: the host may register anew, as a new
    # instance, in the same cluster.
    Migration(
        "instances",
        4,
        """
        DROP INDEX container_instances_host;
        CREATE UNIQUE INDEX container_instances_host ON container_instances (cluster, docker_host)
            WHERE status != 'INACTIVE';
        """,
    ),
]

TOPIC = data.INSTANCE_TOPIC
ORPHANED = ("Container instance deregistered with force: the task is orphaned; its containers keep "
            "running, no longer managed")
HEARTBEAT_GRACE = 30.0  # the default of config ``agent_timeout``
RESERVED_PORTS = ["22", "2375", "2376", "51678", "51679"]
AGENT_VERSION = "dockyard-1"

TargetNotFoundException = register("TargetNotFoundException")
AttributeLimitExceededException = register("AttributeLimitExceededException")

_ATTR_NAME = re.compile(r"^[A-Za-z0-9_./\\-]{1,128}$")
_ATTR_VALUE = re.compile(r"^[A-Za-z0-9_.@/\\: -]{1,128}$")


@dataclass(frozen=True)
class Instance:
    """A container instance row, as the scheduler and the supervisor see it."""

    id: str
    arn: str
    cluster: str
    docker_host: str
    cpu: int
    memory: int
    attributes: dict[str, str | None]
    connected: bool
    status: str


def instance_arn(config: Config, cluster: str, ident: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:container-instance/{cluster}/{ident}"


def instance_id(ident: Any) -> str:
    """The instance id from an id or a full ARN."""
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("containerInstance must be a non-empty string.")
    return ident.rsplit("/", 1)[-1]


# -- store ---------------------------------------------------------------------------------
def _connected(config: Config, r: data.StoredInstance, now: float) -> bool:
    return agent_connected(r.local, r.heartbeat_at, now, config.agent_timeout)


def _row_instance(config: Config, r: data.StoredInstance, now: float) -> Instance:
    attrs = {a["name"]: a.get("value") for a in [*r.builtin, *r.attributes]}
    connected = _connected(config, r, now)
    return Instance(
        r.id,
        instance_arn(config, r.cluster, r.id),
        r.cluster,
        r.docker_host,
        r.cpu,
        r.memory,
        attrs,
        connected,
        r.status,
    )


def instances_in(
    store: Store, config: Config, cluster: str | None = None, statuses: tuple[str, ...] = ("ACTIVE",)
) -> list[Instance]:
    """Instances in ``statuses`` (ACTIVE: those that take new tasks; of ``cluster``, or of
    every cluster), oldest first."""
    now = time.time()
    return [_row_instance(config, r, now) for r in data.instances_of(store, cluster, statuses)]


def get(store: Store, config: Config, ident: str) -> Instance | None:
    r = data.instance(store, ident)
    return _row_instance(config, r, time.time()) if r else None


def empty_usage() -> dict[str, Any]:
    return {"cpu": 0, "memory": 0, "ports": set(), "running": {}, "pending": {}, "tasks": []}


def usage_by_host(store: Store) -> dict[str, dict[str, Any]]:
    """Per Docker host: cpu and memory reserved by its unstopped tasks, host ports in use
    (``"80/tcp"``), its unstopped tasks as (id, group) and running/pending counts per instance."""
    out: dict[str, dict[str, Any]] = {}
    for t in data.task_placements(store):
        u = out.setdefault(t.docker_host, empty_usage())
        u["tasks"].append((t.id, t.group))
        u["cpu"] += t.cpu
        u["memory"] += t.memory
        u["ports"].update(t.host_ports)
        key = "running" if t.last_status == "RUNNING" else "pending"
        u[key][t.instance_id] = u[key].get(t.instance_id, 0) + 1
    return out


async def register(
    store: Store,
    config: Config,
    cluster: str,
    docker_host: str,
    info: Mapping[str, Any],
    *,
    local: bool = False,
    attributes: list[dict[str, Any]] | None = None,
    zone: str = "",
    tags: list[dict[str, str]] | None = None,
    instance: str = "",
) -> str:
    """Register (or refresh) ``docker_host`` in ``cluster``; returns the instance id.

    Re-registering the same host keeps its id and custom attributes (a heartbeat). A
    registration naming ``instance`` (an id) refreshes that instance; one that is deregistered
    is refused (ClientException), as is one of another host."""
    cpu, memory = capacity_from_info(info)
    builtin = tuple(builtin_attributes(info, zone or f"{config.region}a"))
    version_info = {
        "agentVersion": AGENT_VERSION,
        "agentHash": "dockyard",
        "dockerVersion": f"DockerVersion: {info.get('ServerVersion', '')}",
    }
    now = time.time()
    async with store.transaction() as tx:
        if instance:
            found = data.instance(tx, instance, cluster)
            arn = instance_arn(config, cluster, instance)
            if found is None:
                raise ClientException(f"Container instance {arn} not found.")
            if found.status == "INACTIVE":
                raise ClientException(
                    f"Container instance {arn} is deregistered (INACTIVE); register the host anew, "
                    "without containerInstanceArn, to make it a new container instance."
                )
            if found.docker_host != docker_host:
                raise ClientException(f"Container instance {arn} is the Docker host {found.docker_host}.")
        else:  # the local engine keeps its id across its cluster's deletion and re-creation
            found = data.instance_on(tx, cluster, docker_host, inactive=local)
        if found is None:
            new = data.StoredInstance(
                uuid.uuid4().hex, cluster, docker_host, ec2_id(docker_host, info), "ACTIVE", cpu, memory,
                builtin, tuple(custom_attributes(attributes or [])), version_info, tuple(tags or []),
                local, now, now,
            )
            data.add_instance(tx, new)
            return new.id
        custom = list(found.attributes)
        if attributes:
            custom = merge_attributes(custom, custom_attributes(attributes))
        changed = (
            found.status not in ("ACTIVE", "DRAINING")
            or found.cpu != cpu
            or found.memory != memory
            or list(found.builtin) != list(builtin)
            or list(found.attributes) != custom
        )
        fresh = replace(
            found, cpu=cpu, memory=memory, builtin=builtin, attributes=tuple(custom),
            version_info=version_info, heartbeat_at=now,
        )
        data.refresh_instance(tx, fresh, changed)
        return found.id


async def ensure_local(store: Store, config: Config, info: Mapping[str, Any], docker_host: str) -> list[str]:
    """Make the local engine an instance of every ACTIVE cluster it is not yet in (nor was
    deregistered from since the cluster was created: :func:`runner.data.clusters_to_join`)."""
    return [
        await register(store, config, name, docker_host, info, local=True)
        for name in data.clusters_to_join(store, docker_host)
    ]


def custom_attributes(attributes: list[Any]) -> list[dict[str, Any]]:
    out = []
    for a in attributes:
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not _ATTR_NAME.match(a["name"]):
            raise InvalidParameterException(
                "Attribute names have 1 to 128 letters, numbers, hyphens, underscores, periods and slashes."
            )
        if a["name"].startswith("ecs."):
            raise InvalidParameterException(
                f"Attribute {a['name']} is reserved: names starting ecs. are built in."
            )
        value = a.get("value")
        if value is not None and (not isinstance(value, str) or not _ATTR_VALUE.match(value)):
            raise InvalidParameterException(f"Attribute {a['name']} has an invalid value.")
        out.append({"name": a["name"], **({"value": value} if value is not None else {})})
    return out


def merge_attributes(current: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {a["name"]: a for a in current}
    by_name.update({a["name"]: a for a in new})
    return list(by_name.values())


# -- shapes --------------------------------------------------------------------------------
def _resources(cpu: int, memory: int, ports: set[str]) -> list[dict[str, Any]]:
    return [
        {"name": "CPU", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": cpu},
        {"name": "MEMORY", "type": "INTEGER", "doubleValue": 0.0, "longValue": 0, "integerValue": memory},
        {
            "name": "PORTS",
            "type": "STRINGSET",
            "doubleValue": 0.0,
            "longValue": 0,
            "integerValue": 0,
            "stringSetValue": sorted(
                {*RESERVED_PORTS, *(p.split("/")[0] for p in ports if p.endswith("/tcp"))}
            ),
        },
        {
            "name": "PORTS_UDP",
            "type": "STRINGSET",
            "doubleValue": 0.0,
            "longValue": 0,
            "integerValue": 0,
            "stringSetValue": sorted(p.split("/")[0] for p in ports if p.endswith("/udp")),
        },
    ]


def _shape(
    config: Config, r: data.StoredInstance, usage: dict[str, dict[str, Any]], include: list[str]
) -> dict[str, Any]:
    u = usage.get(r.docker_host, empty_usage())
    connected = _connected(config, r, time.time())
    out = {
        "containerInstanceArn": instance_arn(config, r.cluster, r.id),
        "ec2InstanceId": r.ec2_instance_id,
        "version": r.version,
        "versionInfo": dict(r.version_info),
        "remainingResources": _resources(
            max(r.cpu - u["cpu"], 0), max(r.memory - u["memory"], 0), u["ports"]
        ),
        "registeredResources": _resources(r.cpu, r.memory, set()),
        "status": r.status,
        "agentConnected": connected and r.status in ("ACTIVE", "DRAINING"),
        "runningTasksCount": u["running"].get(r.id, 0),
        "pendingTasksCount": u["pending"].get(r.id, 0),
        "attributes": [*r.builtin, *r.attributes],
        "registeredAt": r.registered_at,
        "attachments": [],
        "tags": list(r.tags) if "TAGS" in include else [],
    }
    if "CONTAINER_INSTANCE_HEALTH" in include:
        status = "OK" if connected else "IMPAIRED"
        out["healthStatus"] = {
            "overallStatus": status,
            "details": [
                {
                    "type": "CONTAINER_RUNTIME",
                    "status": status,
                    "lastUpdated": r.heartbeat_at,
                    "lastStatusChange": r.registered_at,
                }
            ],
        }
    return out


# -- operations ----------------------------------------------------------------------------
def cluster_param(store: Store, params: dict[str, Any]) -> str:
    return clusters.active(store, params.get("cluster")).name


async def list_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    status = params.get("status")
    statuses: tuple[str, ...] = ("ACTIVE", "DRAINING")
    if status:
        if status not in ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING", "REGISTRATION_FAILED"):
            raise InvalidParameterException(f"Invalid status {status!r}.")
        statuses = (status,)
    rows = data.instances_of(store, cluster, statuses)
    expr = params.get("filter")
    if expr:
        now = time.time()
        rows = [r for r in rows if _matches(expr, _row_instance(config, r, now))]
    chunk, token = page(
        [instance_arn(config, cluster, r.id) for r in rows], params, InvalidParameterException
    )
    out: dict[str, Any] = {"containerInstanceArns": chunk}
    if token:
        out["nextToken"] = token
    return out


def _matches(expr: str, inst: Instance) -> bool:
    """The cluster query language filter of ListContainerInstances (runner.query)."""
    from runner import query

    return query.matches(expr, query_facts(inst))


def query_facts(inst: Instance) -> dict[str, str]:
    """What the cluster query language sees of an instance (``attribute:NAME`` and built-ins)."""
    facts = {f"attribute:{k}": ("" if v is None else str(v)) for k, v in inst.attributes.items()}
    facts.update({"instanceId": inst.id, "agentConnected": str(inst.connected).lower()})
    return facts


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    idents = params.get("containerInstances")
    if not isinstance(idents, list) or not idents or len(idents) > 100:
        raise InvalidParameterException("containerInstances must list 1 to 100 ids or ARNs.")
    include = params.get("include") or []
    usage = usage_by_host(store)
    found, failures = [], []
    for ident in idents:
        iid = instance_id(ident)
        r = data.instance(store, iid, cluster)
        if r is None:
            failures.append({"arn": instance_arn(config, cluster, iid), "reason": "MISSING"})
        else:
            found.append(_shape(config, r, usage, include))
    return {"containerInstances": found, "failures": failures}


async def register_op(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """RegisterContainerInstance with Dockyard's ``dockerHost`` (and ``dockerInfo``) fields."""
    cluster = cluster_param(store, params)
    docker_host = params.get("dockerHost")
    if not isinstance(docker_host, str) or not docker_host:
        raise InvalidParameterException("dockerHost (the Docker API URL of the host) is required.")
    info = params.get("dockerInfo") or {}
    if not isinstance(info, dict):
        raise InvalidParameterException("dockerInfo must be an object.")
    for res in params.get("totalResources") or []:
        if res.get("name") == "CPU" and res.get("integerValue"):
            info = {**info, "NCPU": max(int(res["integerValue"]) // 1024, 1)}
        if res.get("name") == "MEMORY" and res.get("integerValue"):
            info = {**info, "MemTotal": int(res["integerValue"]) * 1024 * 1024}
    ident = await register(
        store,
        config,
        cluster,
        docker_host,
        info,
        attributes=params.get("attributes"),
        zone=str(params.get("availabilityZone") or ""),
        tags=clusters.validate_tags(params.get("tags")),
        instance=instance_id(params["containerInstanceArn"]) if params.get("containerInstanceArn") else "",
    )
    r = data.instance(store, ident)
    assert r is not None
    return {"containerInstance": _shape(config, r, usage_by_host(store), ["TAGS"])}


async def deregister_op(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    iid = instance_id(params.get("containerInstance"))
    async with store.transaction() as tx:
        if data.instance(tx, iid, cluster) is None:
            raise InvalidParameterException("Container instance not found.")
        if data.unstopped_tasks_on(tx, iid) and not params.get("force"):
            raise InvalidParameterException(
                "Found running tasks on the instance; use force to deregister it anyway."
            )
        data.orphan_tasks_on(tx, iid, ORPHANED)
        data.deactivate_instance(tx, iid)
    r = data.instance(store, iid)
    assert r is not None
    return {"containerInstance": _shape(config, r, usage_by_host(store), [])}


async def update_state(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateContainerInstancesState: ``DRAINING`` (no new tasks; the service loop replaces its
    service tasks elsewhere, then stops them: :mod:`runner.deployments`) or back to ``ACTIVE``.
    An instance that is not ACTIVE or DRAINING (deregistered) is a failure, as in ECS."""
    cluster = cluster_param(store, params)
    status = params.get("status")
    if status not in ("ACTIVE", "DRAINING"):
        raise InvalidParameterException("status must be ACTIVE or DRAINING.")
    idents = params.get("containerInstances")
    if not isinstance(idents, list) or not idents or len(idents) > 10:
        raise InvalidParameterException("containerInstances must list 1 to 10 ids or ARNs.")
    changed, failures = [], []
    async with store.transaction() as tx:
        for ident in idents:
            iid = instance_id(ident)
            r = data.instance(tx, iid, cluster)
            arn = instance_arn(config, cluster, iid)
            if r is None:
                failures.append({"arn": arn, "reason": "MISSING"})
            elif r.status not in ("ACTIVE", "DRAINING"):
                failures.append({"arn": arn, "reason": "INACTIVE",
                                 "detail": f"The container instance is {r.status}; only ACTIVE and DRAINING "
                                           "instances can change state."})
            else:
                if r.status != status:
                    data.set_instance_status(tx, iid, status)
                changed.append(iid)
    usage = usage_by_host(store)
    rows = [r for r in (data.instance(store, i) for i in changed) if r is not None]
    shown = [_shape(config, r, usage, []) for r in rows]
    return {"containerInstances": shown, "failures": failures}


OPERATIONS = {
    "UpdateContainerInstancesState": update_state,
    "ListContainerInstances": list_,
    "DescribeContainerInstances": describe,
    "RegisterContainerInstance": register_op,
    "DeregisterContainerInstance": deregister_op,
}


async def owner_id(store: Store) -> str:
    """This installation's id: labels its containers, so that two Dockyards sharing one
    Docker Engine never take each other's containers for orphans."""
    found = data.owner(store)
    if found:
        return found
    async with store.transaction() as tx:
        found = data.owner(tx)
        if found:
            return found
        ident = uuid.uuid4().hex
        data.set_owner(tx, ident)
        return ident

