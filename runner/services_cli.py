"""``dockyard services``: list services, show one, or follow a deployment as it rolls.

* ``dockyard services [--cluster C]``: one line per service (desired/running/pending, rollout).
* ``dockyard services NAME``: its deployments and latest events.
* ``dockyard services NAME --watch``: live progress: a line whenever a deployment's counts or
  rollout state change, and each new service event, until the service is steady (exit 0 if the
  deployment watched, the PRIMARY one when the watch began, completed; exit 1 if it failed and
  the service rolled back, also when the watch began during the rollback: then it follows
  the deployment that failed), its deployment FAILED without rollback (exit 1) or
  ``--timeout`` passes (exit 1).

Without ``--cluster`` the cluster is ``default``, and the command says so on stderr.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Any

from dockyard.aws.protocol import ECS

__all__ = ["add_services"]


def _family_revision(arn: str) -> str:
    return arn.rsplit("/", 1)[-1]


def _when(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _describe(client: Any, cluster: str, name: str, ctx: Any) -> dict[str, Any]:
    out = client.call(ECS, "DescribeServices", {"cluster": cluster, "services": [name]})
    if not out.get("services"):
        raise ctx.UserError(f"no service {name} in cluster {cluster}")
    return dict(out["services"][0])


def _deployment_rows(s: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "deployment": d["id"],
            "status": d["status"],
            "task_definition": _family_revision(d["taskDefinition"]),
            "desired": d["desiredCount"],
            "running": d["runningCount"],
            "pending": d["pendingCount"],
            "failed": d.get("failedTasks", 0),
            "rollout": d.get("rolloutState", ""),
        }
        for d in s["deployments"]
    ]


def _steady(s: dict[str, Any]) -> bool:
    deps = s["deployments"]
    return (
        len(deps) == 1
        and deps[0].get("rolloutState") == "COMPLETED"
        and s["runningCount"] == s["desiredCount"]
        and s["pendingCount"] == 0
    )


def _failed(s: dict[str, Any]) -> bool:
    primary = next((d for d in s["deployments"] if d["status"] == "PRIMARY"), None)
    return primary is not None and primary.get("rolloutState") == "FAILED"


def watched_failed(s: dict[str, Any], watched: str, messages: list[str]) -> bool:
    """Whether deployment ``watched`` failed, seen in ``s`` (it is FAILED, whatever its status
    now that a rollback took over) or in the service event ``messages`` seen since the watch
    began (the failed deployment may be gone by the next look, drained and retired)."""
    if any(d["id"] == watched and d.get("rolloutState") == "FAILED" for d in s["deployments"]):
        return True
    return any(f"deployment {watched} deployment failed" in m for m in messages)


_FAILED = re.compile(r"deployment (\S+) deployment failed")
ROLLBACK_SLACK = 2.0  # seconds: the rollback's events may be stamped just before its deployment


def rollback_origin(s: dict[str, Any], since: float) -> str:
    """The deployment whose failure started the PRIMARY one (created at ``since``) when the
    PRIMARY is a rollback, as its events say ("rolling back to deployment ..."); "" when it is
    not. A watch begun during a rollback follows the deployment that failed (pure)."""
    recent = [e["message"] for e in s["events"] if float(e["createdAt"]) >= since - ROLLBACK_SLACK]
    if not any("rolling back to deployment" in m for m in recent):
        return ""
    return next((hit.group(1) for m in recent if (hit := _FAILED.search(m))), "")


def watch(client: Any, cluster: str, name: str, ctx: Any, timeout: float, interval: float = 1.0) -> int:
    """Print progress lines until steady (0), failed (1) or timed out (1)."""
    deadline = time.monotonic() + timeout
    first = _describe(client, cluster, name, ctx)
    since = max(
        (float(d["createdAt"]) for d in first["deployments"] if d["status"] == "PRIMARY"), default=0.0
    )
    # Events of the deployment being followed are shown, older ones are not.
    seen_events: set[str] = {e["id"] for e in first["events"] if float(e["createdAt"]) < since}
    watched = next((d["id"] for d in first["deployments"] if d["status"] == "PRIMARY"), "")
    messages: list[str] = []
    failed = False
    origin = rollback_origin(first, since)
    if origin:  # begun after the failure: the deployment watched is the one rolled back
        watched, failed = origin, True
        print(f"service {name}: deployment {watched} failed", flush=True)
    last: dict[str, tuple[Any, ...]] = {}
    while True:
        s = _describe(client, cluster, name, ctx)
        for e in reversed(s["events"]):
            if e["id"] not in seen_events:
                seen_events.add(e["id"])
                messages.append(e["message"])
                print(f"{_when(float(e['createdAt']))}  event  {e['message']}", flush=True)
        if not failed and watched and watched_failed(s, watched, messages):
            failed = True
            print(f"service {name}: deployment {watched} failed", flush=True)
        for row in _deployment_rows(s):
            key = tuple(row.values())
            if last.get(row["deployment"]) != key:
                last[row["deployment"]] = key
                print(
                    f"{_when(time.time())}  {row['deployment']} {row['status']:<7} {row['task_definition']}"
                    f"  desired {row['desired']} running {row['running']} pending {row['pending']}"
                    f" failed {row['failed']}  {row['rollout']}",
                    flush=True,
                )
        if _steady(s):
            print(f"service {name} is steady: {s['runningCount']}/{s['desiredCount']} running", flush=True)
            if failed:
                print(f"service {name}: rolled back after deployment {watched} failed", flush=True)
                return 1
            return 0
        if _failed(s):
            print(f"service {name}: deployment failed", flush=True)
            return 1
        if time.monotonic() > deadline:
            print(f"service {name}: not steady after {timeout:g} s", flush=True)
            return 1
        time.sleep(interval)


def add_services(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("services", help="ECS services: list, show one, or --watch a deployment roll")
    ctx.client_args(p)
    p.add_argument("name", nargs="?", help="a service name or ARN")
    p.add_argument("--cluster", help="the service's cluster (default: default)")
    p.add_argument("--watch", action="store_true", help="follow the service until it is steady")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds --watch waits (default 600)")

    def run(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.cluster is None:
            args.cluster = "default"
            print("dockyard: cluster default (--cluster NAME for another)", file=sys.stderr)
        if args.name is None:
            arns = client.call(ECS, "ListServices", {"cluster": args.cluster, "maxResults": 100})[
                "serviceArns"
            ]
            rows = []
            for i in range(0, len(arns), 10):
                out = client.call(
                    ECS, "DescribeServices", {"cluster": args.cluster, "services": arns[i : i + 10]}
                )
                for s in out["services"]:
                    primary = next((d for d in s["deployments"] if d["status"] == "PRIMARY"), {})
                    rows.append(
                        {
                            "name": s["serviceName"],
                            "status": s["status"],
                            "task_definition": _family_revision(s["taskDefinition"]),
                            "desired": s["desiredCount"],
                            "running": s["runningCount"],
                            "pending": s["pendingCount"],
                            "rollout": primary.get("rolloutState", ""),
                        }
                    )
            ctx.emit(
                args,
                rows,
                ["name", "status", "task_definition", "desired", "running", "pending", "rollout"],
            )
            return 0
        if args.watch:
            return watch(client, args.cluster, args.name, ctx, args.timeout)
        s = _describe(client, args.cluster, args.name, ctx)
        if args.json:
            import json

            print(json.dumps(s, indent=2, default=str))
            return 0
        print(
            f"{s['serviceName']}  {s['status']}  {s['schedulingStrategy']}  desired {s['desiredCount']}"
            f"  running {s['runningCount']}  pending {s['pendingCount']}"
        )
        print(
            ctx.table(
                _deployment_rows(s), list(_deployment_rows(s)[0]) if s["deployments"] else ["deployment"]
            )
        )
        for e in s["events"][:10]:
            print(f"{_when(float(e['createdAt']))}  {e['message']}")
        return 0

    p.set_defaults(func=run)
