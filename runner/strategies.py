"""Capacity provider strategies as requests give them: checked and normalised
(:func:`check_strategy`), providers named (:func:`associate`) and turned into the scheduler's
:class:`runner.scheduler.capacity.Item` s (:func:`strategy_of`). Shared by clusters (the
default strategy), tasks and services; :mod:`runner.capacity` holds the providers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from runner import data
from runner.errors import InvalidParameterException
from runner.scheduler.capacity import Item

__all__ = ["FARGATE", "GROUP_ATTRIBUTE", "associate", "check_strategy", "members", "strategy_of"]

FARGATE = ("FARGATE", "FARGATE_SPOT")
GROUP_ATTRIBUTE = "autoscaling-group"  # what makes a container instance a member of a provider


def members(instances: Sequence[Any], provider: data.CapacityProvider | None) -> list[Any]:
    """The instances of ``provider`` (every one for FARGATE, ``provider`` None)."""
    if provider is None:
        return list(instances)
    return [i for i in instances if i.attributes.get(GROUP_ATTRIBUTE) == provider.group]


def check_strategy(
    raw: Any, associated: Sequence[str], what: str = "capacityProviderStrategy"
) -> list[dict[str, Any]]:
    """The normalised strategy (``capacityProvider``, ``weight``, ``base``), checked as ECS
    checks it: providers associated with the cluster, one ``base`` at most, a weight above 0
    when there are several; InvalidParameterException otherwise."""
    if not isinstance(raw, list) or len(raw) > 20:
        raise InvalidParameterException(f"{what} must be a list of at most 20 items.")
    out = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("capacityProvider"), str):
            raise InvalidParameterException(f"Each item of {what} needs a capacityProvider.")
        name = item["capacityProvider"]
        weight, base = item.get("weight", 0), item.get("base", 0)
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 1000:
            raise InvalidParameterException("The weight of a capacity provider must be between 0 and 1000.")
        if not isinstance(base, int) or isinstance(base, bool) or not 0 <= base <= 100000:
            raise InvalidParameterException("The base of a capacity provider must be between 0 and 100000.")
        if name not in associated:
            raise InvalidParameterException(
                f"The specified capacity provider strategy cannot contain a capacity provider ({name}) "
                "that is not associated with the cluster. Associate the capacity provider with the "
                "cluster or specify a valid capacity provider and try again."
            )
        out.append({"capacityProvider": name, "weight": weight, "base": base})
    names = [i["capacityProvider"] for i in out]
    if len(set(names)) != len(names):
        raise InvalidParameterException(f"{what} names a capacity provider twice.")
    if sum(1 for i in out if i["base"]) > 1:
        raise InvalidParameterException(
            "Only one capacity provider in a capacity provider strategy can have a base."
        )
    if len(out) > 1 and not any(i["weight"] for i in out):
        raise InvalidParameterException(
            "At least one capacity provider in a capacity provider strategy must have a weight greater "
            "than 0."
        )
    return out


def strategy_of(raw: Sequence[Mapping[str, Any]]) -> list[Item]:
    return [Item(i["capacityProvider"], int(i.get("weight", 0)), int(i.get("base", 0))) for i in raw]


def associate(reader: data.Reader, providers: list[Any]) -> list[str]:
    """The names of ``providers`` (names or ARNs), each existing or FARGATE/FARGATE_SPOT."""
    names = []
    for ident in providers:
        name = str(ident).rsplit("/", 1)[-1]
        if name not in FARGATE and data.capacity_provider(reader, name) is None:
            raise InvalidParameterException(f"The specified capacity provider {name} does not exist.")
        if name not in names:
            names.append(name)
    return names
