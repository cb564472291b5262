"""Events in EventBridge's envelope, pure: the envelope itself, and the events ECS sends of its
tasks, services, deployments and container instances, with ECS's detail-types and the detail
shapes AWS documents (times as ISO 8601 strings, ARNs in full):

* ``ECS Task State Change``: the task as DescribeTasks shows it, plus ``updatedAt``; sent when
  its ``lastStatus`` or ``desiredStatus`` changes (resources: the task's ARN);
* ``ECS Container Instance State Change``: the container instance as
  DescribeContainerInstances shows it; sent when its status or agent connection changes;
* ``ECS Service Action``: ``SERVICE_STEADY_STATE`` (INFO) when the service reaches a steady
  state, ``SERVICE_TASK_PLACEMENT_FAILURE`` (ERROR, with the ``reason``) when it cannot place a
  task (resources: the service's ARN);
* ``ECS Deployment State Change``: ``SERVICE_DEPLOYMENT_IN_PROGRESS``, ``..._COMPLETED`` (INFO)
  and ``..._FAILED`` (ERROR) as a deployment's ``rolloutState`` moves.

A service's events are judged from what changed between two views of it
(:class:`ServiceView`, :func:`service_events`), so the watcher that feeds the bus
(:mod:`runner.eventbridge.bus`) keeps only a small view per service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ServiceView", "envelope", "instance_event", "iso", "service_events", "service_view", "task_event"]

TASK = "ECS Task State Change"
INSTANCE = "ECS Container Instance State Change"
SERVICE = "ECS Service Action"
DEPLOYMENT = "ECS Deployment State Change"
_TASK_TIMES = (
    "createdAt",
    "startedAt",
    "stoppedAt",
    "stoppingAt",
    "pullStartedAt",
    "pullStoppedAt",
    "connectivityAt",
    "executionStoppedAt",
)
_PLACEMENT = "was unable to place a task"
_STEADY = "has reached a steady state"


def iso(ts: float, millis: bool = True) -> str:
    """An epoch time as EventBridge writes it: ``2026-12-02T17:00:00.250Z`` (``millis``) or
    ``2026-12-02T17:00:00Z`` (the envelope's ``time``)."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{moment.microsecond // 1000:03d}Z" if millis else text + "Z"


def envelope(
    ident: str,
    detail_type: str,
    source: str,
    detail: Mapping[str, Any],
    resources: Iterable[str],
    account: str,
    region: str,
    when: float,
) -> dict[str, Any]:
    """One event as rules match it and targets receive it."""
    return {
        "version": "0",
        "id": ident,
        "detail-type": detail_type,
        "source": source,
        "account": account,
        "time": iso(when, millis=False),
        "region": region,
        "resources": list(resources),
        "detail": dict(detail),
    }


def _times(shape: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    out = dict(shape)
    for k in keys:
        if isinstance(out.get(k), (int, float)) and not isinstance(out.get(k), bool):
            out[k] = iso(float(out[k]))
    return out


def task_event(shape: Mapping[str, Any], when: float) -> tuple[str, dict[str, Any], list[str]]:
    """(detail-type, detail, resources) of a task's state change (``shape``: DescribeTasks')."""
    detail = _times(shape, _TASK_TIMES)
    detail.pop("tags", None)
    detail["updatedAt"] = iso(when)
    return TASK, detail, [str(shape["taskArn"])]


def instance_event(
    shape: Mapping[str, Any], cluster_arn: str, when: float
) -> tuple[str, dict[str, Any], list[str]]:
    """(detail-type, detail, resources) of a container instance's state change."""
    detail = _times(shape, ("registeredAt",))
    detail.pop("tags", None)
    detail.update(clusterArn=cluster_arn, updatedAt=iso(when))
    return INSTANCE, detail, [str(shape["containerInstanceArn"])]


@dataclass(frozen=True)
class ServiceView:
    """What the watcher keeps of a service: the ids of its service events and the rollout
    state of each deployment."""

    arn: str
    cluster_arn: str
    event_ids: frozenset[str]
    rollouts: tuple[tuple[str, str, str], ...]  # (deployment id, rolloutState, rolloutStateReason)


def service_view(shape: Mapping[str, Any]) -> ServiceView:
    """The view of a service as DescribeServices shows it."""
    return ServiceView(
        str(shape.get("serviceArn", "")),
        str(shape.get("clusterArn", "")),
        frozenset(str(e.get("id")) for e in shape.get("events") or []),
        tuple(
            (str(d.get("id")), str(d.get("rolloutState") or ""), str(d.get("rolloutStateReason") or ""))
            for d in shape.get("deployments") or []
        ),
    )


def service_events(
    before: ServiceView | None, shape: Mapping[str, Any], when: float
) -> list[tuple[str, dict[str, Any], list[str]]]:
    """The Service Action and Deployment State Change events of a service that was ``before``
    (None: it is new) and now is ``shape``, oldest first."""
    now = service_view(shape)
    out: list[tuple[str, dict[str, Any], list[str]]] = []
    seen = before.event_ids if before is not None else frozenset()
    for e in reversed(list(shape.get("events") or [])):  # DescribeServices lists the newest first
        if str(e.get("id")) in seen:
            continue
        message = str(e.get("message", ""))
        at = e.get("createdAt")
        created = iso(float(at)) if isinstance(at, (int, float)) else iso(when)
        if _STEADY in message:
            detail = {
                "eventType": "INFO",
                "eventName": "SERVICE_STEADY_STATE",
                "clusterArn": now.cluster_arn,
                "createdAt": created,
            }
        elif _PLACEMENT in message:
            detail = {
                "eventType": "ERROR",
                "eventName": "SERVICE_TASK_PLACEMENT_FAILURE",
                "clusterArn": now.cluster_arn,
                "createdAt": created,
                "reason": message.split(_PLACEMENT, 1)[1].strip(" .") or "RESOURCE:UNKNOWN",
            }
        else:
            continue
        out.append((SERVICE, detail, [now.arn]))
    old = {d: (state, reason) for d, state, reason in (before.rollouts if before is not None else ())}
    for ident, state, reason in now.rollouts:
        if old.get(ident, ("", ""))[0] == state or state not in ("IN_PROGRESS", "COMPLETED", "FAILED"):
            continue
        default = f"ECS deployment {ident} {'in progress' if state == 'IN_PROGRESS' else state.lower()}."
        detail = {
            "eventType": "ERROR" if state == "FAILED" else "INFO",
            "eventName": f"SERVICE_DEPLOYMENT_{state}",
            "deploymentId": ident,
            "updatedAt": iso(when),
            "reason": reason or default,
        }
        out.append((DEPLOYMENT, detail, [now.arn]))
    return out
