"""Targets, pure: the checks PutTargets makes, the RunTask request an ECS target makes of an
event's input, and when a failed invocation is tried again (``RetryPolicy``).

An ECS target's ``Arn`` is a cluster's ARN and its ``EcsParameters`` say what to run there
(``TaskDefinitionArn``, ``TaskCount``, ``LaunchType``, ``NetworkConfiguration``, ``Group``,
``PlacementConstraints``, ``PlacementStrategy``, ``CapacityProviderStrategy``, ``Tags``,
``PropagateTags``, ``ReferenceId``, ``EnableECSManagedTags``, ``EnableExecuteCommand``,
``PlatformVersion``). The input (:mod:`runner.eventbridge.transform`) is RunTask's
``overrides`` when it is a JSON object of ECS's task override members (``containerOverrides``,
``cpu``, ``memory``, ``taskRoleArn``, ...); any other input (the whole event, by default) runs
the task as its definition says. The task's ``startedBy`` is ``events-rule/<rule name>``
(``scheduler/<schedule name>`` for EventBridge Scheduler's).

Retries: EventBridge tries a failed invocation again with exponential backoff (here
``base`` seconds doubled each time, at most :data:`MAX_DELAY`) until ``MaximumRetryAttempts``
(0-185, default 185) retries were made or the event is older than ``MaximumEventAgeInSeconds``
(60-86400, default 86400); then the event goes to the dead letters with the condition that ran
out. Errors that another try cannot mend (the cluster or task definition is gone, the request
is refused) go there at once, as EventBridge sends them to its DLQ without retrying.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_DELAY",
    "MAX_TARGETS",
    "Retry",
    "TargetError",
    "check_target",
    "cluster_of",
    "next_try",
    "run_task_request",
]

MAX_TARGETS = 5  # per rule, as EventBridge's quota
MAX_DELAY = 480.0
DEFAULT_ATTEMPTS = 185
DEFAULT_AGE = 86400
_CLUSTER_ARN = re.compile(r"^arn:aws:ecs:([a-z0-9-]+):(\d{12}):cluster/([A-Za-z0-9_-]{1,255})$")
_ID = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
OVERRIDES = (
    "containerOverrides",
    "cpu",
    "memory",
    "taskRoleArn",
    "executionRoleArn",
    "ephemeralStorage",
    "inferenceAcceleratorOverrides",
)
PERMANENT = (
    "ClusterNotFoundException",
    "AccessDeniedException",
    "ClientException",
    "InvalidParameterException",
    "ValidationException",
)


class TargetError(ValueError):
    """A target PutTargets refuses (a ``ValidationException``)."""


def cluster_of(arn: str) -> str | None:
    """The cluster name of an ECS cluster ARN, None for any other ARN."""
    m = _CLUSTER_ARN.match(arn or "")
    return m.group(3) if m else None


def check_target(target: Mapping[str, Any]) -> None:
    """Check one target's identity, ARN, ECS parameters and retry policy (its input is
    :func:`runner.eventbridge.transform.check_target_input`'s)."""
    ident = target.get("Id")
    if not isinstance(ident, str) or not _ID.match(ident):
        raise TargetError(f"Target Id {ident!r} must be 1 to 64 letters, digits, '.', '-' or '_'.")
    arn = str(target.get("Arn") or "")
    if cluster_of(arn) is None:
        raise TargetError(
            f"Target {ident}: Dockyard runs ECS targets only; Arn must be an ECS cluster ARN "
            f"(arn:aws:ecs:REGION:ACCOUNT:cluster/NAME), not {arn!r}."
        )
    if not target.get("RoleArn"):
        raise TargetError(f"RoleArn is required for target {arn}.")
    ecs = target.get("EcsParameters")
    if not isinstance(ecs, dict) or not ecs.get("TaskDefinitionArn"):
        raise TargetError(f"EcsParameters with a TaskDefinitionArn are required for target {arn}.")
    count = ecs.get("TaskCount", 1)
    if not isinstance(count, int) or not 1 <= count <= 10:
        raise TargetError(f"TaskCount of target {ident} must be 1 to 10.")
    retry = target.get("RetryPolicy") or {}
    attempts = retry.get("MaximumRetryAttempts", DEFAULT_ATTEMPTS)
    age = retry.get("MaximumEventAgeInSeconds", DEFAULT_AGE)
    if not isinstance(attempts, int) or not 0 <= attempts <= 185:
        raise TargetError("MaximumRetryAttempts must be between 0 and 185.")
    if not isinstance(age, int) or not 60 <= age <= 86400:
        raise TargetError("MaximumEventAgeInSeconds must be between 60 and 86400.")


def _lower_vpc(network: Mapping[str, Any]) -> dict[str, Any]:
    vpc = network.get("awsvpcConfiguration") or {}
    keys = {"Subnets": "subnets", "SecurityGroups": "securityGroups", "AssignPublicIp": "assignPublicIp"}
    return {"awsvpcConfiguration": {keys[k]: v for k, v in vpc.items() if k in keys}}


def run_task_request(target: Mapping[str, Any], started_by: str, payload: Any) -> dict[str, Any]:
    """The RunTask parameters of an ECS target invoked with ``payload`` (its decoded input)."""
    ecs = target["EcsParameters"]
    params: dict[str, Any] = {
        "cluster": cluster_of(str(target["Arn"])),
        "taskDefinition": ecs["TaskDefinitionArn"],
        "count": ecs.get("TaskCount", 1),
        "startedBy": started_by[:128],
    }
    plain = {
        "LaunchType": "launchType",
        "Group": "group",
        "PlatformVersion": "platformVersion",
        "PropagateTags": "propagateTags",
        "ReferenceId": "referenceId",
        "EnableECSManagedTags": "enableECSManagedTags",
        "EnableExecuteCommand": "enableExecuteCommand",
        "PlacementConstraints": "placementConstraints",
        "PlacementStrategy": "placementStrategy",
        "CapacityProviderStrategy": "capacityProviderStrategy",
    }
    params.update({ecs_key: ecs[k] for k, ecs_key in plain.items() if ecs.get(k) is not None})
    if ecs.get("NetworkConfiguration"):
        params["networkConfiguration"] = _lower_vpc(ecs["NetworkConfiguration"])
    if ecs.get("Tags"):
        params["tags"] = [{"key": t["Key"], "value": t.get("Value", "")} for t in ecs["Tags"]]
    if isinstance(payload, dict) and payload and set(payload) <= set(OVERRIDES):
        params["overrides"] = dict(payload)
    return params


@dataclass(frozen=True)
class Retry:
    """What becomes of a failed invocation: tried again after ``delay`` seconds, or (delay
    None) dead-lettered because ``exhausted`` ran out (``""``: an error not retried)."""

    delay: float | None
    exhausted: str = ""


def next_try(
    policy: Mapping[str, Any] | None, retries: int, event_age: float, base: float, code: str
) -> Retry:
    """After the failure ``code`` of a try preceded by ``retries`` retries, with the event
    ``event_age`` seconds old: when to try again, or why not."""
    if code in PERMANENT:
        return Retry(None, "")
    policy = policy or {}
    if retries >= int(policy.get("MaximumRetryAttempts", DEFAULT_ATTEMPTS)):
        return Retry(None, "MaximumRetryAttempts")
    delay = min(MAX_DELAY, base * 2**retries)
    if event_age + delay > int(policy.get("MaximumEventAgeInSeconds", DEFAULT_AGE)):
        return Retry(None, "MaximumEventAgeInSeconds")
    return Retry(delay)
