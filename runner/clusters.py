"""ECS clusters: CreateCluster, UpdateCluster, UpdateClusterSettings, DescribeClusters,
ListClusters, DeleteCluster.

``serviceConnectDefaults.namespace`` (CreateCluster, UpdateCluster; ``""`` removes it) must
name an existing Cloud Map namespace (by name or ARN, through the seam
``runner.seams.NamespaceInfo``; NamespaceNotFoundException otherwise: ECS would create an HTTP
namespace of a new name, Dockyard does not); the cluster keeps and shows its ARN. Services
with Service Connect enabled and no namespace of their own use it.

DescribeClusters counts what each cluster holds (:func:`statistics`); DeleteCluster refuses a
cluster that still holds container instances, services or tasks (:func:`refuse_delete`).
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import connect, data, strategies
from runner.errors import (
    ClientException,
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    ClusterNotFoundException,
    InvalidParameterException,
)
from runner.seams import NamespaceInfo

MIGRATIONS = [
    Migration(
        "runner",
        1,
        """
        CREATE TABLE clusters (
            name TEXT PRIMARY KEY, status TEXT NOT NULL, created_at REAL NOT NULL,
            tags TEXT NOT NULL DEFAULT '[]', settings TEXT NOT NULL DEFAULT '[]',
            configuration TEXT NOT NULL DEFAULT '{}');
        """,
    ),
    # serviceConnectDefaults.namespace: the namespace's ARN, '' for none.
    Migration("runner", 2, "ALTER TABLE clusters ADD COLUMN service_connect TEXT NOT NULL DEFAULT '';"),
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
TOPIC = data.CLUSTER_TOPIC


def cluster_arn(config: Config, name: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:cluster/{name}"


def cluster_name(ident: Any) -> str:
    """The cluster name from a name or a full ARN (``default`` when absent)."""
    if ident is None or ident == "":
        return "default"
    if not isinstance(ident, str):
        raise InvalidParameterException("cluster must be a string.")
    if ident.startswith("arn:"):
        m = re.match(r"^arn:aws:ecs:[^:]*:[^:]*:cluster/(.+)$", ident)
        if not m:
            raise InvalidParameterException(f"Invalid cluster ARN: {ident}.")
        ident = m.group(1)
    return ident


# ECS's launch-type statistics (DescribeClusters with include STATISTICS), in ECS's order.
STATISTICS = (
    "runningEC2TasksCount",
    "runningFargateTasksCount",
    "pendingEC2TasksCount",
    "pendingFargateTasksCount",
    "activeEC2ServiceCount",
    "activeFargateServiceCount",
    "drainingEC2ServiceCount",
    "drainingFargateServiceCount",
)
PENDING = ("PROVISIONING", "PENDING", "ACTIVATING")  # a task's statuses before RUNNING


def statistics(counts: data.ClusterCounts) -> dict[str, int]:
    """The cluster's counts (pure): ``runningTasksCount``, ``pendingTasksCount`` (PROVISIONING,
    PENDING or ACTIVATING), ``activeServicesCount``, ``registeredContainerInstancesCount``
    (ACTIVE or DRAINING, the local engine included) and each of :data:`STATISTICS` (EXTERNAL
    tasks and services count in the totals only, as ECS splits only EC2 and Fargate)."""
    out = dict.fromkeys(STATISTICS, 0)
    out.update(runningTasksCount=0, pendingTasksCount=0, activeServicesCount=0)
    for (launch_type, status), n in counts.tasks.items():
        state = "running" if status == "RUNNING" else "pending" if status in PENDING else ""
        if state:
            out[f"{state}TasksCount"] += n
            kind = {"EC2": "EC2", "FARGATE": "Fargate"}.get(launch_type)
            if kind:
                out[f"{state}{kind}TasksCount"] += n
    for (status, launch_type), n in counts.services.items():
        if status == "ACTIVE":
            out["activeServicesCount"] += n
        kind = {"EC2": "EC2", "FARGATE": "Fargate"}.get(launch_type)
        if kind:
            out[f"{status.lower()}{kind}ServiceCount"] += n
    out["registeredContainerInstancesCount"] = counts.instances
    return out


def _shape(config: Config, c: data.Cluster, include: list[str], counts: data.ClusterCounts) -> dict[str, Any]:
    n = statistics(counts)
    out: dict[str, Any] = {
        "clusterArn": cluster_arn(config, c.name),
        "clusterName": c.name,
        "status": c.status,
        "registeredContainerInstancesCount": n["registeredContainerInstancesCount"],
        "runningTasksCount": n["runningTasksCount"],
        "pendingTasksCount": n["pendingTasksCount"],
        "activeServicesCount": n["activeServicesCount"],
        "statistics": (
            [{"name": k, "value": str(n[k])} for k in STATISTICS] if "STATISTICS" in include else []
        ),
        "settings": list(c.settings),
        "capacityProviders": list(c.capacity_providers),
        "defaultCapacityProviderStrategy": [dict(i) for i in c.default_strategy],
    }
    if c.configuration:
        out["configuration"] = dict(c.configuration)
    if c.service_connect_namespace:
        out["serviceConnectDefaults"] = {"namespace": c.service_connect_namespace}
    if "TAGS" in include:
        out["tags"] = list(c.tags)
    return out


def active(reader: data.Reader, ident: Any) -> data.Cluster:
    """The ACTIVE cluster for a name or ARN, else ClusterNotFoundException."""
    found = data.cluster(reader, cluster_name(ident))
    if found is None or found.status != "ACTIVE":
        raise ClusterNotFoundException("Cluster not found.")
    return found


def validate_tags(tags: Any) -> list[dict[str, str]]:
    if tags is None:
        return []
    if not isinstance(tags, list) or len(tags) > 50:
        raise InvalidParameterException("tags must be a list of at most 50 tags.")
    for t in tags:
        if not isinstance(t, dict) or not isinstance(t.get("key"), str) or not 1 <= len(t["key"]) <= 128:
            raise InvalidParameterException("Each tag needs a key of 1 to 128 characters.")
        if not isinstance(t.get("value", ""), str) or len(t.get("value", "")) > 256:
            raise InvalidParameterException("A tag value can have at most 256 characters.")
    return [{"key": t["key"], "value": t.get("value", "")} for t in tags]


def service_connect_default(params: dict[str, Any], namespace_info: NamespaceInfo | None) -> str | None:
    """The ARN of the namespace ``serviceConnectDefaults`` names; "" to have none; None when
    not given. InvalidParameterException for a bad shape, NamespaceNotFoundException for a
    namespace that does not exist."""
    raw = params.get("serviceConnectDefaults")
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("namespace"), str) or len(raw["namespace"]) > 1024:
        raise InvalidParameterException("serviceConnectDefaults.namespace must be a namespace name or ARN.")
    name = raw["namespace"]
    if name == "":
        return ""
    found = namespace_info(name) if namespace_info is not None else None
    if found is None:
        raise connect.not_found(name)
    return found.arn


def _settings(value: Any) -> list[dict[str, str]]:
    def ok(s: Any) -> bool:
        return isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("value"), str)

    if not isinstance(value, list) or not all(ok(s) for s in value):
        raise InvalidParameterException("settings must be a list of {name, value} strings.")
    return [{"name": s["name"], "value": s["value"]} for s in value]


async def create(
    store: Store, config: Config, params: dict[str, Any], namespace_info: NamespaceInfo | None = None
) -> dict[str, Any]:
    name = params.get("clusterName", "default")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterException(
            "Cluster name can have up to 255 characters: letters (uppercase and lowercase), "
            "numbers, underscores, and hyphens."
        )
    tags = validate_tags(params.get("tags"))
    insights = data.account_setting(store, "containerInsights") or "disabled"  # the account's default
    settings = params.get("settings") or [{"name": "containerInsights", "value": insights}]
    configuration = params.get("configuration") or {}
    namespace = service_connect_default(params, namespace_info) or ""
    async with store.transaction() as tx:
        providers = strategies.associate(tx, params.get("capacityProviders") or [])
        default = strategies.check_strategy(params.get("defaultCapacityProviderStrategy") or [], providers,
                                            "defaultCapacityProviderStrategy")
        found = data.cluster(tx, name)
        if found is None or found.status != "ACTIVE":
            data.put_cluster(tx, name, tags, settings, configuration, namespace)
            if providers:
                data.set_cluster_capacity(tx, name, providers, default)
            found = data.cluster(tx, name)
        assert found is not None
        counts = data.cluster_counts(tx, name)
    return {"cluster": _shape(config, found, ["TAGS"], counts)}


async def update(
    store: Store, config: Config, params: dict[str, Any], namespace_info: NamespaceInfo | None = None
) -> dict[str, Any]:
    """UpdateCluster: ``settings``, ``configuration`` and ``serviceConnectDefaults`` (``""``
    removes the default namespace; the namespace stays in Cloud Map)."""
    if "cluster" not in params:
        raise InvalidParameterException("cluster is required.")
    settings = _settings(params["settings"]) if params.get("settings") is not None else None
    configuration = params.get("configuration")
    if configuration is not None and not isinstance(configuration, dict):
        raise InvalidParameterException("configuration must be an object.")
    namespace = service_connect_default(params, namespace_info)
    async with store.transaction() as tx:
        name = active(tx, params["cluster"]).name
        data.update_cluster(tx, name, settings=settings, configuration=configuration,
                            service_connect_namespace=namespace)
        found = data.cluster(tx, name)
        assert found is not None
        counts = data.cluster_counts(tx, name)
    return {"cluster": _shape(config, found, ["TAGS"], counts)}


async def update_settings(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """UpdateClusterSettings: the cluster's ``settings`` (containerInsights), replaced by name."""
    if "cluster" not in params or params.get("settings") is None:
        raise ClientException("cluster and settings are required.")
    given = _settings(params["settings"])
    async with store.transaction() as tx:
        found = active(tx, params["cluster"])
        merged = {s["name"]: s for s in found.settings}
        merged.update({s["name"]: s for s in given})
        data.update_cluster(tx, found.name, settings=list(merged.values()))
        found = data.cluster(tx, found.name)
        assert found is not None
        counts = data.cluster_counts(tx, found.name)
    return {"cluster": _shape(config, found, ["TAGS"], counts)}


_INCLUDE = ("ATTACHMENTS", "CONFIGURATIONS", "SETTINGS", "STATISTICS", "TAGS")


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    idents = params.get("clusters") or ["default"]
    if not isinstance(idents, list) or len(idents) > 100:
        raise InvalidParameterException("clusters must be a list of at most 100 names or ARNs.")
    include = params.get("include") or []
    if not isinstance(include, list) or any(i not in _INCLUDE for i in include):
        raise InvalidParameterException(f"include may contain {', '.join(_INCLUDE)}.")
    clusters, failures = [], []
    for ident in idents:
        name = cluster_name(ident)
        found = data.cluster(store, name)
        if found is None:
            failures.append({"arn": cluster_arn(config, name), "reason": "MISSING"})
        else:
            clusters.append(_shape(config, found, include, data.cluster_counts(store, name)))
    return {"clusters": clusters, "failures": failures}


async def list_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    arns = [cluster_arn(config, name) for name in data.active_cluster_names(store)]
    chunk, token = page(arns, params, InvalidParameterException)
    out: dict[str, Any] = {"clusterArns": chunk}
    if token:
        out["nextToken"] = token
    return out


def refuse_delete(counts: data.ClusterCounts) -> None:
    """Why a cluster holding ``counts`` cannot be deleted, as ECS says it (pure; checked in the
    order of DeleteCluster's errors in ECS's model): registered container instances other than
    the local engine (which Dockyard registers in every cluster itself and deregisters with the
    cluster), ACTIVE or DRAINING services, tasks not yet STOPPED."""
    if counts.remote_instances:
        raise ClusterContainsContainerInstancesException(
            "The Cluster cannot be deleted while Container Instances are active or draining."
        )
    if counts.services:
        raise ClusterContainsServicesException("The Cluster cannot be deleted while Services are active.")
    if counts.tasks:
        raise ClusterContainsTasksException("The Cluster cannot be deleted while Tasks are active.")


async def delete(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteCluster: refused while the cluster holds anything (:func:`refuse_delete`); the
    local engine's container instance of the cluster goes INACTIVE with it."""
    if "cluster" not in params:
        raise InvalidParameterException("cluster is required.")
    async with store.transaction() as tx:
        name = active(tx, params["cluster"]).name
        refuse_delete(data.cluster_counts(tx, name))
        data.deactivate_cluster(tx, name)
        found = data.cluster(tx, name)
        assert found is not None
        counts = data.cluster_counts(tx, name)
    return {"cluster": _shape(config, found, [], counts)}


# The operations that take the seam ``namespace_info`` (runner.part binds it).
NAMESPACED = ("CreateCluster", "UpdateCluster")

OPERATIONS = {
    "CreateCluster": create,
    "UpdateCluster": update,
    "UpdateClusterSettings": update_settings,
    "DescribeClusters": describe,
    "ListClusters": list_,
    "DeleteCluster": delete,
}
