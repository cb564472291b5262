"""The AWS shape of a task (DescribeTasks' ``Task``), and task ARNs (pure).

A :class:`runner.data.Task` in, ECS's JSON out: the typed task is what the runner passes
around, and this module is the edge where it becomes AWS's shape.

A meshed task (Service Connect) shows its sidecar as ECS shows its Service Connect container:
first in ``containers``, named ``ecs-service-connect-<suffix>`` (:func:`runner.agent.meshed.sidecar_name`),
with no ``cpu``, and an attachment of type ``ServiceConnect`` whose ``ContainerName`` names it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from dockyard.config import Config
from runner import clusters, instances
from runner.agent.meshed import sidecar_name
from runner.data import ContainerState, Task
from runner.numbers import loose_int

__all__ = ["container_arn", "shape", "task_arn"]

_TIMES = {
    "created_at": "createdAt",
    "pull_started_at": "pullStartedAt",
    "pull_stopped_at": "pullStoppedAt",
    "started_at": "startedAt",
    "connectivity_at": "connectivityAt",
    "stopping_at": "stoppingAt",
    "stopped_at": "stoppedAt",
    "execution_stopped_at": "executionStoppedAt",
}


def task_arn(config: Config, cluster: str, ident: str) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:task/{cluster}/{ident}"


def container_arn(config: Config, task: Task, name: str) -> str:
    return (f"arn:aws:ecs:{config.region}:{config.account_id}:container/{task.cluster}/"
            f"{task.id}/{uuid.uuid5(uuid.NAMESPACE_URL, task.id + name)}")


# -- shapes ----------------------------------------------------------------------------------
def _container_shape(
    config: Config, task: Task, c: Mapping[str, Any], state: ContainerState, sidecar: bool = False
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "containerArn": container_arn(config, task, c["name"]),
        "taskArn": task_arn(config, task.cluster, task.id),
        "name": c["name"],
        "image": state.image or c.get("image", ""),
        "lastStatus": state.last_status,
        "networkBindings": [
            {"bindIP": b.bind_ip, "containerPort": b.container_port, "hostPort": b.host_port,
             "protocol": b.protocol}
            for b in state.bindings
        ],
        "networkInterfaces": [],
        "healthStatus": state.health,
    }
    if not sidecar:  # ECS shows no cpu for its Service Connect container
        out["cpu"] = str(loose_int(c.get("cpu")) or 0)
    for key, value in (("runtimeId", state.runtime_id), ("imageDigest", state.image_digest),
                       ("exitCode", state.exit_code), ("reason", state.reason)):
        if value is not None and value != "":
            out[key] = value
    if c.get("memory"):
        out["memory"] = str(c["memory"])
    if c.get("memoryReservation"):
        out["memoryReservation"] = str(c["memoryReservation"])
    if task.network.ip and task.definition.get("networkMode") == "awsvpc":
        out["networkInterfaces"] = [
            {"attachmentId": task.network.attachment, "privateIpv4Address": task.network.ip}
        ]
    return out


def shape(config: Config, task: Task, include: list[str] | None = None) -> dict[str, Any]:
    """A task as DescribeTasks answers it."""
    defn = task.definition
    containers = [_container_shape(config, task, c, task.state_of(c["name"]))
                  for c in task.container_definitions]
    attachments: list[dict[str, Any]] = []
    if task.connect is not None:
        name = sidecar_name(task.id)
        sidecar = _container_shape(config, task, {"name": name}, task.state_of(name), sidecar=True)
        containers.insert(0, sidecar)
        attachments.append({
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, task.id + "/service-connect")),
            "type": "ServiceConnect",
            "status": "DELETED" if task.last_status == "STOPPED" else "ATTACHED",
            "details": [{"name": "ContainerName", "value": name}],
        })
    out: dict[str, Any] = {
        "taskArn": task_arn(config, task.cluster, task.id),
        "clusterArn": clusters.cluster_arn(config, task.cluster),
        "taskDefinitionArn": task.definition_arn,
        "containerInstanceArn": instances.instance_arn(config, task.cluster, task.instance_id),
        "overrides": {
            "containerOverrides": [],
            "inferenceAcceleratorOverrides": [],
            **task.overrides,
        },
        "lastStatus": task.last_status,
        "desiredStatus": task.desired_status,
        "cpu": str(task.cpu),
        "memory": str(task.memory),
        "containers": containers,
        "launchType": task.launch_type,
        "group": task.group,
        "version": task.version,
        "healthStatus": task.health,
        "connectivity": "CONNECTED" if task.connectivity_at else "DISCONNECTED",
        "availabilityZone": f"{config.region}a",
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "attachments": attachments,
        "enableExecuteCommand": False,
        "tags": [dict(t) for t in task.tags] if include is None or "TAGS" in (include or []) else [],
    }
    if task.started_by:
        out["startedBy"] = task.started_by
    if task.extra.get("capacityProviderName"):
        out["capacityProviderName"] = task.extra["capacityProviderName"]
    if task.stop_code:
        out["stopCode"] = task.stop_code
    if task.stopped_reason:
        out["stoppedReason"] = task.stopped_reason
    for attr, key in _TIMES.items():
        value = getattr(task, attr)
        if value is not None:
            out[key] = value
    if task.launch_type == "FARGATE":
        out["platformVersion"] = "1.4.0"
        out["platformFamily"] = "Linux"
    if defn.get("networkMode") == "awsvpc":
        net = task.network
        vpc = (task.extra.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        details = [
            {"name": "subnetId", "value": (vpc.get("subnets") or ["subnet-dockyard"])[0]},
            {"name": "networkInterfaceId", "value": net.attachment},
        ]
        if net.ip:
            details.append({"name": "privateIPv4Address", "value": net.ip})
        status = (
            "ATTACHED"
            if net.ip and task.last_status != "STOPPED"
            else ("DELETED" if task.last_status == "STOPPED" else "PRECREATED")
        )
        out["attachments"] = [
            *attachments,
            {"id": net.attachment, "type": "ElasticNetworkInterface", "status": status, "details": details},
        ]
    return out
