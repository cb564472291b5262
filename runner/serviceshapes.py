"""The AWS shape of a service (DescribeServices' ``Service``), with its task counts: a
:class:`runner.data.Service` in, ECS's JSON out."""

from __future__ import annotations

from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, connect, data

__all__ = ["ECHOED", "counts", "group_of", "service_arn", "shape"]

# Request fields a service keeps in its spec and describes as given.
ECHOED = (
    "loadBalancers",
    "capacityProviderStrategy",
    "platformVersion",
    "role",
    "healthCheckGracePeriodSeconds",
    "deploymentController",
    "enableECSManagedTags",
    "propagateTags",
    "enableExecuteCommand",
    "volumeConfigurations",
    "availabilityZoneRebalancing",
)


# Deployment keys kept for the loop, never shown (the task definition, the failed count, the
# Service Connect namespace's name, a traffic shift's split and state, its load balancers).
HIDDEN = ("definition", "failed", connect.HIDDEN_NAMESPACE, connect.TRAFFIC, "shift", "loadBalancers")


def service_arn(config: Config, cluster: str, name: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:service/{cluster}/{name}"


def group_of(name: str) -> str:
    """The task group of a service's tasks."""
    return f"service:{name}"


def counts(store: Store, cluster: str, name: str) -> dict[str, dict[str, int]]:
    """Per deployment id (and ``""`` for the service): running and pending task counts."""
    out: dict[str, dict[str, int]] = {"": {"running": 0, "pending": 0}}
    for t in data.live_tasks_of_group(store, cluster, group_of(name)):
        key = "running" if t.last_status == "RUNNING" else "pending"
        for dep in ("", t.deployment):
            c = out.setdefault(dep, {"running": 0, "pending": 0})
            c[key] += 1
    return out


def shape(
    config: Config, store: Store, svc: data.Service, include: list[str] | None = None
) -> dict[str, Any]:
    """A service as DescribeServices answers it."""
    spec = svc.spec
    deps = svc.deployments
    n = counts(store, svc.cluster, svc.name)
    primary = next((d for d in deps if d["status"] == "PRIMARY"), None)
    out: dict[str, Any] = {
        "serviceArn": service_arn(config, svc.cluster, svc.name),
        "serviceName": svc.name,
        "clusterArn": clusters.cluster_arn(config, svc.cluster),
        "loadBalancers": spec.get("loadBalancers", []),
        "serviceRegistries": spec.get("serviceRegistries", []),
        "status": svc.status,
        "desiredCount": spec["desiredCount"],
        "runningCount": n[""]["running"],
        "pendingCount": n[""]["pending"],
        "launchType": spec.get("launchType", "EC2"),
        "taskDefinition": primary["taskDefinition"] if primary else spec.get("taskDefinition", ""),
        "deploymentConfiguration": spec["deploymentConfiguration"],
        "deployments": [],
        "events": [dict(e) for e in svc.events],
        "createdAt": svc.created_at,
        "placementConstraints": spec.get("placementConstraints", []),
        "placementStrategy": spec.get("placementStrategy", []),
        "schedulingStrategy": spec.get("schedulingStrategy", "REPLICA"),
        "createdBy": f"arn:aws:iam::{config.account_id}:root",
        "enableECSManagedTags": spec.get("enableECSManagedTags", False),
        "propagateTags": spec.get("propagateTags", "NONE"),
        "enableExecuteCommand": spec.get("enableExecuteCommand", False),
        "deploymentController": spec.get("deploymentController") or {"type": "ECS"},
    }
    for key in (*ECHOED, "networkConfiguration"):
        if key in spec and key not in out:
            out[key] = spec[key]
    if spec.get("capacityProviderStrategy"):  # ECS shows one or the other
        del out["launchType"]
    if out.get("launchType") == "FARGATE":
        out["platformVersion"] = spec.get("platformVersion") or "1.4.0"
        out["platformFamily"] = "Linux"
    if spec.get("role"):
        out["roleArn"] = spec["role"]
    for d in deps:
        c = n.get(d["id"], {"running": 0, "pending": 0})
        shown = {k: v for k, v in d.items() if k not in HIDDEN}
        shown.update(
            desiredCount=spec["desiredCount"] if d["status"] == "PRIMARY" else c["running"] + c["pending"],
            runningCount=c["running"],
            pendingCount=c["pending"],
            failedTasks=d.get("failed", 0),
        )
        out["deployments"].append(shown)
    if "TAGS" in (include or []):
        out["tags"] = [dict(t) for t in svc.tags]
    return out
