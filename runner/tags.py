"""ECS TagResource, UntagResource and ListTagsForResource, for every taggable resource.

Each resource keeps its tags as a JSON list (``[{"key", "value"}]``) in a ``tags`` column; the
resource's ARN names its row (:data:`KINDS`). Tags merge by key; at most 50 per resource;
keys starting with ``aws:`` are reserved.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from dockyard.aws.errors import AwsError
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, instances, services, taskdefs, tasks
from runner.errors import ClusterNotFoundException, InvalidParameterException, ResourceNotFoundException

__all__ = ["OPERATIONS", "locate"]

MAX_TAGS = 50
_ARN = re.compile(r"^arn:aws:ecs:[^:]*:[^:]*:(cluster|task-definition|service|task|container-instance)/(.+)$")


@dataclass(frozen=True)
class Row:
    """Where one resource's tags live."""

    table: str
    where: str
    params: tuple[Any, ...]
    topic: str
    key: str


def locate(arn: Any) -> Row:
    """The row an ECS ARN names (pure); InvalidParameterException for a malformed ARN."""
    m = _ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        raise InvalidParameterException(f"Invalid resource ARN: {arn!r}.")
    kind, rest = m.groups()
    if kind == "cluster":
        return Row("clusters", "name = ? AND status = 'ACTIVE'", (rest,), clusters.TOPIC, rest)
    if kind == "task-definition":
        family, revision = taskdefs.parse_ident(rest)
        if revision is None:
            raise InvalidParameterException("A task definition ARN must name a revision.")
        where = "family = ? AND revision = ? AND status != 'DELETE_IN_PROGRESS'"
        return Row("task_definitions", where, (family, revision), taskdefs.TOPIC, f"{family}:{revision}")
    parts = rest.split("/")
    if len(parts) != 2:
        raise InvalidParameterException(f"Invalid resource ARN: {arn!r}.")
    cluster, name = parts
    if kind == "service":
        where = "cluster = ? AND name = ? AND status != 'INACTIVE'"
        return Row("services", where, (cluster, name), services.TOPIC, f"{cluster}/{name}")
    table, topic = {"task": ("tasks", tasks.TOPIC), "container-instance": (
        "container_instances", instances.TOPIC)}[kind]
    return Row(table, "cluster = ? AND id = ?", (cluster, name), topic, name)


def _missing(arn: str) -> AwsError:
    if ":cluster/" in arn:
        return ClusterNotFoundException("Cluster not found.")
    return ResourceNotFoundException("The specified resource could not be found.")


def _current(reader: Any, row: Row, arn: str) -> list[dict[str, str]]:
    found = reader.query_one(f"SELECT tags FROM {row.table} WHERE {row.where}", row.params)
    if found is None:
        raise _missing(arn)
    return list(json.loads(found[0]))


async def _write(store: Store, row: Row, arn: str, change: Any) -> None:
    async with store.transaction() as tx:
        tags = change(_current(tx, row, arn))
        if len(tags) > MAX_TAGS:
            raise InvalidParameterException(f"A resource can have at most {MAX_TAGS} tags.")
        tx.execute(f"UPDATE {row.table} SET tags = ? WHERE {row.where}", (json.dumps(tags), *row.params))
        tx.changed(row.topic, row.key)


async def tag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    arn = params.get("resourceArn")
    row = locate(arn)
    new = clusters.validate_tags(params.get("tags"))
    if not new:
        raise InvalidParameterException("tags must name at least one tag.")
    if any(t["key"].lower().startswith("aws:") for t in new):
        raise InvalidParameterException("Tag keys starting with 'aws:' are reserved.")

    def merge(old: list[dict[str, str]]) -> list[dict[str, str]]:
        merged = {t["key"]: t["value"] for t in old}
        merged.update({t["key"]: t["value"] for t in new})
        return [{"key": k, "value": v} for k, v in merged.items()]

    await _write(store, row, arn, merge)
    return {}


async def untag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    arn = params.get("resourceArn")
    row = locate(arn)
    keys = params.get("tagKeys")
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise InvalidParameterException("tagKeys must be a non-empty list of strings.")
    await _write(store, row, arn, lambda old: [t for t in old if t["key"] not in set(keys)])
    return {}


async def list_tags_for_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    arn = params.get("resourceArn")
    return {"tags": _current(store, locate(arn), arn)}


OPERATIONS = {
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags_for_resource,
}
