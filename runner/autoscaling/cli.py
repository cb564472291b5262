"""``dockyard scaling SERVICE``: a service's scalable target, its policies with the metric each
follows against its target, its scheduled actions and its last scaling activities.

* the target (DescribeScalableTargets): minimum, maximum, the service's desired and running
  count (DescribeServices), what is suspended;
* one row per policy (DescribeScalingPolicies): its type; for target tracking the metric
  (:func:`runner.autoscaling.loop.metric_query`, the one the scaler itself reads), its latest
  value over the last minutes (GetMetricStatistics) and the target value; for step scaling its
  adjustments;
* the scheduled actions (DescribeScheduledActions): schedule, bounds, next state;
* the newest ``--activities`` activities (DescribeScalingActivities): time, status, cause.
* ``--json``: all of it as one object.

The rendering (:func:`target_line`, :func:`policy_row`, :func:`activity_row`,
:func:`scheduled_row`) is pure, tested with answers shaped as botocore's
application-autoscaling model shapes them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.aws.protocol import ECS
from runner.autoscaling.api import TARGET
from runner.autoscaling.loop import metric_query

__all__ = ["ACTIVITY_COLUMNS", "POLICY_COLUMNS", "SCHEDULED_COLUMNS", "activity_row", "add_scaling",
           "policy_row", "scheduled_row", "target_line"]

METRICS = "GraniteServiceVersion20100801"
DIMENSION = "ecs:service:DesiredCount"
POLICY_COLUMNS = ["policy", "type", "metric", "current", "target", "detail"]
SCHEDULED_COLUMNS = ["action", "schedule", "timezone", "min", "max"]
ACTIVITY_COLUMNS = ["time", "status", "description", "cause"]
WINDOW = 300  # seconds of metric history the current value is read from


def _when(ts: Any) -> str:
    if isinstance(ts, str):
        return ts[:19].replace("T", " ") + "Z"
    if not isinstance(ts, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def target_line(target: Mapping[str, Any] | None, desired: int | None, running: int | None) -> str:
    """``min 1  max 4  desired 2  running 2`` (and what is suspended), or that none is registered."""
    if target is None:
        return "no scalable target (aws application-autoscaling register-scalable-target)"
    text = f"min {target.get('MinCapacity')}  max {target.get('MaxCapacity')}"
    if desired is not None:
        text += f"  desired {desired}  running {running if running is not None else '-'}"
    suspended = [k.removesuffix("Suspended") for k, v in (target.get("SuspendedState") or {}).items() if v]
    if suspended:
        text += f"  suspended: {', '.join(sorted(suspended))}"
    return text


def _step(adjustment: Mapping[str, Any]) -> str:
    lo, hi = adjustment.get("MetricIntervalLowerBound"), adjustment.get("MetricIntervalUpperBound")
    span = f"[{'-inf' if lo is None else f'{lo:g}'}, {'+inf' if hi is None else f'{hi:g}'})"
    return f"{span} {int(adjustment.get('ScalingAdjustment', 0)):+d}"


def policy_row(policy: Mapping[str, Any], current: float | None) -> dict[str, Any]:
    """One policy's row; ``current`` the latest value of the metric it follows (None: no data)."""
    kind = policy.get("PolicyType", "")
    row: dict[str, Any] = {"policy": policy.get("PolicyName", ""), "type": kind, "metric": "-",
                           "current": "-" if current is None else f"{current:.4g}", "target": "-",
                           "detail": ""}
    if kind == "TargetTrackingScaling":
        cfg = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
        pre = cfg.get("PredefinedMetricSpecification")
        custom = cfg.get("CustomizedMetricSpecification") or {}
        row["metric"] = (pre["PredefinedMetricType"] if pre
                         else f"{custom.get('Namespace')}/{custom.get('MetricName')}")
        row["target"] = f"{float(cfg.get('TargetValue', 0)):g}"
        pairs = (("out", "ScaleOutCooldown"), ("in", "ScaleInCooldown"))
        detail = [f"{word} cooldown {cfg[key]}s" for word, key in pairs if key in cfg]
        if cfg.get("DisableScaleIn"):
            detail.append("scale-in disabled")
        row["detail"] = ", ".join(detail)
    elif kind == "StepScaling":
        cfg = policy.get("StepScalingPolicyConfiguration") or {}
        steps = ", ".join(_step(a) for a in cfg.get("StepAdjustments") or [])
        row["detail"] = f"{cfg.get('AdjustmentType', '')}: {steps}".strip(": ")
        alarms = [a.get("AlarmName", "") for a in policy.get("Alarms") or []]
        if alarms:
            row["metric"] = "alarm " + ", ".join(alarms)
    return row


def scheduled_row(action: Mapping[str, Any]) -> dict[str, Any]:
    bounds = action.get("ScalableTargetAction") or {}
    return {"action": action.get("ScheduledActionName", ""), "schedule": action.get("Schedule", ""),
            "timezone": action.get("Timezone", "UTC"), "min": bounds.get("MinCapacity", "-"),
            "max": bounds.get("MaxCapacity", "-")}


def activity_row(activity: Mapping[str, Any]) -> dict[str, Any]:
    return {"time": _when(activity.get("StartTime")), "status": activity.get("StatusCode", ""),
            "description": activity.get("Description", ""), "cause": activity.get("Cause", "")}


def _latest(client: Any, namespace: str, name: str, dims: Mapping[str, str], stat: str) -> float | None:
    """The newest datapoint of the metric over the last :data:`WINDOW` seconds (None: none)."""
    now = int(time.time())
    answer = client.call(METRICS, "GetMetricStatistics", {
        "Namespace": namespace, "MetricName": name, "StartTime": now - WINDOW, "EndTime": now + 60,
        "Period": 60, "Statistics": [stat], "Dimensions": [{"Name": k, "Value": v} for k, v in dims.items()]})
    points = sorted(answer.get("Datapoints") or [], key=lambda p: str(p.get("Timestamp")))
    return float(points[-1][stat]) if points and stat in points[-1] else None


def gather(client: Any, cluster: str, service: str, activities: int) -> dict[str, Any]:
    """Everything ``dockyard scaling`` shows, as the APIs answer it (plus each policy's current value)."""
    resource = f"service/{cluster}/{service}"
    one = {"ServiceNamespace": "ecs", "ResourceId": resource, "ScalableDimension": DIMENSION}
    targets = client.call(TARGET, "DescribeScalableTargets", {
        "ServiceNamespace": "ecs", "ResourceIds": [resource], "ScalableDimension": DIMENSION,
    })["ScalableTargets"]
    policies = client.call(TARGET, "DescribeScalingPolicies", one)["ScalingPolicies"]
    scheduled = client.call(TARGET, "DescribeScheduledActions", one)["ScheduledActions"]
    acts = client.call(TARGET, "DescribeScalingActivities", {
        **one, "MaxResults": max(1, min(activities, 50))})["ScalingActivities"]
    found = client.call(ECS, "DescribeServices", {"cluster": cluster, "services": [service]})["services"]
    current: dict[str, float | None] = {}
    for p in policies:
        cfg = p.get("TargetTrackingScalingPolicyConfiguration")
        if cfg:
            current[p["PolicyName"]] = _latest(client, *metric_query(resource, cfg))
    return {"ResourceId": resource, "ScalableTarget": targets[0] if targets else None,
            "Service": {k: found[0].get(k) for k in ("desiredCount", "runningCount")} if found else None,
            "ScalingPolicies": policies, "CurrentValues": current, "ScheduledActions": scheduled,
            "ScalingActivities": acts}


def render(found: Mapping[str, Any], table: Any) -> str:
    svc = found.get("Service") or {}
    lines = [f"{found['ResourceId']}: "
             + target_line(found.get("ScalableTarget"), svc.get("desiredCount"), svc.get("runningCount"))]
    policies: Sequence[Mapping[str, Any]] = found.get("ScalingPolicies") or []
    if policies:
        values = found.get("CurrentValues") or {}
        lines += ["", table([policy_row(p, values.get(p["PolicyName"])) for p in policies], POLICY_COLUMNS)]
    if found.get("ScheduledActions"):
        lines += ["", table([scheduled_row(a) for a in found["ScheduledActions"]], SCHEDULED_COLUMNS)]
    if found.get("ScalingActivities"):
        lines += ["", table([activity_row(a) for a in found["ScalingActivities"]], ACTIVITY_COLUMNS)]
    return "\n".join(lines)


def add_scaling(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("scaling", help="a service's scaling: target, policies, metrics, activities")
    ctx.client_args(p)
    p.add_argument("service", help="a service name")
    p.add_argument("--cluster", help="the service's cluster (default: default)")
    p.add_argument("--activities", type=int, default=10, help="how many activities to show (default 10)")

    def run(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.cluster is None:
            args.cluster = "default"
            print("dockyard: cluster default (--cluster NAME for another)", file=sys.stderr)
        found = gather(client, args.cluster, args.service.rsplit("/", 1)[-1], args.activities)
        if args.json:
            print(json.dumps(found, indent=2, default=str))
        else:
            print(render(found, ctx.table))
        return 0

    p.set_defaults(func=run)
