"""Feasibility: may this task go on this host? Each checker answers for one host with the
reason it is rejected (an ECS failure reason) or ``None``.

Checkers are small classes with ``check(host) -> reason | None``, built once per task by
:func:`checkers` (so a memberOf expression is parsed once, not once per host).
"""

from __future__ import annotations

from dataclasses import dataclass

from runner import query
from runner.scheduler.model import (
    AGENT,
    ATTRIBUTE,
    CPU,
    DISTINCT,
    MEMBER_OF,
    MEMORY,
    PORTS,
    PORTS_UDP,
    HostView,
    TaskNeeds,
    groups_on,
)

__all__ = [
    "AgentChecker",
    "AttributesChecker",
    "Checker",
    "CpuChecker",
    "DistinctInstanceChecker",
    "MemberOfChecker",
    "MemoryChecker",
    "PortsChecker",
    "checkers",
    "missing_attributes",
    "rejections",
]


class Checker:
    def check(self, host: HostView) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class AgentChecker(Checker):
    """A host whose agent is not connected gets no new tasks."""

    def check(self, host: HostView) -> str | None:
        return None if host.connected else AGENT


def missing_attributes(host: HostView, required: tuple[tuple[str, str | None], ...]) -> tuple[str, ...]:
    """The required attributes ``host`` lacks: the name is absent, or a value is required and
    the host's differs (named ``name=value`` then)."""
    out = []
    for name, value in required:
        if name not in host.attributes:
            out.append(name)
        elif value is not None and host.attributes[name] != value:
            out.append(f"{name}={value}")
    return tuple(out)


@dataclass(frozen=True)
class AttributesChecker(Checker):
    """The host has every attribute of the definition's ``requiresAttributes`` (ECS's
    ``ATTRIBUTE`` failure: a capability such as a log driver or Docker API version)."""

    required: tuple[tuple[str, str | None], ...]

    def check(self, host: HostView) -> str | None:
        return ATTRIBUTE if missing_attributes(host, self.required) else None


@dataclass(frozen=True)
class CpuChecker(Checker):
    cpu: int

    def check(self, host: HostView) -> str | None:
        return None if host.cpu >= self.cpu else CPU


@dataclass(frozen=True)
class MemoryChecker(Checker):
    memory: int

    def check(self, host: HostView) -> str | None:
        return None if host.memory >= self.memory else MEMORY


@dataclass(frozen=True)
class PortsChecker(Checker):
    """Every fixed host port the task needs must be free on the host (per protocol)."""

    ports: tuple[tuple[int, str], ...]

    def check(self, host: HostView) -> str | None:
        for port in self.ports:
            if port in host.ports:
                return PORTS_UDP if port[1] == "udp" else PORTS
        return None


@dataclass(frozen=True)
class DistinctInstanceChecker(Checker):
    """At most one task of the group per host."""

    group: str

    def check(self, host: HostView) -> str | None:
        return DISTINCT if self.group in groups_on(host) else None


@dataclass(frozen=True)
class MemberOfChecker(Checker):
    """The host satisfies a cluster query language expression."""

    expr: query.Expr

    def check(self, host: HostView) -> str | None:
        ok = query.evaluate(self.expr, host.query_facts(), groups_on(host))
        return None if ok else MEMBER_OF


def checkers(needs: TaskNeeds) -> list[Checker]:
    """The checks for one task, cheapest and most telling first: the agent (a down host is
    never a candidate), then the required attributes (a host that cannot run the task at all,
    whatever it has free), then constraints (they name the hosts the user allows, so their
    reason says more than a resource shortfall on a host that was never allowed), then the
    resources."""
    out: list[Checker] = [AgentChecker()]
    if needs.attributes:
        out.append(AttributesChecker(needs.attributes))
    for c in needs.constraints:
        if c.type == "memberOf":
            out.append(MemberOfChecker(query.parse(c.expression)))
        elif c.type == "distinctInstance":
            out.append(DistinctInstanceChecker(needs.group))
    out += [CpuChecker(needs.cpu), MemoryChecker(needs.memory)]
    if needs.ports:
        out.append(PortsChecker(needs.ports))
    return out


def rejections(host: HostView, checks: list[Checker]) -> tuple[str, ...]:
    """Every reason ``host`` fails ``checks`` (empty: feasible)."""
    return tuple(r for r in (c.check(host) for c in checks) if r is not None)
