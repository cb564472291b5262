"""ECS services: CreateService, UpdateService, DescribeServices, ListServices, DeleteService,
ListServicesByNamespace.

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

from dockyard.aws.errors import register
from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import clusters, data, taskdefs, tasks
from runner.errors import (
    InvalidParameterException,
    ServiceNotActiveException,
    ServiceNotFoundException,
)
from runner.numbers import param_int
from runner.scheduler import parse_constraints, parse_strategies
from runner.serviceshapes import ECHOED, group_of, service_arn, shape

NamespaceNotFoundException = register("NamespaceNotFoundException")

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
    )
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


def new_deployment(definition: Mapping[str, Any], spec: Mapping[str, Any], now: float) -> dict[str, Any]:
    """A PRIMARY deployment IN_PROGRESS of ``definition`` (ECS ids: ``ecs-svc/`` + 19 digits)."""
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
async def create(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
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
    tags = clusters.validate_tags(params.get("tags"))
    now = time.time()
    dep = new_deployment(defn, spec, now)
    new = data.Service(cluster, name, "ACTIVE", spec, now, now, deployments=(dep,), tags=tuple(tags))
    if not await data.create_service(store, new):
        raise InvalidParameterException("Creation of service was not idempotent.")
    return {"service": shape(config, store, data.service(store, cluster, name) or new, ["TAGS"])}


async def update(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = clusters.active(store, params.get("cluster")).name
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
    if params.get("networkConfiguration") is not None:
        new_spec["networkConfiguration"] = params["networkConfiguration"]
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
        )
        if redeploy:
            new_spec["taskDefinition"] = target["taskDefinitionArn"]
            for d in deps:
                d["status"] = "ACTIVE"
                d["updatedAt"] = now
            deps = [new_deployment(target, new_spec, now), *deps]
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


async def list_by_namespace(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """Services whose ``serviceRegistries`` name a Cloud Map service of ``namespace`` (id, ARN or
    name)."""
    ns = params.get("namespace")
    if not isinstance(ns, str) or not ns:
        raise InvalidParameterException("namespace is required.")
    srv = data.discovery_services_of_namespace(store, ns)
    if srv is None:
        raise NamespaceNotFoundException(f"Namespace {ns} not found.")
    arns = []
    for svc in data.active_services(store):
        regs = svc.spec.get("serviceRegistries") or []
        if any(registry_id(g["registryArn"]) in srv for g in regs):
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


OPERATIONS = {
    "CreateService": create,
    "UpdateService": update,
    "DescribeServices": describe,
    "ListServices": list_,
    "ListServicesByNamespace": list_by_namespace,
    "DeleteService": delete,
}
