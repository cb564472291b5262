"""Application Auto Scaling's API for ECS services (AWS JSON 1.1, ``X-Amz-Target:
AnyScaleFrontendService.<Op>``): scalable targets, scaling policies, scheduled actions,
scaling activities and tags.

Only ``ServiceNamespace`` ``ecs`` with ``ScalableDimension`` ``ecs:service:DesiredCount`` and
``ResourceId`` ``service/<cluster>/<service>`` (an existing service) is served; any other
namespace is a ``ValidationException`` that says so. Policies are ``TargetTrackingScaling``
(predefined ``ECSServiceAverageCPUUtilization``, ``ECSServiceAverageMemoryUtilization``,
``ALBRequestCountPerTarget`` with its ``ResourceLabel``, or a ``CustomizedMetricSpecification``)
or ``StepScaling``; ``PredictiveScaling`` is refused. Schedules are ``at()``, ``rate()`` and
``cron()`` (:mod:`runner.autoscaling.schedule`) with an IANA ``Timezone``. Decisions are
:mod:`runner.autoscaling.decide`'s; the rows are :mod:`runner.data`'s.
"""

from __future__ import annotations

import itertools
import math
import re
import time
import uuid
from typing import Any

from dockyard.aws.errors import ResourceNotFoundException, ValidationException, register
from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import data
from runner.autoscaling import schedule

__all__ = ["MIGRATIONS", "OPERATIONS", "TARGET"]

TARGET = "AnyScaleFrontendService"
ObjectNotFoundException = register("ObjectNotFoundException")

MIGRATIONS = [
    Migration(
        "runner_autoscaling",
        1,
        """
        CREATE TABLE scalable_targets (
            resource_id TEXT PRIMARY KEY, min_capacity INTEGER NOT NULL, max_capacity INTEGER NOT NULL,
            suspended TEXT NOT NULL, role_arn TEXT NOT NULL, tags TEXT NOT NULL DEFAULT '[]',
            created_at REAL NOT NULL);
        CREATE TABLE scaling_policies (
            resource_id TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL, type TEXT NOT NULL,
            config TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (resource_id, name));
        CREATE TABLE scheduled_actions (
            resource_id TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL, expression TEXT NOT NULL,
            timezone TEXT NOT NULL, start_time REAL, end_time REAL, action TEXT NOT NULL,
            created_at REAL NOT NULL, last_run REAL, PRIMARY KEY (resource_id, name));
        CREATE TABLE scaling_activities (
            id TEXT PRIMARY KEY, resource_id TEXT NOT NULL, description TEXT NOT NULL, cause TEXT NOT NULL,
            start_time REAL NOT NULL, end_time REAL, status TEXT NOT NULL, message TEXT NOT NULL DEFAULT '',
            not_scaled TEXT NOT NULL DEFAULT '[]');
        CREATE INDEX scaling_activities_by_resource ON scaling_activities (resource_id, start_time);
        """,
    ),
]

DIMENSION = "ecs:service:DesiredCount"
PREDEFINED = ("ECSServiceAverageCPUUtilization", "ECSServiceAverageMemoryUtilization",
              "ALBRequestCountPerTarget")
RESOURCE_LABEL = re.compile(r"app/[^/]+/[^/]+/targetgroup/[^/]+/[^/]+")  # ALBRequestCountPerTarget's
ADJUSTMENTS = ("ChangeInCapacity", "ExactCapacity", "PercentChangeInCapacity")


def _region_account(config: Config) -> str:
    return f"{config.region}:{config.account_id}"


def target_arn(config: Config, resource: str) -> str:
    return f"arn:aws:application-autoscaling:{_region_account(config)}:scalable-target/" + \
        uuid.uuid5(uuid.NAMESPACE_URL, resource).hex[:24]


def _resource(store: Store, params: dict[str, Any], *, exists: bool = True) -> str:
    """The checked ``ResourceId`` of an ECS service's desired count."""
    if params.get("ServiceNamespace") != "ecs":
        raise ValidationException(
            "Dockyard scales ECS services only: ServiceNamespace must be ecs, not "
            f"{params.get('ServiceNamespace')!r}."
        )
    if params.get("ScalableDimension") not in (None, DIMENSION):
        raise ValidationException(f"The scalable dimension of an ECS service is {DIMENSION}.")
    rid = params.get("ResourceId")
    parts = rid.split("/") if isinstance(rid, str) else []
    if len(parts) != 3 or parts[0] != "service" or not all(parts[1:]):
        raise ValidationException(f"ResourceId must be service/<cluster>/<service>, not {rid!r}.")
    if exists:
        svc = data.service(store, parts[1], parts[2])
        if svc is None or svc.status != "ACTIVE":
            raise ValidationException(f"ECS service doesn't exist: {rid}")
    return str(rid)


def _identity(resource: str) -> dict[str, str]:
    return {"ServiceNamespace": "ecs", "ResourceId": resource, "ScalableDimension": DIMENSION}


# -- scalable targets ---------------------------------------------------------------------------
def _suspended(raw: Any, current: dict[str, bool] | None = None) -> dict[str, bool]:
    out = dict(current or {"DynamicScalingInSuspended": False, "DynamicScalingOutSuspended": False,
                           "ScheduledScalingSuspended": False})
    for k in out:
        if isinstance(raw, dict) and k in raw:
            out[k] = bool(raw[k])
    return out


async def register_target(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params)
    found = data.scalable_target(store, resource)
    low, high = params.get("MinCapacity"), params.get("MaxCapacity")
    if found is None and (low is None or high is None):
        raise ValidationException(
            "MinCapacity and MaxCapacity are required to register a new scalable target."
        )
    low = found.min_capacity if low is None and found else low
    high = found.max_capacity if high is None and found else high
    if low > high:
        raise ValidationException(
            f"Minimum capacity cannot be greater than maximum capacity ({low} > {high})."
        )
    role = params.get("RoleARN") or (found.role_arn if found else (
        f"arn:aws:iam::{config.account_id}:role/aws-service-role/ecs.application-autoscaling.amazonaws.com/"
        "AWSServiceRoleForApplicationAutoScaling_ECSService"))
    suspended = _suspended(params.get("SuspendedState"), found.suspended if found else None)
    tags = tuple(_tags(params.get("Tags"))) if found is None else found.tags
    row = data.ScalableTarget(resource, int(low), int(high), suspended, str(role), tags,
                              found.created_at if found else time.time())
    async with store.transaction() as tx:
        data.put_scalable_target(tx, row)
    return {"ScalableTargetARN": target_arn(config, resource)}


def _tags(raw: Any) -> list[dict[str, str]]:
    if raw is None:
        return []
    if not isinstance(raw, dict) or len(raw) > 50:
        raise ValidationException("Tags must be a map of at most 50 tags.")
    return [{"Key": str(k), "Value": str(v)} for k, v in raw.items()]


def _target_shape(config: Config, t: data.ScalableTarget) -> dict[str, Any]:
    return {**_identity(t.resource), "MinCapacity": t.min_capacity, "MaxCapacity": t.max_capacity,
            "RoleARN": t.role_arn, "CreationTime": t.created_at, "SuspendedState": dict(t.suspended),
            "ScalableTargetARN": target_arn(config, t.resource)}


async def describe_targets(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("ServiceNamespace") != "ecs":
        return {"ScalableTargets": []}
    wanted = set(params.get("ResourceIds") or [])
    rows = [t for t in data.scalable_targets(store) if not wanted or t.resource in wanted]
    chunk, token = page([_target_shape(config, t) for t in rows], params, ValidationException, default=50,
                        maximum=50, token_key="NextToken", max_key="MaxResults")
    return {"ScalableTargets": chunk, **({"NextToken": token} if token else {})}


async def deregister_target(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params, exists=False)
    async with store.transaction() as tx:
        if not data.delete_scalable_target(tx, resource):
            raise _no_target(resource)
    return {}


# -- policies ----------------------------------------------------------------------------------------
def _no_target(resource: str) -> Exception:
    return ObjectNotFoundException(
        f"No scalable target registered for service namespace: ecs, resource ID: {resource}, scalable "
        f"dimension: {DIMENSION}"
    )


def policy_arn(config: Config, resource: str, name: str) -> str:
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{resource}/{name}")
    return (f"arn:aws:autoscaling:{_region_account(config)}:scalingPolicy:{ident}:resource/ecs/{resource}:"
            f"policyName/{name}")


def _check_tracking(cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict) or not isinstance(cfg.get("TargetValue"), (int, float)):
        raise ValidationException("TargetTrackingScalingPolicyConfiguration needs a TargetValue.")
    if not 8.515920e-109 <= float(cfg["TargetValue"]) <= 6.174040e+307:
        raise ValidationException("TargetValue is out of range.")
    pre, custom = cfg.get("PredefinedMetricSpecification"), cfg.get("CustomizedMetricSpecification")
    if (pre is None) == (custom is None):
        raise ValidationException(
            "Give exactly one of PredefinedMetricSpecification and CustomizedMetricSpecification."
        )
    if pre is not None:
        kind = pre.get("PredefinedMetricType")
        if kind not in PREDEFINED:
            raise ValidationException(
                f"Unsupported predefined metric for ECS: {kind}; one of {', '.join(PREDEFINED)}."
            )
        if kind == "ALBRequestCountPerTarget" and not pre.get("ResourceLabel"):
            raise ValidationException("ALBRequestCountPerTarget needs a ResourceLabel.")
        if kind == "ALBRequestCountPerTarget" and not RESOURCE_LABEL.fullmatch(str(pre["ResourceLabel"])):
            raise ValidationException(
                "ResourceLabel must be app/<load-balancer-name>/<id>/targetgroup/<target-group-name>/<id>.")
    elif not ((custom.get("MetricName") and custom.get("Namespace")) or custom.get("Metrics")):
        raise ValidationException("CustomizedMetricSpecification needs MetricName and Namespace, or Metrics.")
    for key in ("ScaleOutCooldown", "ScaleInCooldown"):
        if key in cfg and not (isinstance(cfg[key], int) and 0 <= cfg[key] <= 86400):
            raise ValidationException(f"{key} must be between 0 and 86400 seconds.")
    return {"ScaleOutCooldown": 300, "ScaleInCooldown": 300, "DisableScaleIn": False, **cfg}


def _check_steps(cfg: Any) -> dict[str, Any]:
    if not isinstance(cfg, dict) or cfg.get("AdjustmentType") not in ADJUSTMENTS:
        raise ValidationException(
            f"StepScalingPolicyConfiguration needs an AdjustmentType: {', '.join(ADJUSTMENTS)}."
        )
    steps = cfg.get("StepAdjustments") or []
    if not steps:
        raise ValidationException("StepScalingPolicyConfiguration needs StepAdjustments.")
    bounds = sorted((s.get("MetricIntervalLowerBound", -math.inf), s.get("MetricIntervalUpperBound",
                                                                             math.inf)) for s in steps)
    for (_, hi), (nlo, _) in itertools.pairwise(bounds):
        if hi != nlo:
            raise ValidationException("Step adjustments must not overlap nor leave gaps between them.")
    if any(lo >= hi for lo, hi in bounds):
        raise ValidationException("A step adjustment's lower bound must be below its upper bound.")
    if cfg.get("MinAdjustmentMagnitude") and cfg["AdjustmentType"] != "PercentChangeInCapacity":
        raise ValidationException(
            "MinAdjustmentMagnitude is only for the PercentChangeInCapacity adjustment type."
        )
    return {"Cooldown": 300, "MetricAggregationType": "Average", **cfg}


async def put_policy(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params)
    if data.scalable_target(store, resource) is None:
        raise _no_target(resource)
    name = params.get("PolicyName")
    if not isinstance(name, str) or not 1 <= len(name) <= 256 or ":" in name:
        raise ValidationException("PolicyName must be 1 to 256 characters without ':'.")
    kind = params.get("PolicyType") or "StepScaling"
    if kind == "TargetTrackingScaling":
        cfg = _check_tracking(params.get("TargetTrackingScalingPolicyConfiguration"))
    elif kind == "StepScaling":
        cfg = _check_steps(params.get("StepScalingPolicyConfiguration"))
    else:
        raise ValidationException(f"Dockyard does not support the {kind} policy type for ECS services.")
    arn = policy_arn(config, resource, name)
    async with store.transaction() as tx:
        data.put_scaling_policy(tx, data.ScalingPolicy(resource, name, arn, kind, cfg, time.time()))
    out: dict[str, Any] = {"PolicyARN": arn}
    if kind == "TargetTrackingScaling":
        alarms = [f"TargetTracking-{resource}-{k}-{name}" for k in ("AlarmHigh", "AlarmLow")]
        prefix = f"arn:aws:cloudwatch:{_region_account(config)}:alarm:"
        out["Alarms"] = [{"AlarmName": a, "AlarmARN": prefix + a} for a in alarms]
    return out


def _policy_shape(p: data.ScalingPolicy) -> dict[str, Any]:
    key = "TargetTrackingScalingPolicyConfiguration" if p.type == "TargetTrackingScaling" else \
        "StepScalingPolicyConfiguration"
    return {"PolicyARN": p.arn, "PolicyName": p.name, **_identity(p.resource), "PolicyType": p.type,
            key: dict(p.config), "Alarms": [], "CreationTime": p.created_at}


async def describe_policies(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    names = set(params.get("PolicyNames") or [])
    rid = params.get("ResourceId")
    rows = [p for p in data.scaling_policies(store)
            if (not names or p.name in names) and (not rid or p.resource == rid)]
    chunk, token = page([_policy_shape(p) for p in rows], params, ValidationException, default=50, maximum=50,
                        token_key="NextToken", max_key="MaxResults")
    return {"ScalingPolicies": chunk, **({"NextToken": token} if token else {})}


async def delete_policy(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params, exists=False)
    async with store.transaction() as tx:
        if not data.delete_scaling_policy(tx, resource, str(params.get("PolicyName"))):
            raise ObjectNotFoundException(f"No scaling policy found for service namespace: ecs, resource ID: "
                                          f"{resource}, scalable dimension: {DIMENSION}, policy name: "
                                          f"{params.get('PolicyName')}")
    return {}


# -- scheduled actions -------------------------------------------------------------------------------
async def put_scheduled(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params)
    if data.scalable_target(store, resource) is None:
        raise _no_target(resource)
    name = str(params.get("ScheduledActionName") or "")
    found = data.scheduled_action(store, resource, name)
    expression = params.get("Schedule") or (found.expression if found else None)
    zone = params.get("Timezone") or (found.timezone if found else "UTC")
    try:
        schedule.parse(str(expression), str(zone))
    except ValueError as e:
        raise ValidationException(str(e)) from None
    action = params.get("ScalableTargetAction") or (dict(found.action) if found else {})
    low, high = action.get("MinCapacity"), action.get("MaxCapacity")
    if low is None and high is None:
        raise ValidationException("ScalableTargetAction needs MinCapacity, MaxCapacity or both.")
    if low is not None and high is not None and low > high:
        raise ValidationException("MinCapacity cannot be greater than MaxCapacity.")
    ident = uuid.uuid5(uuid.NAMESPACE_URL, resource + "/" + name)
    arn = (f"arn:aws:autoscaling:{_region_account(config)}:scheduledAction:{ident}:resource/ecs/{resource}:"
           f"scheduledActionName/{name}")
    row = data.ScheduledAction(resource, name, arn, str(expression), str(zone), params.get("StartTime"),
                               params.get("EndTime"), action, found.created_at if found else time.time(),
                               found.last_run if found else None)
    async with store.transaction() as tx:
        data.put_scheduled_action(tx, row)
    return {}


def _scheduled_shape(a: data.ScheduledAction) -> dict[str, Any]:
    out = {"ScheduledActionName": a.name, "ScheduledActionARN": a.arn, **_identity(a.resource),
           "Schedule": a.expression, "Timezone": a.timezone, "ScalableTargetAction": dict(a.action),
           "CreationTime": a.created_at}
    if a.start_time is not None:
        out["StartTime"] = a.start_time
    if a.end_time is not None:
        out["EndTime"] = a.end_time
    return out


async def describe_scheduled(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    names = set(params.get("ScheduledActionNames") or [])
    rid = params.get("ResourceId")
    rows = [a for a in data.scheduled_actions(store)
            if (not names or a.name in names) and (not rid or a.resource == rid)]
    chunk, token = page([_scheduled_shape(a) for a in rows], params, ValidationException, default=50,
                        maximum=50, token_key="NextToken", max_key="MaxResults")
    return {"ScheduledActions": chunk, **({"NextToken": token} if token else {})}


async def delete_scheduled(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    resource = _resource(store, params, exists=False)
    async with store.transaction() as tx:
        if not data.delete_scheduled_action(tx, resource, str(params.get("ScheduledActionName"))):
            raise ObjectNotFoundException(
                f"No scheduled action found for service namespace: ecs, resource ID: {resource}, scalable "
                f"dimension: {DIMENSION}, scheduled action name: {params.get('ScheduledActionName')}"
            )
    return {}


# -- activities and tags -----------------------------------------------------------------------------
async def describe_activities(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    rows = data.scaling_activities(store, params.get("ResourceId"))
    shown = []
    for a in rows:
        if a.not_scaled and not params.get("IncludeNotScaledActivities"):
            continue
        item = {"ActivityId": a.id, **_identity(a.resource), "Description": a.description, "Cause": a.cause,
                "StartTime": a.start_time, "StatusCode": a.status, "StatusMessage": a.message}
        if a.end_time is not None:
            item["EndTime"] = a.end_time
        if a.not_scaled:
            item["NotScaledReasons"] = [{"Code": _not_scaled_code(r), "Reason": r} for r in a.not_scaled]
        shown.append(item)
    chunk, token = page(shown, params, ValidationException, default=50, maximum=50, token_key="NextToken",
                        max_key="MaxResults")
    return {"ScalingActivities": chunk, **({"NextToken": token} if token else {})}


def _not_scaled_code(reason: str) -> str:
    if "MaxCapacity" in reason:
        return "AlreadyAtMaxCapacity"
    if "MinCapacity" in reason:
        return "AlreadyAtMinCapacity"
    return "CooldownInProgress" if "cooldown" in reason else "NotScaled"


def _target_of_arn(store: Store, config: Config, arn: Any) -> data.ScalableTarget:
    for t in data.scalable_targets(store):
        if target_arn(config, t.resource) == arn:
            return t
    raise ResourceNotFoundException(f"No scalable target found for {arn}")


async def tag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    t = _target_of_arn(store, config, params.get("ResourceARN"))
    merged = {x["Key"]: x["Value"] for x in t.tags}
    merged.update({x["Key"]: x["Value"] for x in _tags(params.get("Tags"))})
    if len(merged) > 50:
        raise ValidationException("A scalable target can have at most 50 tags.")
    async with store.transaction() as tx:
        data.set_scalable_target_tags(tx, t.resource, [{"Key": k, "Value": v} for k, v in merged.items()])
    return {}


async def untag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    t = _target_of_arn(store, config, params.get("ResourceARN"))
    gone = set(params.get("TagKeys") or [])
    async with store.transaction() as tx:
        data.set_scalable_target_tags(tx, t.resource, [x for x in t.tags if x["Key"] not in gone])
    return {}


async def list_tags(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    t = _target_of_arn(store, config, params.get("ResourceARN"))
    return {"Tags": {x["Key"]: x["Value"] for x in t.tags}}


async def forecast(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    raise ValidationException("Dockyard does not do predictive scaling, so it has no forecast.")


OPERATIONS = {
    "RegisterScalableTarget": register_target,
    "DescribeScalableTargets": describe_targets,
    "DeregisterScalableTarget": deregister_target,
    "PutScalingPolicy": put_policy,
    "DescribeScalingPolicies": describe_policies,
    "DeleteScalingPolicy": delete_policy,
    "PutScheduledAction": put_scheduled,
    "DescribeScheduledActions": describe_scheduled,
    "DeleteScheduledAction": delete_scheduled,
    "DescribeScalingActivities": describe_activities,
    "TagResource": tag_resource,
    "UntagResource": untag_resource,
    "ListTagsForResource": list_tags,
    "GetPredictiveScalingForecast": forecast,
}
