"""``dockyard mesh stats NAME``: per task definition revision of a Service Connect service, the
requests it served, its 5xx error rate and p50/p99 latency over the last ``--window`` seconds,
read from the CloudWatch metrics API (``AWS/ECS`` ``RequestCount``,
``HTTPCode_Target_5XX_Count``, ``TargetResponseTime`` by ``DiscoveryName`` and
``TaskDefinitionRevision``: docs/telemetry.md). A live table, redrawn every ``--interval``
seconds (``--count`` redraws, then exit; 0: until interrupted), or ``--json`` once.

``NAME`` is a discovery name (``web``) or a client alias's DNS name (``web.shop.local``), whose
first label is taken as the discovery name when no metric carries the whole name.
:func:`stats_rows` (pure) makes the rows of one GetMetricData answer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from mesh.status_cli import mesh_actions

__all__ = ["add_commands", "queries", "stats_rows"]

TARGET = "GraniteServiceVersion20100801"
NAMESPACE = "AWS/ECS"
COLUMNS = ["revision", "requests", "errors", "error_rate", "p50_ms", "p99_ms"]
_METRICS = (("r", "RequestCount", "Sum"), ("e", "HTTPCode_Target_5XX_Count", "Sum"),
            ("p", "TargetResponseTime", "p50"), ("q", "TargetResponseTime", "p99"))


def queries(name: str, revisions: Sequence[str], window: int) -> list[dict[str, Any]]:
    """GetMetricData's queries: the four figures of each revision over one ``window`` period."""
    out = []
    for i, rev in enumerate(revisions):
        dims = [{"Name": "DiscoveryName", "Value": name}, {"Name": "TaskDefinitionRevision", "Value": rev}]
        for prefix, metric, stat in _METRICS:
            out.append({"Id": f"{prefix}{i}", "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": dims},
                "Period": window, "Stat": stat}})
    return out


def stats_rows(revisions: Sequence[str], results: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per revision from GetMetricData's ``MetricDataResults`` (of :func:`queries`)."""
    values = {r["Id"]: sum(r.get("Values") or []) for r in results}
    have = {r["Id"] for r in results if r.get("Values")}
    rows = []
    for i, rev in enumerate(revisions):
        requests, errors = values.get(f"r{i}", 0.0), values.get(f"e{i}", 0.0)
        rows.append({
            "revision": rev,
            "requests": int(requests),
            "errors": int(errors),
            "error_rate": round(100.0 * errors / requests, 2) if requests else 0.0,
            "p50_ms": round(values[f"p{i}"], 1) if f"p{i}" in have else None,
            "p99_ms": round(values[f"q{i}"], 1) if f"q{i}" in have else None,
        })
    return rows


def _revisions(client: Any, name: str) -> list[str]:
    listed = client.call(TARGET, "ListMetrics", {
        "Namespace": NAMESPACE, "MetricName": "RequestCount",
        "Dimensions": [{"Name": "DiscoveryName", "Value": name}, {"Name": "TaskDefinitionRevision"}]})
    revs = {d["Value"] for m in listed.get("Metrics", []) if len(m["Dimensions"]) == 2
            for d in m["Dimensions"] if d["Name"] == "TaskDefinitionRevision"}
    return sorted(revs, key=lambda r: int(r) if r.isdigit() else 0)


def _read(client: Any, name: str, window: int) -> tuple[str, list[dict[str, Any]]]:
    revisions = _revisions(client, name)
    if not revisions and "." in name:
        name = name.split(".", 1)[0]
        revisions = _revisions(client, name)
    if not revisions:
        return name, []
    end = int(time.time()) // 10 * 10 + 10
    answer = client.call(TARGET, "GetMetricData", {
        "MetricDataQueries": queries(name, revisions, window), "StartTime": end - window, "EndTime": end})
    return name, stats_rows(revisions, answer.get("MetricDataResults", []))


def add_commands(sub: Any, ctx: Any) -> None:
    actions = mesh_actions(sub)
    p = actions.add_parser("stats", help="per revision of a service: requests, error rate, p50/p99 (live)")
    ctx.client_args(p)
    p.add_argument("name", help="discovery name (web) or client alias DNS name (web.shop.local)")
    p.add_argument("--window", type=int, default=60, help="seconds looked back: 10, 30 or a multiple of 60")
    p.add_argument("--interval", type=float, default=2.0, help="seconds between two redraws")
    p.add_argument("--count", type=int, default=0, help="redraws before exiting (0: until interrupted)")

    def stats(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        shown = 0
        while True:
            name, rows = _read(client, args.name, args.window)
            if args.json:
                print(json.dumps({"DiscoveryName": name, "WindowSeconds": args.window, "Revisions": rows},
                                 indent=2))
                return 0
            if sys.stdout.isatty():
                print("\x1b[H\x1b[J", end="")
            print(f"{name}: last {args.window}s, {time.strftime('%H:%M:%S')}")
            ctx.emit(args, [{k: ("-" if v is None else v) for k, v in r.items()} for r in rows], COLUMNS)
            sys.stdout.flush()
            shown += 1
            if args.count and shown >= args.count:
                return 0
            time.sleep(args.interval)

    p.set_defaults(func=stats)
