"""The scheduler's values: frozen host views in, a placement or "no host fits" out.

Everything here is plain data; :mod:`runner.scheduler.stack` holds the logic. ``HostView``
is a snapshot the caller builds from the store (container instances, their remaining
capacity and their unstopped tasks); ``TaskNeeds`` is what one task asks for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner import query
from runner.errors import InvalidParameterException
from runner.taskdef import TaskDefinition, requires_attributes

__all__ = [
    "DEFAULT_SERVICE_STRATEGY",
    "DEFAULT_TASK_STRATEGY",
    "FARGATE_STRATEGY",
    "Constraint",
    "HostView",
    "NoHostFits",
    "Placed",
    "Placement",
    "Rejection",
    "Strategy",
    "TaskNeeds",
    "TaskView",
    "needs_for",
    "parse_constraints",
    "parse_required_attributes",
    "parse_strategies",
]

# Why a host was rejected, named as ECS names them in RunTask ``failures[].reason``.
CPU = "RESOURCE:CPU"
MEMORY = "RESOURCE:MEMORY"
PORTS = "RESOURCE:PORTS"
PORTS_UDP = "RESOURCE:PORTS_UDP"
AGENT = "AGENT"
ATTRIBUTE = "ATTRIBUTE"  # a requiresAttributes entry the host lacks
MEMBER_OF = "MemberOf placement constraint unsatisfied."
DISTINCT = "DistinctInstance placement constraint unsatisfied."


@dataclass(frozen=True)
class TaskView:
    """An unstopped task on a host, as placement sees it."""

    id: str
    group: str = ""  # "service:NAME" for a service's tasks, "family:NAME" by default


@dataclass(frozen=True)
class HostView:
    """One container instance at scheduling time."""

    id: str
    cpu: int  # remaining CPU units
    memory: int  # remaining MiB
    ports: frozenset[tuple[int, str]] = frozenset()  # host ports in use, (port, "tcp"|"udp")
    attributes: Mapping[str, str | None] = field(default_factory=dict)  # incl. built-in ecs.*
    tasks: tuple[TaskView, ...] = ()
    connected: bool = True
    facts: Mapping[str, str] = field(default_factory=dict)  # extra built-ins (ec2InstanceId, ...)

    def query_facts(self) -> dict[str, str]:
        """The subjects of the cluster query language for this host (see runner.query)."""
        out = {f"attribute:{k}": "" if v is None else str(v) for k, v in self.attributes.items()}
        out.update({
            "instanceId": self.id, "ec2InstanceId": self.id, "runningTasksCount": str(len(self.tasks)),
            "agentConnected": "true" if self.connected else "false",
        })
        out.update(self.facts)
        return out


@dataclass(frozen=True)
class Constraint:
    type: str  # "distinctInstance" | "memberOf"
    expression: str = ""


@dataclass(frozen=True)
class Strategy:
    type: str  # "binpack" | "spread" | "random"
    field: str = ""  # binpack: cpu|memory; spread: instanceId|host|attribute:NAME


@dataclass(frozen=True)
class TaskNeeds:
    cpu: int
    memory: int
    ports: tuple[tuple[int, str], ...] = ()  # fixed host ports (TaskDefinition.host_ports)
    group: str = ""
    constraints: tuple[Constraint, ...] = ()
    strategy: tuple[Strategy, ...] = ()
    # The definition's requiresAttributes as (name, value or None): the host must have each
    # name, with that value when one is given.
    attributes: tuple[tuple[str, str | None], ...] = ()


DEFAULT_TASK_STRATEGY = (Strategy("random"),)
DEFAULT_SERVICE_STRATEGY = (
    Strategy("spread", "attribute:ecs.availability-zone"),
    Strategy("spread", "instanceId"),
)
# FARGATE: the user names no strategy; Dockyard spreads over hosts, then fills the fuller one.
FARGATE_STRATEGY = (Strategy("spread", "instanceId"), Strategy("binpack", "memory"))


@dataclass(frozen=True)
class Rejection:
    host_id: str
    reasons: tuple[str, ...]  # every check the host failed, in checking order
    missing: tuple[str, ...] = ()  # with ATTRIBUTE: the required attributes the host lacks


@dataclass(frozen=True)
class Placement:
    """A host was found; ``scores`` is the chosen host's ranking key per strategy."""

    host_id: str
    scores: tuple[float, ...] = ()
    rejections: tuple[Rejection, ...] = ()

    @property
    def fits(self) -> bool:
        return True


@dataclass(frozen=True)
class NoHostFits:
    """No host passed every check: an outcome, not an error."""

    rejections: tuple[Rejection, ...]

    @property
    def fits(self) -> bool:
        return False

    @property
    def closest(self) -> Rejection | None:
        """The host that failed the fewest checks (first such in host order)."""
        return min(self.rejections, key=lambda r: len(r.reasons), default=None)

    @property
    def reason(self) -> str:
        """One ECS failure reason (RunTask ``failures[].reason``) for the closest host."""
        closest = self.closest
        return closest.reasons[0] if closest else "No Container Instances were found in your cluster."

    def explain(self, who: str = "") -> str:
        """An event message as ECS writes it, e.g. ``service web was unable to place a task
        because no container instance met all of its requirements. The closest matching
        container-instance abc has insufficient memory available.``"""
        prefix = f"{who} was unable to place a task" if who else "Unable to place a task"
        closest = self.closest
        if closest is None:
            return f"{prefix} because no container instance met all of its requirements. " \
                   "No Container Instances were found in your cluster."
        why = REASON_TEXT.get(closest.reasons[0], f'encountered error "{closest.reasons[0]}"')
        if closest.reasons[0] == ATTRIBUTE and closest.missing:
            why += f" ({', '.join(closest.missing)})"
        return (f"{prefix} because no container instance met all of its requirements. The closest "
                f"matching container-instance {closest.host_id} {why}.")


REASON_TEXT = {
    CPU: "has insufficient CPU units available",
    MEMORY: "has insufficient memory available",
    PORTS: "is already using a port required by your task",
    PORTS_UDP: "is already using a port required by your task",
    AGENT: "is not connected (its agent is down)",
    ATTRIBUTE: "is missing an attribute required by your task",
}


@dataclass(frozen=True)
class Placed:
    """The outcome of placing ``count`` tasks: one Placement or NoHostFits per task, in order."""

    results: tuple[Placement | NoHostFits, ...]

    @property
    def hosts(self) -> list[str]:
        return [r.host_id for r in self.results if isinstance(r, Placement)]

    @property
    def failures(self) -> list[NoHostFits]:
        return [r for r in self.results if isinstance(r, NoHostFits)]


def _objects(value: Any, name: str, limit: int) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value) or len(value) > limit:
        raise InvalidParameterException(f"{name} must be a list of at most {limit} objects.")
    return value


def parse_constraints(value: Any) -> tuple[Constraint, ...]:
    """RunTask/CreateService ``placementConstraints`` to values; InvalidParameterException if bad."""
    out = []
    for c in _objects(value, "placementConstraints", 10):
        kind = c.get("type")
        if kind == "distinctInstance":
            if c.get("expression"):
                raise InvalidParameterException("A distinctInstance constraint takes no expression.")
            out.append(Constraint("distinctInstance"))
        elif kind == "memberOf":
            expr = c.get("expression")
            if not isinstance(expr, str) or not expr.strip():
                raise InvalidParameterException("A memberOf constraint needs an expression.")
            query.parse(expr)
            out.append(Constraint("memberOf", expr))
        else:
            raise InvalidParameterException(
                f"placementConstraints type must be distinctInstance or memberOf, not {kind!r}."
            )
    return tuple(out)


def parse_strategies(value: Any) -> tuple[Strategy, ...]:
    """RunTask/CreateService ``placementStrategy`` to values; InvalidParameterException if bad."""
    out = []
    for s in _objects(value, "placementStrategy", 5):
        kind, fld = s.get("type"), s.get("field")
        if kind == "random":
            out.append(Strategy("random", ""))
        elif kind == "binpack":
            if not isinstance(fld, str) or fld.lower() not in ("cpu", "memory"):
                raise InvalidParameterException("A binpack strategy's field must be cpu or memory.")
            out.append(Strategy("binpack", fld.lower()))
        elif kind == "spread":
            if not isinstance(fld, str) or not (
                fld in ("instanceId", "host") or (fld.startswith("attribute:") and len(fld) > 10)
            ):
                raise InvalidParameterException(
                    "A spread strategy's field must be instanceId, host or attribute:NAME."
                )
            out.append(Strategy("spread", fld))
        else:
            raise InvalidParameterException(
                f"placementStrategy type must be binpack, spread or random, not {kind!r}."
            )
    return tuple(out)


def parse_required_attributes(value: Any) -> tuple[tuple[str, str | None], ...]:
    """A task definition's ``requiresAttributes`` (``[{name, value?, targetType?}]``, as
    DescribeTaskDefinition answers it) to (name, value or None) pairs; malformed entries are
    ignored (the list is computed by Dockyard, not taken from the user)."""
    out: dict[str, str | None] = {}
    for a in value if isinstance(value, list) else []:
        if not isinstance(a, dict) or not isinstance(a.get("name"), str) or not a["name"]:
            continue
        if a.get("targetType") not in (None, "container-instance"):
            continue
        v = a.get("value")
        out[a["name"]] = v if isinstance(v, str) else None
    return tuple(out.items())


def needs_for(
    td: TaskDefinition,
    group: str = "",
    constraints: Sequence[Constraint] = (),
    strategy: Sequence[Strategy] = (),
    launch_type: str | None = None,
) -> TaskNeeds:
    """What one task of ``td`` asks of a host.

    ``group`` defaults to ``family:<family>`` (ECS's default task group); the required
    attributes are the definition's ``requiresAttributes``; the definition's own
    memberOf constraints come first, then ``constraints`` (from RunTask/CreateService). With
    launch type FARGATE the strategy is :data:`FARGATE_STRATEGY` whatever was asked.
    """
    own = tuple(Constraint("memberOf", c.expression or "") for c in td.placement_constraints)
    return TaskNeeds(
        cpu=td.cpu_needed,
        memory=td.memory_needed,
        ports=td.host_ports,
        group=group or f"family:{td.family}",
        constraints=(*own, *constraints),
        strategy=FARGATE_STRATEGY if launch_type == "FARGATE" else tuple(strategy),
        attributes=parse_required_attributes(requires_attributes(td)),
    )


def groups_on(host: HostView) -> Sequence[str]:
    return [t.group for t in host.tasks]
