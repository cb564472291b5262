"""``dockyard deployments SERVICE``: a service's deployments, their lifecycle stages and the
traffic split, from ListServiceDeployments and DescribeServiceDeployments.

* ``dockyard deployments web``: one row per service deployment (newest first): status, stage,
  target revision and its production/test traffic share, the source revisions' share, the
  hook awaiting action, the alarms that fired.
* ``--watch``: the newest deployment's row again whenever it changes, until it ends (exit 0 when
  SUCCESSFUL, 1 otherwise or after ``--timeout``).
* ``--json``: the DescribeServiceDeployments objects.

Without ``--cluster`` the cluster is ``default``, and the command says so on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from dockyard.aws.protocol import ECS

__all__ = ["add_deployments", "row"]

ENDED = ("SUCCESSFUL", "STOPPED", "ROLLBACK_SUCCESSFUL", "ROLLBACK_FAILED")
COLUMNS = ["deployment", "status", "stage", "target", "traffic", "test", "source", "hook", "alarms"]


def _digits(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def row(d: dict[str, Any]) -> dict[str, Any]:
    """One DescribeServiceDeployments object as a table row (pure)."""
    target = d.get("targetServiceRevision") or {}
    sources = d.get("sourceServiceRevisions") or []
    hooks = d.get("lifecycleHookDetails") or []
    return {
        "deployment": _digits(d["serviceDeploymentArn"]),
        "status": d.get("status", ""),
        "stage": d.get("lifecycleStage", ""),
        "target": f"{_digits(target.get('arn', ''))} ({target.get('runningTaskCount', 0)} running)",
        "traffic": f"{target.get('requestedProductionTrafficWeight', 0):g}%",
        "test": f"{target.get('requestedTestTrafficWeight', 0):g}%",
        "source": " ".join(f"{_digits(s['arn'])}={s.get('requestedProductionTrafficWeight', 0):g}%"
                           for s in sources) or "-",
        "hook": " ".join(f"{h['hookId']} {h.get('status', '')}" for h in hooks) or "-",
        "alarms": ",".join((d.get("alarms") or {}).get("triggeredAlarmNames") or []) or "-",
    }


def _deployments(client: Any, cluster: str, service: str) -> list[dict[str, Any]]:
    briefs = client.call(ECS, "ListServiceDeployments", {"cluster": cluster, "service": service,
                                                        "maxResults": 20})["serviceDeployments"]
    arns = [b["serviceDeploymentArn"] for b in briefs]
    if not arns:
        return []
    found = client.call(ECS, "DescribeServiceDeployments",
                        {"serviceDeploymentArns": arns})["serviceDeployments"]
    order = {a: i for i, a in enumerate(arns)}
    return sorted(found, key=lambda d: order.get(d["serviceDeploymentArn"], 0))


def add_deployments(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("deployments", help="an ECS service's deployments: stages and traffic split")
    ctx.client_args(p)
    p.add_argument("service", help="a service name or ARN")
    p.add_argument("--cluster", help="the service's cluster (default: default)")
    p.add_argument("--watch", action="store_true", help="follow the newest deployment until it ends")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds --watch waits (default 600)")

    def run(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.cluster is None:
            args.cluster = "default"
            print("dockyard: cluster default (--cluster NAME for another)", file=sys.stderr)
        if not args.watch:
            found = _deployments(client, args.cluster, args.service)
            if args.json:
                print(json.dumps(found, indent=2, default=str))
                return 0
            print(ctx.table([row(d) for d in found], COLUMNS))
            return 0
        deadline = time.monotonic() + args.timeout
        last: dict[str, Any] | None = None
        while True:
            found = _deployments(client, args.cluster, args.service)
            newest = found[0] if found else None
            if newest is not None:
                now = row(newest)
                if now != last:
                    last = now
                    print(f"{time.strftime('%H:%M:%S')}  " + "  ".join(f"{k} {v}" for k, v in now.items()),
                          flush=True)
                if newest.get("status") in ENDED:
                    return 0 if newest["status"] == "SUCCESSFUL" else 1
            if time.monotonic() > deadline:
                print(f"deployments of {args.service}: not ended after {args.timeout:g} s", flush=True)
                return 1
            time.sleep(1.0)

    p.set_defaults(func=run)
