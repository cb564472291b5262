"""ECS services behind ELBv2 target groups (``loadBalancers``), pure: checks, targets, health.

* :func:`check` validates a service's ``loadBalancers`` against its task definition and the
  target groups (``runner.seams.TargetGroups.group``), as ECS does: the group exists and is
  used by a load balancer, the container and its port are in the definition, the group's
  target type fits the network mode (``awsvpc``: ``ip``; ``bridge``/``host``: ``instance``).
* :func:`target_of` is where a RUNNING task is reached as a target of one entry.
* :func:`judge` folds the target groups' states into the health the reconciler
  (:mod:`runner.deployments`) reads: a task behind a load balancer is healthy once every one
  of its targets is ``healthy`` (ECS: "reported as healthy by the load balancer"); after
  ``healthCheckGracePeriodSeconds`` from its start, a target ``unhealthy`` makes it UNHEALTHY
  (replaced, stopped with :func:`stopped_reason`); during the grace period it is only not yet
  healthy.

The I/O shell is :mod:`runner.service_loop` (registration, draining before a stop) and
:meth:`runner.agent.worker.TaskWorker._drain` (the task stops after the drain).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runner.deployments import ELB_UNHEALTHY_PREFIX
from runner.errors import InvalidParameterException
from runner.seams import TargetGroup

__all__ = [
    "MAX_LOAD_BALANCERS",
    "Judged",
    "check",
    "deregistered_message",
    "draining_message",
    "entries_of",
    "judge",
    "registered_message",
    "stopped_reason",
    "target_of",
    "unhealthy_message",
]

MAX_LOAD_BALANCERS = 5
# States that do not hold a task back: no health check on the group, or no listener using it.
_NOT_JUDGED = ("unavailable", "unused")


def check(
    entries: Any, definition: Mapping[str, Any], group: Callable[[str], TargetGroup | None] | None
) -> list[dict[str, Any]]:
    """The service's ``loadBalancers``, normalised; InvalidParameterException as ECS words it."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise InvalidParameterException("loadBalancers must be a list.")
    if len(entries) > MAX_LOAD_BALANCERS:
        raise InvalidParameterException(
            f"loadBalancers can have at most {MAX_LOAD_BALANCERS} entries (target groups) per service."
        )
    mode = str(definition.get("networkMode") or "bridge")
    containers = {c.get("name"): c for c in definition.get("containerDefinitions") or []}
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str, int]] = set()
    for e in entries:
        if not isinstance(e, Mapping):
            raise InvalidParameterException("Each loadBalancers entry must be an object.")
        arn = e.get("targetGroupArn")
        if not arn:
            if e.get("loadBalancerName"):
                raise InvalidParameterException(
                    "Classic Load Balancers are not supported: give the targetGroupArn of an "
                    "Application Load Balancer's target group."
                )
            raise InvalidParameterException("targetGroupArn must be specified for each load balancer.")
        if e.get("loadBalancerName"):
            raise InvalidParameterException(
                "loadBalancerName must not be specified with a targetGroupArn (Application Load Balancers)."
            )
        name, port = e.get("containerName"), e.get("containerPort")
        if not name or port is None:
            raise InvalidParameterException(
                "containerName and containerPort must be specified for each load balancer."
            )
        container = containers.get(name)
        if container is None:
            raise InvalidParameterException(f"The container {name} does not exist in the task definition.")
        ports = {m.get("containerPort") for m in container.get("portMappings") or []}
        if port not in ports:
            raise InvalidParameterException(
                f"The container {name} did not have a container port {port} defined."
            )
        found = group(arn) if group is not None else None
        if found is None:
            raise InvalidParameterException(f"The target group with targetGroupArn {arn} does not exist.")
        if not found.load_balancers:
            raise InvalidParameterException(
                f"The target group with targetGroupArn {arn} does not have an associated load balancer."
            )
        wanted = "ip" if mode == "awsvpc" else "instance"
        if mode == "none":
            raise InvalidParameterException(
                "A task definition with the none network mode cannot be used with a load balancer."
            )
        if found.target_type != wanted:
            raise InvalidParameterException(
                f"The provided target group {arn} has target type {found.target_type}, which is "
                f"incompatible with the {mode} network mode specified in the task definition."
            )
        key = (arn, name, int(port))
        if key in seen:
            raise InvalidParameterException(f"The load balancer entry for {arn} {name}:{port} is repeated.")
        seen.add(key)
        out.append({"targetGroupArn": arn, "containerName": name, "containerPort": int(port)})
    return out


def entries_of(deployment: Mapping[str, Any] | None, spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The ``loadBalancers`` a deployment's tasks are registered with (the deployment's own,
    else the service's)."""
    if deployment is not None and "loadBalancers" in deployment:
        return list(deployment["loadBalancers"])
    return list(spec.get("loadBalancers") or [])


def target_of(
    endpoint: tuple[str, int] | None, target_type: str, instance: str
) -> tuple[str, int] | None:
    """A task's target for one entry, from where its container port is reached
    (``runner.data.Task.endpoint``): ``ip`` groups its address and port, ``instance`` groups its
    container instance's ``ec2InstanceId`` and the (host) port; None while it has none."""
    if endpoint is None:
        return None
    if target_type == "ip":
        return (endpoint[0], endpoint[1]) if endpoint[0] else None
    return (instance, endpoint[1]) if instance else None


@dataclass(frozen=True)
class Judged:
    """The health the reconciler reads (``TaskState.health``/``checked``) and, when the load
    balancer made it UNHEALTHY, the target group and the reason's description."""

    health: str
    checked: bool
    target_group: str = ""
    reason: str = ""
    port: int = 0  # the unhealthy target's port


def judge(
    health: str,
    has_check: bool,
    targets: Sequence[tuple[str, str, str]],
    started_at: float | None,
    grace: float,
    now: float,
) -> Judged:
    """``health``/``has_check``: the container health; ``targets``: (group ARN, state, reason
    description) of each of the task's targets (none: not registered yet)."""
    if not targets:
        return Judged(health, has_check)
    if health == "UNHEALTHY":
        return Judged(health, True)
    graced = started_at is not None and now - started_at < grace
    for arn, state, reason in targets:
        if state == "unhealthy" and not graced:
            return Judged("UNHEALTHY", True, arn, reason)
    ready = all(s == "healthy" or s in _NOT_JUDGED for _, s, _ in targets)
    if ready and (not has_check or health == "HEALTHY"):
        return Judged("HEALTHY", True)
    return Judged("UNKNOWN", True)


def stopped_reason(target_group: str) -> str:
    return f"{ELB_UNHEALTHY_PREFIX}(target-group {target_group})"


def unhealthy_message(service: str, task: str, port: int, target_group: str, reason: str) -> str:
    return (
        f"(service {service}) (task {task}) (port {port}) is unhealthy in (target-group {target_group}) "
        f"due to (reason {reason or 'Health checks failed'})."
    )


def registered_message(service: str, count: int, target_group: str) -> str:
    return f"(service {service}) registered {count} targets in (target-group {target_group})"


def deregistered_message(service: str, count: int, target_group: str) -> str:
    return f"(service {service}) deregistered {count} targets in (target-group {target_group})"


def draining_message(service: str, count: int) -> str:
    return f"(service {service}) has begun draining connections on {count} tasks."
