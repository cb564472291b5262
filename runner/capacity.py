"""Capacity providers: pools of container instances a strategy spreads tasks over.

There is no Auto Scaling here, so a provider is the set of container instances whose custom
attribute ``autoscaling-group`` is the group name its ``autoScalingGroupArn`` ends with
(``arn:aws:autoscaling:REGION:ACCOUNT:autoScalingGroup:ID:autoScalingGroupName/NAME``): start
``dockyard agent --attribute autoscaling-group=NAME`` on each host of the pool.
``FARGATE`` and ``FARGATE_SPOT`` are always there and mean every instance of the cluster (tasks
run with launch type FARGATE, as without a provider).

* CreateCapacityProvider refuses a group no container instance belongs to, ``managedScaling``
  ``ENABLED`` and ``managedTerminationProtection`` ``ENABLED`` (Dockyard cannot launch or
  terminate hosts: add hosts with ``dockyard agent``), and Managed Instances providers.
  ``managedDraining`` is kept and shown: Dockyard never scales a group in, so it changes
  nothing.
* PutClusterCapacityProviders (and CreateCluster's ``capacityProviders`` and
  ``defaultCapacityProviderStrategy``) associates providers with a cluster; a provider still
  used by a task of the cluster cannot be removed (``ResourceInUseException``).
* A ``capacityProviderStrategy`` (RunTask, CreateService, UpdateService, else the cluster's
  default when no ``launchType`` is given) names associated providers, at most one with a
  ``base``, and with several providers at least one of weight above 0;
  :func:`runner.scheduler.capacity.assign` says which provider each new task goes to, and the
  scheduler places it among that provider's instances. Tasks show ``capacityProviderName``.
* DeleteCapacityProvider refuses FARGATE/FARGATE_SPOT, a provider associated with a cluster
  and one a service's strategy names.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.aws.errors import ResourceInUseException
from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data
from runner.errors import ClientException, InvalidParameterException, UnsupportedFeatureException
from runner.strategies import FARGATE, GROUP_ATTRIBUTE, associate, check_strategy

__all__ = ["MIGRATIONS", "OPERATIONS", "provider_arn"]

MIGRATIONS = [
    Migration(
        "runner_capacity",
        1,
        """
        CREATE TABLE capacity_providers (
            name TEXT PRIMARY KEY, grp TEXT NOT NULL, spec TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
            update_status TEXT NOT NULL, created_at REAL NOT NULL);
        ALTER TABLE clusters ADD COLUMN capacity_providers TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE clusters ADD COLUMN default_strategy TEXT NOT NULL DEFAULT '[]';
        """,
    ),
]


_MANAGED = "ECS Managed Instances capacity providers are not available in Dockyard."
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,255}$")
_ASG = re.compile(
    r"^arn:aws:autoscaling:[^:]*:\d{12}:autoScalingGroup:[^:]*:autoScalingGroupName/([^/]{1,255})$"
)
_SCALING_DEFAULTS = {"status": "DISABLED", "targetCapacity": 100, "minimumScalingStepSize": 1,
                     "maximumScalingStepSize": 10000, "instanceWarmupPeriod": 300}


def provider_arn(config: Config, name: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:capacity-provider/{name}"


def _settings(raw: Any, current: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The normalised settings of an autoScalingGroupProvider(Update), with Dockyard's refusals."""
    if not isinstance(raw, dict):
        raise InvalidParameterException("autoScalingGroupProvider is required.")
    out = dict(current or {})
    scaling = {**_SCALING_DEFAULTS, **(out.get("managedScaling") or {}), **(raw.get("managedScaling") or {})}
    if scaling["status"] == "ENABLED":
        raise InvalidParameterException(
            "Dockyard cannot launch or terminate hosts, so managedScaling must be DISABLED: add hosts to the "
            "group with `dockyard agent --attribute autoscaling-group=NAME`."
        )
    out["managedScaling"] = scaling
    protection = raw.get("managedTerminationProtection", out.get("managedTerminationProtection", "DISABLED"))
    if protection == "ENABLED":
        raise InvalidParameterException(
            "The managed termination protection setting for the capacity provider is invalid: it needs "
            "managed scaling, which Dockyard does not do."
        )
    out["managedTerminationProtection"] = protection
    out["managedDraining"] = raw.get("managedDraining", out.get("managedDraining", "ENABLED"))
    return out


def _shape(config: Config, p: data.CapacityProvider | str, include: Sequence[str] = ("TAGS",),
           status: str = "ACTIVE", update_status: str = "") -> dict[str, Any]:
    if isinstance(p, str):  # FARGATE, FARGATE_SPOT
        return {"capacityProviderArn": provider_arn(config, p), "name": p, "status": "ACTIVE",
                "type": p, "tags": []}
    out: dict[str, Any] = {
        "capacityProviderArn": provider_arn(config, p.name),
        "name": p.name,
        "status": status,
        "autoScalingGroupProvider": dict(p.spec),
        "updateStatus": update_status or p.update_status,
        "type": "EC2_AUTOSCALING",
    }
    if "TAGS" in include:
        out["tags"] = list(p.tags)
    return out


async def create(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterException(
            "The name can have up to 255 characters: letters, numbers, underscores and hyphens."
        )
    if re.match(r"^(aws|ecs|fargate)", name, re.IGNORECASE):
        raise InvalidParameterException('The name cannot begin with "aws", "ecs" or "fargate".')
    if params.get("managedInstancesProvider") is not None or params.get("cluster") is not None:
        raise UnsupportedFeatureException(_MANAGED)
    raw = params.get("autoScalingGroupProvider")
    arn = raw.get("autoScalingGroupArn") if isinstance(raw, dict) else None
    m = _ASG.match(arn) if isinstance(arn, str) else None
    if not m:
        raise InvalidParameterException(
            "autoScalingGroupArn must be an Auto Scaling group ARN ending in autoScalingGroupName/NAME."
        )
    group = m.group(1)
    spec = {"autoScalingGroupArn": arn, **_settings(raw)}
    tags = clusters.validate_tags(params.get("tags"))
    now = time.time()
    async with store.transaction() as tx:
        if data.capacity_provider(tx, name) is not None:
            raise ClientException(f"The specified capacity provider {name} already exists.")
        if any(p.group == group for p in data.capacity_providers(tx)):
            raise ClientException(
                f"The Auto Scaling group {group} is already used by another capacity provider."
            )
        if not any(i.attributes.get(GROUP_ATTRIBUTE) == group for i in _all_instances(tx)):
            raise InvalidParameterException(
                f"No container instance belongs to the Auto Scaling group {group}: register hosts with "
                f"`dockyard agent --attribute {GROUP_ATTRIBUTE}={group}` first."
            )
        provider = data.CapacityProvider(name, group, spec, tuple(tags), "CREATE_COMPLETE", now)
        data.put_capacity_provider(tx, provider)
    return {"capacityProvider": _shape(config, provider)}


def _all_instances(reader: data.Reader) -> list[Any]:
    from runner.instances import Instance  # (the attributes view of a stored instance)

    out = []
    for r in data.instances_of(reader, None, ("ACTIVE", "DRAINING")):
        attrs = {a["name"]: a.get("value") for a in [*r.builtin, *r.attributes]}
        out.append(Instance(r.id, "", r.cluster, r.docker_host, r.cpu, r.memory, attrs, True, r.status))
    return out


async def update(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("name")
    if params.get("managedInstancesProvider") is not None:
        raise UnsupportedFeatureException(_MANAGED)
    async with store.transaction() as tx:
        found = data.capacity_provider(tx, name) if isinstance(name, str) else None
        if found is None:
            raise InvalidParameterException(f"The specified capacity provider {name} does not exist.")
        spec = {"autoScalingGroupArn": found.spec["autoScalingGroupArn"],
                **_settings(params.get("autoScalingGroupProvider"), found.spec)}
        provider = data.CapacityProvider(found.name, found.group, spec, found.tags, "UPDATE_COMPLETE",
                                         found.created_at)
        data.put_capacity_provider(tx, provider)
    return {"capacityProvider": _shape(config, provider)}


async def delete(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    ident = params.get("capacityProvider")
    name = ident.rsplit("/", 1)[-1] if isinstance(ident, str) else ""
    if name in FARGATE:
        raise ClientException(f"The {name} capacity provider is reserved and cannot be deleted.")
    async with store.transaction() as tx:
        found = data.capacity_provider(tx, name)
        if found is None:
            raise InvalidParameterException(
                f"The specified capacity provider {name or ident} does not exist."
            )
        if used_by := data.clusters_with_provider(tx, name):
            raise ResourceInUseException(
                f"The specified capacity provider is in use by cluster {used_by[0]}: disassociate it with "
                "PutClusterCapacityProviders first."
            )
        for svc in data.active_services(tx):
            if any(i.get("capacityProvider") == name for i in svc.spec.get("capacityProviderStrategy") or []):
                raise ResourceInUseException(
                    "The specified capacity provider is in the capacity provider strategy of service "
                    f"{svc.name}."
                )
        data.delete_capacity_provider(tx, name)
    return {"capacityProvider": _shape(config, found, status="INACTIVE", update_status="DELETE_COMPLETE")}


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    include = params.get("include") or []
    if not isinstance(include, list) or any(i != "TAGS" for i in include):
        raise InvalidParameterException("include may contain TAGS.")
    stored = {p.name: p for p in data.capacity_providers(store)}
    names = params.get("capacityProviders")
    shown: list[dict[str, Any]] = []
    failures = []
    if names:
        if not isinstance(names, list) or len(names) > 100:
            raise InvalidParameterException("capacityProviders must list at most 100 names or ARNs.")
        for ident in names:
            name = str(ident).rsplit("/", 1)[-1]
            if name in FARGATE:
                shown.append(_shape(config, name))
            elif name in stored:
                shown.append(_shape(config, stored[name], include))
            else:
                failures.append({"arn": provider_arn(config, name), "reason": "MISSING"})
    else:
        shown = [_shape(config, n) for n in FARGATE] + [_shape(config, p, include) for p in stored.values()]
    chunk, token = page(shown, params, InvalidParameterException, default=10, maximum=10)
    out: dict[str, Any] = {"capacityProviders": chunk, "failures": failures}
    if token:
        out["nextToken"] = token
    return out


async def put_cluster(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """PutClusterCapacityProviders: both lists are required; a provider left out is
    disassociated unless a task of the cluster still uses it."""
    providers, default = params.get("capacityProviders"), params.get("defaultCapacityProviderStrategy")
    if not isinstance(providers, list) or not isinstance(default, list):
        raise InvalidParameterException("capacityProviders and defaultCapacityProviderStrategy are required.")
    async with store.transaction() as tx:
        cluster = clusters.active(tx, params.get("cluster"))
        names = associate(tx, providers)
        strategy = check_strategy(default, names, "defaultCapacityProviderStrategy")
        in_use = {t.extra.get("capacityProviderName") for t in _unstopped(tx, cluster.name)}
        for gone in set(cluster.capacity_providers) - set(names):
            if gone in in_use:
                raise ResourceInUseException(
                    f"The specified capacity provider {gone} is in use by tasks of the cluster and cannot "
                    "be removed."
                )
        data.set_cluster_capacity(tx, cluster.name, names, strategy)
    return {"cluster": (await clusters.describe(store, config, {"clusters": [cluster.name]}))["clusters"][0]}


def _unstopped(reader: data.Reader, cluster: str) -> list[data.Task]:
    ids = data.task_ids(reader, cluster, desired="RUNNING")  # type: ignore[arg-type]
    return [t for t in (data.task(reader, i) for i in ids) if t is not None]  # type: ignore[arg-type]


OPERATIONS = {
    "CreateCapacityProvider": create,
    "UpdateCapacityProvider": update,
    "DeleteCapacityProvider": delete,
    "DescribeCapacityProviders": describe,
    "PutClusterCapacityProviders": put_cluster,
}
