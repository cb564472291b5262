"""ECS clusters: CreateCluster, DescribeClusters, ListClusters, DeleteCluster."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner.errors import ClusterNotFoundException, InvalidParameterException

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
    )
]

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
TOPIC = "ecs/cluster"


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


def _shape(config: Config, row: Any, include: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "clusterArn": cluster_arn(config, row["name"]),
        "clusterName": row["name"],
        "status": row["status"],
        "registeredContainerInstancesCount": 0,
        "runningTasksCount": 0,
        "pendingTasksCount": 0,
        "activeServicesCount": 0,
        "statistics": [],
        "settings": json.loads(row["settings"]),
        "capacityProviders": [],
        "defaultCapacityProviderStrategy": [],
    }
    if json.loads(row["configuration"]):
        out["configuration"] = json.loads(row["configuration"])
    if "TAGS" in include:
        out["tags"] = json.loads(row["tags"])
    return out


def get_active(store: Store, ident: Any) -> Any:
    """The ACTIVE cluster row for a name or ARN, else ClusterNotFoundException."""
    name = cluster_name(ident)
    row = store.query_one("SELECT * FROM clusters WHERE name = ? AND status = 'ACTIVE'", (name,))
    if row is None:
        raise ClusterNotFoundException("Cluster not found.")
    return row


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


async def create(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = params.get("clusterName", "default")
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidParameterException(
            "Cluster name can have up to 255 characters: letters (uppercase and lowercase), "
            "numbers, underscores, and hyphens."
        )
    tags = validate_tags(params.get("tags"))
    settings = params.get("settings") or [{"name": "containerInsights", "value": "disabled"}]
    configuration = params.get("configuration") or {}
    async with store.transaction() as tx:
        row = tx.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
        if row is None or row["status"] != "ACTIVE":
            tx.execute(
                "INSERT OR REPLACE INTO clusters (name, status, created_at, tags, settings, configuration)"
                " VALUES (?, 'ACTIVE', ?, ?, ?, ?)",
                (name, time.time(), json.dumps(tags), json.dumps(settings), json.dumps(configuration)),
            )
            tx.changed(TOPIC, name)
        row = tx.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
    return {"cluster": _shape(config, row, ["TAGS"])}


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    idents = params.get("clusters") or ["default"]
    if not isinstance(idents, list) or len(idents) > 100:
        raise InvalidParameterException("clusters must be a list of at most 100 names or ARNs.")
    include = params.get("include") or []
    clusters, failures = [], []
    for ident in idents:
        name = cluster_name(ident)
        row = store.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
        if row is None:
            failures.append({"arn": cluster_arn(config, name), "reason": "MISSING"})
        else:
            clusters.append(_shape(config, row, include))
    return {"clusters": clusters, "failures": failures}


async def list_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    rows = store.query("SELECT name FROM clusters WHERE status = 'ACTIVE' ORDER BY name")
    arns = [cluster_arn(config, r["name"]) for r in rows]
    chunk, token = page(arns, params, InvalidParameterException)
    out: dict[str, Any] = {"clusterArns": chunk}
    if token:
        out["nextToken"] = token
    return out


async def delete(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    if "cluster" not in params:
        raise InvalidParameterException("cluster is required.")
    async with store.transaction() as tx:
        name = cluster_name(params["cluster"])
        row = tx.query_one("SELECT * FROM clusters WHERE name = ? AND status = 'ACTIVE'", (name,))
        if row is None:
            raise ClusterNotFoundException("Cluster not found.")
        tx.execute("UPDATE clusters SET status = 'INACTIVE' WHERE name = ?", (name,))
        tx.changed(TOPIC, name)
        row = tx.query_one("SELECT * FROM clusters WHERE name = ?", (name,))
    return {"cluster": _shape(config, row, [])}


OPERATIONS = {
    "CreateCluster": create,
    "DescribeClusters": describe,
    "ListClusters": list_,
    "DeleteCluster": delete,
}
