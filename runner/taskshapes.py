"""The AWS shape of a task row (DescribeTasks' ``Task``), and task ARNs (pure)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from dockyard.config import Config
from runner import clusters, instances
from runner.numbers import loose_int

__all__ = ["shape", "task_arn"]

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



# -- shapes ----------------------------------------------------------------------------------
def _container_shape(
    config: Config, row: Any, defn: Mapping[str, Any], c: Mapping[str, Any], state: Mapping[str, Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "containerArn": f"arn:aws:ecs:{config.region}:{config.account_id}:container/{row['cluster']}/"
        f"{row['id']}/{uuid.uuid5(uuid.NAMESPACE_URL, row['id'] + c['name'])}",
        "taskArn": task_arn(config, row["cluster"], row["id"]),
        "name": c["name"],
        "image": state.get("image") or c.get("image", ""),
        "lastStatus": state.get("lastStatus", "PENDING"),
        "networkBindings": state.get("networkBindings", []),
        "networkInterfaces": [],
        "healthStatus": state.get("healthStatus", "UNKNOWN"),
        "cpu": str(loose_int(c.get("cpu")) or 0),
    }
    for key in ("runtimeId", "imageDigest", "exitCode", "reason"):
        if state.get(key) is not None and state.get(key) != "":
            out[key] = state[key]
    if c.get("memory"):
        out["memory"] = str(c["memory"])
    if c.get("memoryReservation"):
        out["memoryReservation"] = str(c["memoryReservation"])
    network = json.loads(row["network"])
    if network.get("ip") and (defn.get("networkMode") == "awsvpc"):
        out["networkInterfaces"] = [
            {"attachmentId": network.get("attachment", ""), "privateIpv4Address": network["ip"]}
        ]
    return out


def shape(config: Config, row: Any, include: list[str] | None = None) -> dict[str, Any]:
    """A task as DescribeTasks answers it."""
    defn = json.loads(row["definition"])
    states = json.loads(row["containers"])
    extra = json.loads(row["extra"])
    network = json.loads(row["network"])
    inst = instances.instance_arn(config, row["cluster"], row["instance_id"])
    out: dict[str, Any] = {
        "taskArn": task_arn(config, row["cluster"], row["id"]),
        "clusterArn": clusters.cluster_arn(config, row["cluster"]),
        "taskDefinitionArn": row["definition_arn"],
        "containerInstanceArn": inst,
        "overrides": {
            "containerOverrides": [],
            "inferenceAcceleratorOverrides": [],
            **json.loads(row["overrides"]),
        },
        "lastStatus": row["last_status"],
        "desiredStatus": row["desired_status"],
        "cpu": str(row["cpu"]),
        "memory": str(row["memory"]),
        "containers": [
            _container_shape(config, row, defn, c, states.get(c["name"], {}))
            for c in defn.get("containerDefinitions") or []
        ],
        "launchType": row["launch_type"],
        "group": row["grp"],
        "version": row["version"],
        "healthStatus": row["health"],
        "connectivity": "CONNECTED" if row["connectivity_at"] else "DISCONNECTED",
        "availabilityZone": f"{config.region}a",
        "attributes": [{"name": "ecs.cpu-architecture", "value": "x86_64"}],
        "attachments": [],
        "enableExecuteCommand": False,
        "tags": json.loads(row["tags"]) if include is None or "TAGS" in (include or []) else [],
    }
    if row["started_by"]:
        out["startedBy"] = row["started_by"]
    if row["stop_code"]:
        out["stopCode"] = row["stop_code"]
    if row["stopped_reason"]:
        out["stoppedReason"] = row["stopped_reason"]
    for col, key in _TIMES.items():
        if row[col] is not None:
            out[key] = row[col]
    if row["launch_type"] == "FARGATE":
        out["platformVersion"] = "1.4.0"
        out["platformFamily"] = "Linux"
    if defn.get("networkMode") == "awsvpc":
        vpc = (extra.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {}
        details = [
            {"name": "subnetId", "value": (vpc.get("subnets") or ["subnet-dockyard"])[0]},
            {"name": "networkInterfaceId", "value": network.get("attachment", "")},
        ]
        if network.get("ip"):
            details.append({"name": "privateIPv4Address", "value": network["ip"]})
        status = (
            "ATTACHED"
            if network.get("ip") and row["last_status"] != "STOPPED"
            else ("DELETED" if row["last_status"] == "STOPPED" else "PRECREATED")
        )
        out["attachments"] = [
            {
                "id": network.get("attachment", ""),
                "type": "ElasticNetworkInterface",
                "status": status,
                "details": details,
            }
        ]
    return out


