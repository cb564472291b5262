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

* :func:`check` also validates ``advancedConfiguration`` (traffic-shifting deployments behind
  a listener rule) against ``forwards`` (``runner.seams.ListenerRules.forwards``);
  :func:`green_entries` is where a shifting deployment's tasks are registered (the group of
  the pair its source does not use) and :func:`rule_weights` the weights each rule gets for a
  :class:`runner.shift.Traffic`.

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
    "advanced",
    "check",
    "deregistered_message",
    "draining_message",
    "entries_of",
    "green_entries",
    "judge",
    "registered_message",
    "rule_weights",
    "stopped_reason",
    "target_of",
    "unhealthy_message",
]

MAX_LOAD_BALANCERS = 5
# States that do not hold a task back: no health check on the group, or no listener using it.
_NOT_JUDGED = ("unavailable", "unused")


def check(
    entries: Any, definition: Mapping[str, Any], group: Callable[[str], TargetGroup | None] | None,
    forwards: Callable[[str], tuple[str, ...] | None] | None = None,
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
        item: dict[str, Any] = {"targetGroupArn": arn, "containerName": name, "containerPort": int(port)}
        if e.get("advancedConfiguration") is not None:
            item["advancedConfiguration"] = _check_advanced(
                e["advancedConfiguration"], arn, found.target_type, group, forwards
            )
        out.append(item)
    return out


def _check_advanced(
    adv: Any, arn: str, target_type: str, group: Callable[[str], TargetGroup | None] | None,
    forwards: Callable[[str], tuple[str, ...] | None] | None,
) -> dict[str, str]:
    if not isinstance(adv, Mapping):
        raise InvalidParameterException("advancedConfiguration must be an object.")
    for key in ("alternateTargetGroupArn", "productionListenerRule", "roleArn"):
        if not isinstance(adv.get(key), str) or not adv.get(key):
            raise InvalidParameterException(f"advancedConfiguration.{key} must be specified.")
    alt = adv["alternateTargetGroupArn"]
    if alt == arn:
        raise InvalidParameterException(
            "advancedConfiguration.alternateTargetGroupArn must be different from the targetGroupArn."
        )
    found = group(alt) if group is not None else None
    if found is None:
        raise InvalidParameterException(f"The target group with targetGroupArn {alt} does not exist.")
    if found.target_type != target_type:
        raise InvalidParameterException(
            f"The alternate target group {alt} has target type {found.target_type}, which differs from "
            f"the target type {target_type} of the target group {arn}."
        )
    out = {k: adv[k] for k in ("alternateTargetGroupArn", "productionListenerRule", "roleArn")}
    for key in ("productionListenerRule", "testListenerRule"):
        rule = adv.get(key)
        if rule is None:
            continue
        if not isinstance(rule, str) or not rule:
            raise InvalidParameterException(f"advancedConfiguration.{key} must be a listener rule ARN.")
        groups = forwards(rule) if forwards is not None else None
        if groups is None:
            raise InvalidParameterException(f"The listener rule {rule} does not exist.")
        if not {arn, alt} <= set(groups):
            raise InvalidParameterException(
                f"The listener rule {rule} must forward to both the target group {arn} and the "
                f"alternate target group {alt}."
            )
        out[key] = rule
    return out


def advanced(entries: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries of ``loadBalancers`` that shift traffic between two target groups."""
    return [e for e in entries if e.get("advancedConfiguration")]


def _pair(entry: Mapping[str, Any]) -> tuple[str, str]:
    return entry["targetGroupArn"], entry["advancedConfiguration"]["alternateTargetGroupArn"]


def green_entries(
    source: Sequence[Mapping[str, Any]], entries: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``loadBalancers`` of a shifting deployment whose source deployment's tasks are in
    ``source``: each entry with an ``advancedConfiguration`` names the group of its pair the
    source does not use (the alternate at first, then the two take turns, as in ECS), and as
    its ``alternateTargetGroupArn`` the source's."""
    out = []
    for e in entries:
        e = dict(e)
        if e.get("advancedConfiguration"):
            tg, alt = _pair(e)
            key = (e["containerName"], e["containerPort"])
            used = {s["targetGroupArn"] for s in source
                    if (s.get("containerName"), s.get("containerPort")) == key}
            green, blue = (tg, alt) if alt in used else (alt, tg)
            e["targetGroupArn"] = green
            e["advancedConfiguration"] = {**e["advancedConfiguration"], "alternateTargetGroupArn": blue}
        out.append(e)
    return out


def rule_weights(
    green: Sequence[Mapping[str, Any]], green_share: float, test: bool
) -> list[tuple[str, dict[str, int]]]:
    """``(rule ARN, {group ARN: weight})`` for each listener rule of ``green``'s shifting entries
    (:func:`green_entries`: its group, then the source's)
    when green gets ``green_share`` percent of production traffic (weights 0-100 of ELBv2's
    0-999) and, when ``test``, all the test rule's traffic; the source's group gets the rest."""
    out: list[tuple[str, dict[str, int]]] = []
    for e in advanced(green):
        new, old = _pair(e)
        share = max(0, min(100, round(green_share)))
        out.append((e["advancedConfiguration"]["productionListenerRule"], {old: 100 - share, new: share}))
        rule = e["advancedConfiguration"].get("testListenerRule")
        if rule:
            out.append((rule, {old: 0 if test else 100, new: 100 if test else 0}))
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
