"""``dockyard deployments SERVICE``: a service's deployments, their stages and traffic split.

* ``dockyard deployments SERVICE [--cluster C]``: the newest deployments
  (ListServiceDeployments, then DescribeServiceDeployments): status, lifecycle stage, each
  revision's production and test traffic weight, hooks awaiting action, alarms, rollback.
* ``--watch``: a line whenever the newest deployment's status, stage, weights, hooks or
  triggered alarms change, until it ends (exit 0 when SUCCESSFUL, 1 otherwise: rolled back,
  stopped, failed, or ``--timeout`` passed).
* ``--table``: one row per deployment (:func:`row`: status, stage, target revision and its
  production/test share, the source revisions' share, hooks, alarms that fired).
* ``--json``: DescribeServiceDeployments' answer as it is.

The rendering (:func:`stage_line`, :func:`traffic_line`, :func:`summary`) is pure, tested with
answers shaped as botocore's ECS model shapes them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping
from typing import Any

from dockyard.aws.protocol import ECS

__all__ = ["COLUMNS", "ENDED", "STAGES", "add_deployments", "revision_names", "row", "stage_line", "summary",
           "traffic_line"]

STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
          "POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME",
          "CLEAN_UP")
"""ECS's ``ServiceDeploymentLifecycleStage`` values, in the order a deployment passes them."""
ENDED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
COLUMNS = ["deployment", "status", "stage", "target", "traffic", "test", "source", "hook", "alarms"]


def _revision(arn: str) -> str:
    """``web:3`` style name of a service revision or task definition ARN (its last part)."""
    return arn.rsplit("/", 1)[-1] if arn else "?"


def _weight(value: Any) -> str:
    return f"{float(value):g}%" if isinstance(value, int | float) else "-"


def stage_line(deployment: Mapping[str, Any]) -> str:
    """The stages passed, the current one in brackets, the rest after it (``SCALE_UP >
    [TEST_TRAFFIC_SHIFT] > ...``); a deployment that ended shows its last stage."""
    current = deployment.get("lifecycleStage") or ""
    if current not in STAGES:
        return current or "-"
    at = STAGES.index(current)
    names = [f"[{s}]" if i == at else s for i, s in enumerate(STAGES) if s != "RECONCILE_SERVICE" or i == at]
    return " > ".join(names)


def traffic_line(deployment: Mapping[str, Any], names: Mapping[str, str] | None = None) -> str:
    """Each revision's requested production weight (and test weight when it has one); a
    revision is named by ``names`` (service revision ARN -> ``family:revision`` of its task
    definition) or else by its ARN's last part."""
    revisions = [*(deployment.get("sourceServiceRevisions") or [])]
    target = deployment.get("targetServiceRevision")
    if target:
        revisions.append(target)
    parts = []
    for r in revisions:
        arn = r.get("arn", "")
        name = (names or {}).get(arn) or _revision(arn)
        text = f"{name} {_weight(r.get('requestedProductionTrafficWeight'))}"
        test = r.get("requestedTestTrafficWeight")
        if isinstance(test, int | float) and test > 0:
            text += f" (test {_weight(test)})"
        parts.append(text)
    return " / ".join(parts) or "-"


def summary(deployment: Mapping[str, Any], names: Mapping[str, str] | None = None) -> list[str]:
    """The lines ``dockyard deployments`` prints for one deployment (``names``: see
    :func:`traffic_line`)."""
    arn = deployment.get("serviceDeploymentArn", "")
    status = deployment.get("status", "")
    config = deployment.get("deploymentConfiguration") or {}
    lines = [f"{arn.rsplit('/', 1)[-1]}  {status}  {config.get('strategy', 'ROLLING')}",
             f"  stages   {stage_line(deployment)}",
             f"  traffic  {traffic_line(deployment, names)}"]
    if deployment.get("statusReason"):
        lines.append(f"  reason   {deployment['statusReason']}")
    for h in deployment.get("lifecycleHookDetails") or []:
        lines.append(f"  hook     {h.get('hookId', '')} {h.get('targetType', '')} {h.get('status', '')}")
    alarms = deployment.get("alarms") or {}
    if alarms.get("alarmNames"):
        triggered = ", ".join(alarms.get("triggeredAlarmNames") or []) or "none"
        lines.append(f"  alarms   {alarms.get('status', '')} {', '.join(alarms['alarmNames'])}"
                     f" (triggered: {triggered})")
    rollback = deployment.get("rollback") or {}
    if rollback:
        back = rollback.get("serviceRevisionArn", "")
        to = (names or {}).get(back) or _revision(back)
        lines.append(f"  rollback {rollback.get('reason', '')} -> {to}")
    return lines


def row(d: Mapping[str, Any]) -> dict[str, Any]:
    """One DescribeServiceDeployments object as a table row (pure)."""
    target = d.get("targetServiceRevision") or {}
    sources = d.get("sourceServiceRevisions") or []
    hooks = d.get("lifecycleHookDetails") or []
    return {
        "deployment": _revision(d["serviceDeploymentArn"]),
        "status": d.get("status", ""),
        "stage": d.get("lifecycleStage", ""),
        "target": f"{_revision(target.get('arn', ''))} ({target.get('runningTaskCount', 0)} running)",
        "traffic": f"{target.get('requestedProductionTrafficWeight', 0):g}%",
        "test": f"{target.get('requestedTestTrafficWeight', 0):g}%",
        "source": " ".join(f"{_revision(s['arn'])}={s.get('requestedProductionTrafficWeight', 0):g}%"
                           for s in sources) or "-",
        "hook": " ".join(f"{h['hookId']} {h.get('status', '')}" for h in hooks) or "-",
        "alarms": ",".join((d.get("alarms") or {}).get("triggeredAlarmNames") or []) or "-",
    }


def _state(deployment: Mapping[str, Any]) -> tuple[Any, ...]:
    """What ``--watch`` prints a line for when it changes."""
    hooks = tuple((h.get("hookId"), h.get("status")) for h in deployment.get("lifecycleHookDetails") or [])
    alarms = tuple((deployment.get("alarms") or {}).get("triggeredAlarmNames") or ())
    return deployment.get("status"), deployment.get("lifecycleStage"), traffic_line(deployment), hooks, alarms


def revision_names(client: Any, deployments: list[dict[str, Any]]) -> dict[str, str]:
    """Service revision ARN -> ``family:revision`` of its task definition
    (DescribeServiceRevisions); revisions it does not know keep their ARN."""
    arns = sorted({r["arn"] for d in deployments
                   for r in [*(d.get("sourceServiceRevisions") or []), d.get("targetServiceRevision") or {}]
                   if r.get("arn")})
    out: dict[str, str] = {}
    for i in range(0, len(arns), 20):
        found = client.call(ECS, "DescribeServiceRevisions", {"serviceRevisionArns": arns[i:i + 20]})
        for r in found.get("serviceRevisions") or []:
            out[r["serviceRevisionArn"]] = _revision(r.get("taskDefinition", ""))
    return out


def _deployments(client: Any, cluster: str, service: str, limit: int) -> list[dict[str, Any]]:
    listed = client.call(ECS, "ListServiceDeployments", {"cluster": cluster, "service": service,
                                                         "maxResults": limit})
    arns = [d["serviceDeploymentArn"] for d in listed.get("serviceDeployments") or []]
    if not arns:
        return []
    out = client.call(ECS, "DescribeServiceDeployments", {"serviceDeploymentArns": arns[:20]})
    found = list(out.get("serviceDeployments") or [])
    return sorted(found, key=lambda d: float(d.get("createdAt") or 0), reverse=True)


def watch(client: Any, cluster: str, service: str, ctx: Any, timeout: float, interval: float = 1.0) -> int:
    deadline = time.monotonic() + timeout
    last: tuple[Any, ...] | None = None
    while True:
        found = _deployments(client, cluster, service, 1)
        if not found:
            raise ctx.UserError(f"service {service} in cluster {cluster} has no deployment")
        d = found[0]
        names = revision_names(client, found)
        state = _state(d)
        if state != last:
            last = state
            stamp = time.strftime("%H:%M:%S")
            print(f"{stamp}  {d.get('status')}  {d.get('lifecycleStage', '-')}  traffic "
                  f"{traffic_line(d, names)}", flush=True)
            for line in summary(d, names)[3:]:
                print(f"{stamp}  {line.strip()}", flush=True)
        if d.get("status") in ENDED:
            return 0 if d.get("status") == "SUCCESSFUL" else 1
        if time.monotonic() > deadline:
            print(f"deployment not finished after {timeout:g} s", flush=True)
            return 1
        time.sleep(interval)


def add_deployments(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("deployments", help="a service's deployments: stages and traffic split (--watch)")
    ctx.client_args(p)
    p.add_argument("service", help="a service name or ARN")
    p.add_argument("--cluster", help="the service's cluster (default: default)")
    p.add_argument("--watch", action="store_true", help="follow the newest deployment until it ends")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds --watch waits (default 3600)")
    p.add_argument("--limit", type=int, default=5, help="how many deployments to show (default 5)")
    p.add_argument("--table", action="store_true", help="one row per deployment")

    def run(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.cluster is None:
            args.cluster = "default"
            print("dockyard: cluster default (--cluster NAME for another)", file=sys.stderr)
        if args.watch:
            return watch(client, args.cluster, args.service, ctx, args.timeout)
        found = _deployments(client, args.cluster, args.service, max(1, min(args.limit, 20)))
        if args.json:
            print(json.dumps(found, indent=2, default=str))
            return 0
        if args.table:
            print(ctx.table([row(d) for d in found], COLUMNS))
            return 0
        if not found:
            print(f"service {args.service}: no deployment")
            return 0
        names = revision_names(client, found)
        for d in found:
            print("\n".join(summary(d, names)))
        return 0

    p.set_defaults(func=run)

