"""ECS services: CreateService, UpdateService, DescribeServices, ListServices, DeleteService,
ListServicesByNamespace (registered by :func:`runner.part.install` with the seam
:class:`runner.seams.NamespaceLookup`, so not in ``OPERATIONS``).

The API only writes desired state; :mod:`runner.service_loop` makes the tasks match it (with
:mod:`runner.deployments` deciding what to do). A service row holds

* ``spec``: the request's fields, normalised (desired count, deployment configuration,
  placement, network configuration, service registries, AWS-only fields echoed back);
* ``deployments``: ECS's ``deployments[]`` (PRIMARY first), each with the full task
  definition it runs (``definition``, never shown) so that a task definition deregistered
  later still runs;
* ``last_completed``: the last deployment that reached COMPLETED (what a circuit-breaker
  rollback returns to);
* ``events``: the newest 100 service events, newest first.

``serviceConnectConfiguration`` is checked and normalised by :func:`runner.connect.check_configuration`
(the namespace looked up through the seam ``NamespaceInfo``, the cluster's
``serviceConnectDefaults`` when it names none); each ``discoveryName`` gets its Cloud Map
service (``InstanceRegistry.ensure_service``, created when missing) before the service is
written. The spec and each deployment keep the normalised configuration, its
``serviceConnectResources`` and the namespace's name; a change starts a new deployment.

:mod:`runner.tags` serves TagResource and friends for
service ARNs.

A service's tasks carry ``group: service:NAME`` and ``startedBy: <deployment id>``.
Changes are published on topic ``ecs/service`` (key ``cluster/name``). The rows are
:class:`runner.data.Service` values, read and written through :mod:`runner.data`.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import balancing, clusters, connect, data, shift, shiftconfig, taskdefs, tasks
from runner.errors import (
    InvalidParameterException,
    NamespaceNotFoundException,
    ServiceNotActiveException,
    ServiceNotFoundException,
)
from runner.numbers import param_int
from runner.scheduler import parse_constraints, parse_strategies
from runner.seams import (
    AlarmStates,
    InstanceRegistry,
    ListenerRules,
    NamespaceInfo,
    NamespaceLookup,
    TargetGroups,
)
from runner.serviceshapes import ECHOED, group_of, service_arn, shape

__all__ = [
    "MAX_EVENTS",
    "TOPIC",
    "add_event",
    "group_of",
    "new_deployment",
    "service_arn",
]

MIGRATIONS = [
    Migration(
        "runner_services",
        1,
        """
        CREATE TABLE services (
            cluster TEXT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
            spec TEXT NOT NULL, deployments TEXT NOT NULL DEFAULT '[]',
            last_completed TEXT NOT NULL DEFAULT '{}', events TEXT NOT NULL DEFAULT '[]',
            steady INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL, updated_at REAL NOT NULL,
            version INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (cluster, name));
        CREATE TABLE service_registrations (
            task_id TEXT NOT NULL, registry_id TEXT NOT NULL, cluster TEXT NOT NULL,
            service TEXT NOT NULL, registered_at REAL NOT NULL,
            PRIMARY KEY (task_id, registry_id));
        """,
    ),
    Migration(
        "runner_services",
        2,
        """
        CREATE TABLE service_targets (
            task_id TEXT NOT NULL, target_group TEXT NOT NULL, target_id TEXT NOT NULL,
            port INTEGER NOT NULL, cluster TEXT NOT NULL, service TEXT NOT NULL,
            registered_at REAL NOT NULL, drain_until REAL,
            PRIMARY KEY (task_id, target_group, target_id, port));
        CREATE INDEX service_targets_service ON service_targets (cluster, service);
        """,
    ),
]

TOPIC = data.SERVICE_TOPIC
MAX_EVENTS = 100
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_REGISTRY = re.compile(r"^arn:aws:servicediscovery:[^:]*:[^:]*:service/(srv-[A-Za-z0-9]+)$")


def service_name(ident: Any) -> str:
    """The name from a service name or ARN (``.../service/NAME`` or ``.../service/CLUSTER/NAME``)."""
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("service must be a service name or ARN.")
    if ident.startswith("arn:"):
        if ":service/" not in ident:
            raise InvalidParameterException(f"Invalid service ARN: {ident}.")
        return ident.rsplit("/", 1)[-1]
    return ident


def registry_id(arn: str) -> str:
    """The Cloud Map service id (``srv-...``) of a ``serviceRegistries[].registryArn``."""
    m = _REGISTRY.match(arn)
    return m.group(1) if m else ""


# -- validation ----------------------------------------------------------------------------
def deployment_configuration(value: Any, strategy: str, current: Mapping[str, Any] | None = None) -> dict:
    """ECS ``deploymentConfiguration`` with defaults filled in (REPLICA 100/200, DAEMON 0/100)."""
    base = dict(current or {})
    if not base:
        low, high = (0, 100) if strategy == "DAEMON" else (100, 200)
        base = {
            "deploymentCircuitBreaker": {"enable": False, "rollback": False},
            "maximumPercent": high,
            "minimumHealthyPercent": low,
        }
    if value is None:
        return base
    if not isinstance(value, dict):
        raise InvalidParameterException("deploymentConfiguration must be an object.")
    if (value.get("strategy") or base.get("strategy") or "ROLLING") != (base.get("strategy") or "ROLLING"):
        # a new strategy starts without the old one's fields (docs/deployments.md)
        base = {k: v for k, v in base.items() if k not in (*STRATEGY_FIELDS, "dockyardCanary")}
    if value.get("canaryConfiguration") is not None and value.get("dockyardCanary") is None:
        base.pop("dockyardCanary", None)  # ECS's canary replaces Dockyard's
    out = {**base, **value}
    out["maximumPercent"] = param_int(out, "maximumPercent", base["maximumPercent"], 0, 2000)
    low = base["minimumHealthyPercent"]
    out["minimumHealthyPercent"] = param_int(out, "minimumHealthyPercent", low, 0, 100)
    if strategy == "REPLICA" and out["maximumPercent"] < 100:
        raise InvalidParameterException("maximumPercent must be at least 100 for a REPLICA service.")
    if strategy == "DAEMON" and out["maximumPercent"] != 100:
        raise InvalidParameterException("maximumPercent must be 100 for a DAEMON service.")
    breaker = out.get("deploymentCircuitBreaker") or {"enable": False, "rollback": False}
    if not isinstance(breaker, dict) or not all(
        isinstance(breaker.get(k), bool) for k in ("enable", "rollback")
    ):
        raise InvalidParameterException("deploymentCircuitBreaker needs boolean enable and rollback.")
    out["deploymentCircuitBreaker"] = breaker
    return out


def _registries(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 1:
        raise InvalidParameterException("serviceRegistries can have at most one entry.")
    out = []
    for r in value:
        if (
            not isinstance(r, dict)
            or not isinstance(r.get("registryArn"), str)
            or not registry_id(r["registryArn"])
        ):
            raise InvalidParameterException(
                "serviceRegistries[].registryArn must be a Cloud Map service ARN "
                "(arn:aws:servicediscovery:REGION:ACCOUNT:service/srv-...)."
            )
        for key in ("port", "containerPort"):
            if key in r:
                param_int(r, key, 0, 0, 65535)
        if "containerName" in r and not isinstance(r["containerName"], str):
            raise InvalidParameterException("serviceRegistries[].containerName must be a string.")
        out.append({k: r[k] for k in ("registryArn", "port", "containerName", "containerPort") if k in r})
    return out


def _check_network(defn: Mapping[str, Any], network: Any) -> dict[str, Any]:
    if network is None:
        network = {}
    if not isinstance(network, dict):
        raise InvalidParameterException("networkConfiguration must be an object.")
    if defn.get("networkMode") == "awsvpc" and not network.get("awsvpcConfiguration"):
        raise InvalidParameterException(
            "Network Configuration must be provided when networkMode 'awsvpc' is specified."
        )
    vpc = network.get("awsvpcConfiguration")
    if vpc is not None and (not isinstance(vpc, dict) or not isinstance(vpc.get("subnets", []), list)):
        raise InvalidParameterException("awsvpcConfiguration.subnets must be a list.")
    return network


# What a deployment copies of the spec for Service Connect (the last never shown).
# deploymentConfiguration fields that belong to its strategy: not kept when it changes
STRATEGY_FIELDS = ("canaryConfiguration", "linearConfiguration", "lifecycleHooks", "bakeTimeInMinutes")
SHIFT = "shift"  # a traffic-shifting deployment's state (never shown; runner.shift)
CONNECT_KEYS = ("serviceConnectConfiguration", "serviceConnectResources", connect.HIDDEN_NAMESPACE)


def _others(store: Store, cluster: str, name: str) -> list[connect.ConnectEntry]:
    """The Service Connect services of every live ECS service but ``cluster``/``name``."""
    out = []
    for svc in data.live_services(store):
        if (svc.cluster, svc.name) != (cluster, name):
            for d in svc.deployments:
                out.extend(connect.entries(d))
    return out


async def service_connect(
    store: Store,
    cluster: data.Cluster,
    name: str,
    raw: Any,
    definition: Mapping[str, Any],
    namespace_info: NamespaceInfo | None,
    registry: InstanceRegistry | None,
) -> dict[str, Any]:
    """The spec's Service Connect keys (:data:`CONNECT_KEYS`) for a requested configuration:
    checked (:func:`runner.connect.check_configuration`), with each ``discoveryName``'s Cloud
    Map service ensured through ``registry`` (its ARN in ``serviceConnectResources``)."""
    named = connect.namespace_named(raw, cluster.service_connect_namespace)
    ns = None
    if named:
        ns = namespace_info(named) if namespace_info is not None else None
        if ns is None:
            raise connect.not_found(named)
    config, ns_name = connect.check_configuration(raw, definition, ns, _others(store, cluster.name, name))
    resources = []
    if ns is not None and ns_name:
        for entry in config["services"]:
            arn = ""
            if registry is not None:
                arn = await registry.ensure_service(ns.arn, entry["discoveryName"])
            resources.append({"discoveryName": entry["discoveryName"], "discoveryArn": arn})
    return {"serviceConnectConfiguration": config, "serviceConnectResources": resources,
            connect.HIDDEN_NAMESPACE: ns_name}


def _check_strategy(spec: Mapping[str, Any], alarms: AlarmStates | None) -> None:
    """The spec's deployment strategy fields (:func:`runner.shiftconfig.check`); alarm names
    are looked up in ``alarms`` when given."""
    sc = spec.get("serviceConnectConfiguration") or {}
    shiftconfig.check(
        spec["deploymentConfiguration"],
        connect=bool(sc.get("enabled") and sc.get("services")),
        balanced=bool(balancing.advanced(spec.get("loadBalancers") or [])),
        scheduling=spec["schedulingStrategy"],
        exists=(lambda n: alarms.state(n) is not None) if alarms is not None else None,
    )


def new_shift(source: Mapping[str, Any], config: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The hidden :data:`SHIFT` key of a deployment that shifts traffic from the deployment
    ``source`` (the PRIMARY it replaces) under ``config``: the machine's state
    (:mod:`runner.shift`), the source and the configuration it was started with."""
    return {"state": shift.state_json(shift.State(since=now)), "source": source["id"],
            "config": copy.deepcopy(dict(config)), "startedAt": now}


def _load_balancers(
    value: Any, defn: Mapping[str, Any], groups: TargetGroups | None, rules: ListenerRules | None
) -> list[dict[str, Any]]:
    return balancing.check(value, defn, groups.group if groups is not None else None,
                           rules.forwards if rules is not None else None)


def _check_grace(params: Mapping[str, Any]) -> None:
    grace = params.get("healthCheckGracePeriodSeconds")
    if grace is not None and not 0 <= grace <= 2_147_483_647:
        raise InvalidParameterException(
            "healthCheckGracePeriodSeconds must be between 0 and 2147483647 seconds."
        )


def new_deployment(definition: Mapping[str, Any], spec: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A PRIMARY deployment IN_PROGRESS of ``definition`` (ECS ids: ``ecs-svc/`` + 19 digits),
    with the spec's Service Connect configuration, resources and namespace."""
    dep: dict[str, Any] = {
        "id": "ecs-svc/" + "".join(secrets.choice("0123456789") for _ in range(19)),
        "status": "PRIMARY",
        "taskDefinition": definition.get("taskDefinitionArn", ""),
        "createdAt": now,
        "updatedAt": now,
        "launchType": spec.get("launchType", "EC2"),
        "rolloutState": "IN_PROGRESS",
        "rolloutStateReason": "ECS deployment {id} in progress.",
        "definition": dict(definition),
    }
    dep["rolloutStateReason"] = dep["rolloutStateReason"].format(id=dep["id"])
    if spec.get("networkConfiguration"):
        dep["networkConfiguration"] = spec["networkConfiguration"]
    if spec.get("serviceConnectConfiguration"):
        dep.update({k: spec[k] for k in CONNECT_KEYS if k in spec})
    if spec.get("loadBalancers"):  # what its tasks are registered with (runner.balancing)
        dep["loadBalancers"] = spec["loadBalancers"]
    if dep["launchType"] == "FARGATE":
        dep["platformVersion"] = spec.get("platformVersion") or "1.4.0"
        dep["platformFamily"] = "Linux"
    return dep


def add_event(events: list[dict[str, Any]], message: str, now: float) -> list[dict[str, Any]]:
    """``events`` with ``message`` added first (newest first, at most :data:`MAX_EVENTS`)."""
    return [{"id": str(uuid.uuid4()), "createdAt": now, "message": message}, *events][:MAX_EVENTS]


# -- rows ----------------------------------------------------------------------------------
def _active(svc: data.Service | None) -> data.Service:
    """``svc`` if it exists and is ACTIVE, else ECS's error."""
    if svc is None:
        raise ServiceNotFoundException("Service not found.")
    if svc.status != "ACTIVE":
        raise ServiceNotActiveException("Service was not ACTIVE.")
    return svc


# -- operations ----------------------------------------------------------------------------
async def create(
    store: Store,
    config: Config,
    params: dict[str, Any],
    namespace_info: NamespaceInfo | None = None,
    registry: InstanceRegistry | None = None,
    alarms: AlarmStates | None = None,
    target_groups: TargetGroups | None = None,
    listener_rules: ListenerRules | None = None,
) -> dict[str, Any]:
    found = clusters.active(store, params.get("cluster"))
    cluster = found.name
    name = params.get("serviceName")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterException(
            "serviceName can have up to 255 characters: letters (uppercase and lowercase), numbers, "
            "underscores, and hyphens."
        )
    strategy = params.get("schedulingStrategy") or "REPLICA"
    if strategy not in ("REPLICA", "DAEMON"):
        raise InvalidParameterException("schedulingStrategy must be REPLICA or DAEMON.")
    if strategy == "DAEMON":
        if params.get("desiredCount") is not None:
            raise InvalidParameterException(
                "The daemon scheduling strategy does not support a desired count."
            )
        if params.get("placementStrategy"):
            raise InvalidParameterException(
                "The daemon scheduling strategy does not support placement strategies."
            )
        desired = 0
    else:
        desired = param_int(params, "desiredCount", 0, 0, 100_000)
    launch_type = params.get("launchType") or "EC2"
    if launch_type not in tasks.LAUNCH_TYPES:
        raise InvalidParameterException(f"launchType must be one of {', '.join(tasks.LAUNCH_TYPES)}.")
    defn = taskdefs.usable(store, config, params.get("taskDefinition"))[1]
    capacity = tasks.strategy_for(store, cluster, params)
    if capacity and strategy == "DAEMON":
        raise InvalidParameterException("The daemon scheduling strategy does not support capacity providers.")
    tasks.check_compatibility(defn, launch_type)
    parse_constraints(params.get("placementConstraints"))
    parse_strategies(params.get("placementStrategy"))
    spec: dict[str, Any] = {
        "desiredCount": desired,
        "launchType": launch_type,
        "schedulingStrategy": strategy,
        "taskDefinition": defn["taskDefinitionArn"],
        "deploymentConfiguration": deployment_configuration(
            params.get("deploymentConfiguration"), strategy
        ),
        "networkConfiguration": _check_network(defn, params.get("networkConfiguration")),
        "serviceRegistries": _registries(params.get("serviceRegistries")),
        "placementConstraints": params.get("placementConstraints") or [],
        "placementStrategy": params.get("placementStrategy") or [],
    }
    if not spec["networkConfiguration"]:
        del spec["networkConfiguration"]
    spec.update({k: params[k] for k in ECHOED if k in params})
    spec["loadBalancers"] = _load_balancers(params.get("loadBalancers"), defn, target_groups, listener_rules)
    _check_grace(params)
    if capacity:  # the request's strategy or the cluster's default, normalised (runner.strategies)
        spec["capacityProviderStrategy"] = capacity
    tags = clusters.validate_tags(params.get("tags"))
    if data.service(store, cluster, name) is None and params.get("serviceConnectConfiguration") is not None:
        spec.update(await service_connect(store, found, name, params["serviceConnectConfiguration"], defn,
                                          namespace_info, registry))
    _check_strategy(spec, alarms if params.get("deploymentConfiguration") is not None else None)
    now = time.time()
    dep = new_deployment(defn, spec, now)
    new = data.Service(cluster, name, "ACTIVE", spec, now, now, deployments=(dep,), tags=tuple(tags))
    if not await data.create_service(store, new):
        raise InvalidParameterException("Creation of service was not idempotent.")
    return {"service": shape(config, store, data.service(store, cluster, name) or new, ["TAGS"])}


async def update(
    store: Store,
    config: Config,
    params: dict[str, Any],
    namespace_info: NamespaceInfo | None = None,
    registry: InstanceRegistry | None = None,
    alarms: AlarmStates | None = None,
    target_groups: TargetGroups | None = None,
    listener_rules: ListenerRules | None = None,
) -> dict[str, Any]:
    found = clusters.active(store, params.get("cluster"))
    cluster = found.name
    name = service_name(params.get("service"))
    current = data.service(store, cluster, name)
    if current is None:
        raise ServiceNotFoundException("Service not found.")
    spec = copy.deepcopy(dict(current.spec))
    strategy = spec["schedulingStrategy"]
    defn = None
    if params.get("taskDefinition") is not None:
        defn = taskdefs.usable(store, config, params["taskDefinition"])[1]
        tasks.check_compatibility(defn, spec["launchType"])
    new_spec = dict(spec)
    if params.get("desiredCount") is not None:
        if strategy == "DAEMON":
            raise InvalidParameterException(
                "The daemon scheduling strategy does not support a desired count."
            )
        new_spec["desiredCount"] = param_int(params, "desiredCount", 0, 0, 100_000)
    if params.get("deploymentConfiguration") is not None:
        new_spec["deploymentConfiguration"] = deployment_configuration(
            params["deploymentConfiguration"], strategy, spec["deploymentConfiguration"]
        )
    for key, check in (
        ("placementConstraints", parse_constraints),
        ("placementStrategy", parse_strategies),
    ):
        if params.get(key) is not None:
            check(params[key])
            new_spec[key] = params[key]
    if params.get("serviceRegistries") is not None:
        new_spec["serviceRegistries"] = _registries(params["serviceRegistries"])
    for key in ECHOED:
        if key in params and params[key] is not None:
            new_spec[key] = params[key]
    _check_grace(params)
    if params.get("loadBalancers") is not None or (defn is not None and spec.get("loadBalancers")):
        # the new entries, or the same ones checked against the new revision
        primary_defn = (current.primary or {}).get("definition") or {}
        new_spec["loadBalancers"] = _load_balancers(
            params["loadBalancers"] if params.get("loadBalancers") is not None else spec.get("loadBalancers"),
            defn or primary_defn, target_groups, listener_rules)
    if params.get("capacityProviderStrategy") is not None:  # for the tasks it starts from now on
        new_spec["capacityProviderStrategy"] = tasks.strategy_for(
            store, cluster, {"capacityProviderStrategy": params["capacityProviderStrategy"]})
    if params.get("networkConfiguration") is not None:
        new_spec["networkConfiguration"] = params["networkConfiguration"]
    sc = params.get("serviceConnectConfiguration")
    if sc is None and defn is not None and spec.get("serviceConnectConfiguration"):
        sc = spec["serviceConnectConfiguration"]  # the same configuration, checked against the new revision
    if sc is not None and current.status == "ACTIVE":
        primary = current.primary or {}
        target_defn = defn or primary.get("definition") or {}
        new_spec.update(await service_connect(store, found, name, sc, target_defn, namespace_info, registry))
    _check_strategy(new_spec, alarms if params.get("deploymentConfiguration") is not None else None)
    force = params.get("forceNewDeployment", False)
    if not isinstance(force, bool):
        raise InvalidParameterException("forceNewDeployment must be a boolean.")
    now = time.time()

    def change(svc: data.Service | None) -> data.Service:
        svc = _active(svc)
        deps = copy.deepcopy(list(svc.deployments))
        primary = next(d for d in deps if d["status"] == "PRIMARY")
        target = defn or primary["definition"]
        _check_network(target, new_spec.get("networkConfiguration"))
        redeploy = (
            force
            or (defn is not None and defn["taskDefinitionArn"] != primary["taskDefinition"])
            or new_spec.get("networkConfiguration") != spec.get("networkConfiguration")
            or new_spec.get("serviceRegistries") != spec.get("serviceRegistries")
            or (new_spec.get("loadBalancers") or []) != (spec.get("loadBalancers") or [])
            or any(new_spec.get(k) != spec.get(k) for k in CONNECT_KEYS)
        )
        if redeploy:
            new_spec["taskDefinition"] = target["taskDefinitionArn"]
            for d in deps:
                d["status"] = "ACTIVE"
                d["updatedAt"] = now
            dep = new_deployment(target, new_spec, now)
            if shift.strategy_of(new_spec["deploymentConfiguration"]) is not None:
                dep[SHIFT] = new_shift(primary, new_spec["deploymentConfiguration"], now)
                if balancing.advanced(dep.get("loadBalancers") or []):  # the group the source does not use
                    dep["loadBalancers"] = balancing.green_entries(
                        balancing.entries_of(primary, spec), dep["loadBalancers"])
            deps = [dep, *deps]
        steady = svc.steady and not (redeploy or new_spec != spec)
        return replace(svc, spec=new_spec, deployments=tuple(deps), steady=steady, updated_at=now)

    return {"service": shape(config, store, await data.modify_service(store, cluster, name, change))}


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.cluster_name(params.get("cluster"))
    if data.cluster(store, cluster) is None:
        raise clusters.ClusterNotFoundException("Cluster not found.")
    idents = params.get("services")
    if not isinstance(idents, list) or not 1 <= len(idents) <= 10:
        raise InvalidParameterException("services must list 1 to 10 service names or ARNs.")
    include = params.get("include") or []
    found, failures = [], []
    for ident in idents:
        name = service_name(ident)
        svc = data.service(store, cluster, name)
        if svc is None:
            failures.append({"arn": service_arn(config, cluster, name), "reason": "MISSING"})
        else:
            found.append(shape(config, store, svc, include))
    return {"services": found, "failures": failures}


async def list_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
    arns = []
    for svc in data.services_in(store, cluster):
        spec = svc.spec
        if params.get("launchType") and spec.get("launchType") != params["launchType"]:
            continue
        if (
            params.get("schedulingStrategy")
            and spec.get("schedulingStrategy") != params["schedulingStrategy"]
        ):
            continue
        arns.append(service_arn(config, cluster, svc.name))
    chunk, token = page(arns, params, InvalidParameterException, default=10)
    out: dict[str, Any] = {"serviceArns": chunk}
    if token:
        out["nextToken"] = token
    return out


async def list_by_namespace(
    store: Store, config: Config, params: dict[str, Any], namespaces: NamespaceLookup | None,
    namespace_info: NamespaceInfo | None = None,
) -> dict[str, Any]:
    """Services whose ``serviceRegistries`` name a Cloud Map service of ``namespace`` (id, ARN or
    name), as ``namespaces`` (the seam; without it no namespace exists) answers, or whose
    Service Connect configuration is in that namespace (as ``namespace_info`` answers)."""
    ns = params.get("namespace")
    if not isinstance(ns, str) or not ns:
        raise InvalidParameterException("namespace is required.")
    srv = namespaces(ns) if namespaces is not None else None
    if srv is None:
        raise NamespaceNotFoundException(f"Namespace {ns} not found.")
    found = namespace_info(ns) if namespace_info is not None else None
    arns = []
    for svc in data.active_services(store):
        regs = svc.spec.get("serviceRegistries") or []
        sc = svc.spec.get("serviceConnectConfiguration") or {}
        if any(registry_id(g["registryArn"]) in srv for g in regs) or (
            found is not None and sc.get("enabled") and sc.get("namespace") == found.arn
        ):
            arns.append(service_arn(config, svc.cluster, svc.name))
    chunk, token = page(arns, params, InvalidParameterException, default=10)
    out: dict[str, Any] = {"serviceArns": chunk}
    if token:
        out["nextToken"] = token
    return out


async def delete(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
    force = params.get("force", False)
    if not isinstance(force, bool):
        raise InvalidParameterException("force must be a boolean.")
    name = service_name(params.get("service"))

    def change(svc: data.Service | None) -> data.Service:
        svc = _active(svc)
        spec = dict(svc.spec)
        if spec["schedulingStrategy"] == "REPLICA" and spec["desiredCount"] > 0 and not force:
            raise InvalidParameterException("The service cannot be stopped while it is scaled above 0.")
        spec["desiredCount"] = 0
        return replace(svc, status="DRAINING", spec=spec, steady=False, updated_at=time.time())

    return {"service": shape(config, store, await data.modify_service(store, cluster, name, change))}


# The operations that take the seams ``namespace_info``, ``registry``, ``alarms`` and
# ``target_groups`` (runner.part binds them).
NAMESPACED = ("CreateService", "UpdateService")

OPERATIONS = {
    "CreateService": create,
    "UpdateService": update,
    "DescribeServices": describe,
    "ListServices": list_,
    "DeleteService": delete,
}
