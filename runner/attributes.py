"""ECS attributes of container instances: PutAttributes, DeleteAttributes, ListAttributes.

Custom attributes live in the container instance row's ``attributes``, merged by name
(:func:`runner.instances.merge_attributes`); a write changes the instance's topic
(:func:`runner.data.set_instance_attributes`).
"""

from __future__ import annotations

from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Store, Tx
from runner import data
from runner.errors import InvalidParameterException
from runner.instances import (
    AttributeLimitExceededException,
    TargetNotFoundException,
    cluster_param,
    custom_attributes,
    instance_arn,
    instance_id,
    merge_attributes,
)

__all__ = ["OPERATIONS"]


def _target(tx: Tx, cluster: str, a: dict[str, Any]) -> data.StoredInstance:
    if a.get("targetType", "container-instance") != "container-instance":
        raise InvalidParameterException("targetType must be container-instance.")
    target = a.get("targetId")
    if not isinstance(target, str) or not target:
        raise InvalidParameterException("targetId is required.")
    r = data.instance(tx, instance_id(target), cluster)
    if r is None:
        raise TargetNotFoundException(f"Could not find {target}.")
    return r


async def put_attributes(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    attrs = params.get("attributes")
    if not isinstance(attrs, list) or not attrs or len(attrs) > 10:
        raise InvalidParameterException("attributes must list 1 to 10 attributes.")
    async with store.transaction() as tx:
        for a in attrs:
            new = custom_attributes([a])
            r = _target(tx, cluster, a)
            current = merge_attributes(list(r.attributes), new)
            if len(current) > 10:
                raise AttributeLimitExceededException(
                    "You can apply up to 10 custom attributes per resource."
                )
            data.set_instance_attributes(tx, r.id, current)
    return {"attributes": [_echo(config, cluster, a) for a in attrs]}


async def delete_attributes(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    attrs = params.get("attributes")
    if not isinstance(attrs, list) or not attrs:
        raise InvalidParameterException("attributes must list at least one attribute.")
    async with store.transaction() as tx:
        for a in attrs:
            r = _target(tx, cluster, a)
            current = [x for x in r.attributes if x["name"] != a.get("name")]
            data.set_instance_attributes(tx, r.id, current)
    return {"attributes": [_echo(config, cluster, a) for a in attrs]}


def _echo(config: Config, cluster: str, a: dict[str, Any]) -> dict[str, Any]:
    out = {
        "name": a["name"],
        "targetType": "container-instance",
        "targetId": instance_arn(config, cluster, instance_id(a["targetId"])),
    }
    if a.get("value") is not None:
        out["value"] = a["value"]
    return out


async def list_attributes(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    cluster = cluster_param(store, params)
    if params.get("targetType") != "container-instance":
        raise InvalidParameterException("targetType must be container-instance.")
    name, value = params.get("attributeName"), params.get("attributeValue")
    if value is not None and name is None:
        raise InvalidParameterException("attributeValue needs attributeName.")
    out = []
    for r in data.instances_of(store, cluster):
        arn = instance_arn(config, cluster, r.id)
        for a in [*r.builtin, *r.attributes]:
            if name is not None and a["name"] != name:
                continue
            if value is not None and a.get("value") != value:
                continue
            out.append({**a, "targetType": "container-instance", "targetId": arn})
    chunk, token = page(out, params, InvalidParameterException)
    result: dict[str, Any] = {"attributes": chunk}
    if token:
        result["nextToken"] = token
    return result


OPERATIONS = {
    "PutAttributes": put_attributes,
    "DeleteAttributes": delete_attributes,
    "ListAttributes": list_attributes,
}
