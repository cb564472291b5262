"""From the cluster as the store holds it to placements (pure): the scheduler's view of a
container instance, what one task needs, and where ``count`` tasks go.

:func:`runner.tasks.launch` reads the candidates and their usage, calls :func:`choose` inside
the write transaction that records the tasks, and renders the :class:`LaunchFailure` s as
ECS's ``failures[]`` (the service loop words them as service events).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from runner.numbers import loose_int
from runner.scheduler.model import (
    HostView,
    NoHostFits,
    TaskNeeds,
    TaskView,
    needs_for,
    parse_constraints,
    parse_strategies,
)
from runner.scheduler.stack import place
from runner.taskdef import TaskDefinition

__all__ = ["InstanceView", "LaunchFailure", "choose", "host_view", "task_needs"]


class InstanceView(Protocol):
    """What placement reads of a container instance (``runner.instances.Instance`` fits)."""

    @property
    def id(self) -> str: ...
    @property
    def docker_host(self) -> str: ...
    @property
    def cpu(self) -> int: ...
    @property
    def memory(self) -> int: ...
    @property
    def attributes(self) -> Mapping[str, str | None]: ...
    @property
    def connected(self) -> bool: ...


@dataclass(frozen=True)
class LaunchFailure:
    """A task that was not placed: ``reason`` as RunTask's ``failures[].reason`` (``MISSING``
    for a StartTask instance that does not exist, ``RESOURCE:CPU``, ``ATTRIBUTE`` ...),
    ``detail`` the explanation, ``instance_id`` the closest (or missing) instance, ``missing``
    the required attributes that instance lacks (with ``ATTRIBUTE``; Dockyard's addition)."""

    reason: str
    detail: str = ""
    instance_id: str = ""
    missing: str = ""


_NO_USAGE: Mapping[str, Any] = {"cpu": 0, "memory": 0, "ports": (), "tasks": ()}


def host_view(
    inst: InstanceView, usage: Mapping[str, Mapping[str, Any]], reserved_ports: Iterable[str] = ()
) -> HostView:
    """What the scheduler sees of one instance: its capacity minus what its host's unstopped
    tasks reserve (``usage`` per Docker host: ``cpu``, ``memory``, ``ports`` as ``"80/tcp"``,
    ``tasks`` as (id, group)), the ports in use or reserved, its tasks and attributes."""
    u = usage.get(inst.docker_host, _NO_USAGE)
    ports = {(int(p.split("/")[0]), p.split("/")[1]) for p in u["ports"]}
    ports |= {(int(p), "tcp") for p in reserved_ports}
    return HostView(
        id=inst.id,
        cpu=inst.cpu - u["cpu"],
        memory=inst.memory - u["memory"],
        ports=frozenset(ports),
        attributes=dict(inst.attributes),
        tasks=tuple(TaskView(t, g) for t, g in u["tasks"]),
        connected=inst.connected,
    )


def task_needs(
    td: TaskDefinition,
    overrides: Mapping[str, Any] | None = None,
    group: str = "",
    launch_type: str = "EC2",
    placement: Mapping[str, Any] | None = None,
) -> TaskNeeds:
    """The scheduler's view of one task: :func:`runner.scheduler.needs_for` with the request's
    placement (its memberOf constraints after the definition's own) and the task-level
    ``cpu``/``memory`` overrides winning over the definition's sizes."""
    placement = placement or {}
    overrides = overrides or {}
    needs = needs_for(
        td,
        group,
        constraints=parse_constraints(placement.get("placementConstraints")),
        strategy=parse_strategies(placement.get("placementStrategy")),
        launch_type=launch_type,
    )
    cpu = loose_int(overrides.get("cpu")) or needs.cpu
    return replace(needs, cpu=cpu, memory=loose_int(overrides.get("memory")) or needs.memory)


def _failure(result: NoHostFits) -> LaunchFailure:
    closest = result.closest
    return LaunchFailure(
        result.reason,
        result.explain(),
        closest.host_id if closest else "",
        ", ".join(closest.missing) if closest else "",
    )


def choose(
    candidates: Sequence[InstanceView],
    usage: Mapping[str, Mapping[str, Any]],
    needs: TaskNeeds,
    count: int = 1,
    *,
    on_instances: Sequence[str] | None = None,
    reserved_ports: Iterable[str] = (),
) -> tuple[list[str], list[LaunchFailure]]:
    """The instance ids ``count`` tasks go to, and a failure per task placed nowhere.

    ``on_instances`` (StartTask) names the instances to use, one task each, unchecked: an id
    not among ``candidates`` is a ``MISSING`` failure. Otherwise :func:`runner.scheduler.place`
    decides among the candidates."""
    if on_instances is not None:
        known = {i.id for i in candidates}
        chosen = [iid for iid in on_instances if iid in known]
        return chosen, [LaunchFailure("MISSING", instance_id=iid) for iid in on_instances if iid not in known]
    reserved = list(reserved_ports)
    placed = place([host_view(i, usage, reserved) for i in candidates], needs, count)
    failures = [_failure(r) for r in placed.results if isinstance(r, NoHostFits)]
    return placed.hosts, failures
