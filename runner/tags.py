"""ECS TagResource, UntagResource and ListTagsForResource, for every taggable resource.

Each resource keeps its tags as a JSON list (``[{"key", "value"}]``) in a ``tags`` column; the
resource's ARN names it (:func:`locate`, a :class:`runner.data.TagTarget`). Tags merge by
key; at most 50 per resource; keys starting with ``aws:`` are reserved.
"""

from __future__ import annotations

import re
from typing import Any

from dockyard.aws.errors import AwsError
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, instances, services, taskdefs, tasks
from runner.errors import ClusterNotFoundException, InvalidParameterException, ResourceNotFoundException

__all__ = ["OPERATIONS", "locate"]

MAX_TAGS = 50
_ARN = re.compile(r"^arn:aws:ecs:[^:]*:[^:]*:(cluster|task-definition|service|task|container-instance)/(.+)$")


def locate(arn: Any) -> data.TagTarget:
    """The resource an ECS ARN names (pure); InvalidParameterException for a malformed ARN."""
    m = _ARN.match(arn) if isinstance(arn, str) else None
    if not m:
        raise InvalidParameterException(f"Invalid resource ARN: {arn!r}.")
    kind, rest = m.groups()
    if kind == "cluster":
        return data.TagTarget(kind, (rest,), clusters.TOPIC, rest)
    if kind == "task-definition":
        family, revision = taskdefs.parse_ident(rest)
        if revision is None:
            raise InvalidParameterException("A task definition ARN must name a revision.")
        return data.TagTarget(kind, (family, revision), taskdefs.TOPIC, f"{family}:{revision}")
    parts = rest.split("/")
    if len(parts) != 2:
        raise InvalidParameterException(f"Invalid resource ARN: {arn!r}.")
    cluster, name = parts
    if kind == "service":
        return data.TagTarget(kind, (cluster, name), services.TOPIC, f"{cluster}/{name}")
    topic = {"task": tasks.TOPIC, "container-instance": instances.TOPIC}[kind]
    return data.TagTarget(kind, (cluster, name), topic, name)


def _missing(arn: str) -> AwsError:
    if ":cluster/" in arn:
        return ClusterNotFoundException("Cluster not found.")
    return ResourceNotFoundException("The specified resource could not be found.")


def _current(reader: data.Reader, target: data.TagTarget, arn: str) -> list[dict[str, str]]:
    found = data.tags_of(reader, target)
    if found is None:
        raise _missing(arn)
    return found


async def _write(store: Store, target: data.TagTarget, arn: str, change: Any) -> None:
    async with store.transaction() as tx:
        tags = change(_current(tx, target, arn))
        if len(tags) > MAX_TAGS:
            raise InvalidParameterException(f"A resource can have at most {MAX_TAGS} tags.")
        data.set_tags(tx, target, tags)


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
