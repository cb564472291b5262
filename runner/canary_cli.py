"""``dockyard canary SERVICE --to TASKDEF --steps 10,50,100 --interval 30s --max-error-rate 1%
--max-p99 500ms``: a canary deployment judged against its baseline (docs/deployments.md).

It is UpdateService with ``deploymentConfiguration.strategy`` CANARY and Dockyard's field
``deploymentConfiguration.dockyardCanary`` (``steps``, ``intervalSeconds``, ``maxErrorRate``,
``maxP99Milliseconds``: what the runner's analysis, :mod:`runner.canary`, reads), so the same
canary can be asked for with any client that sends the field. Then it follows the deployment
live: a line per change of its stage or traffic split and, every ``--refresh`` seconds while
traffic shifts, both revisions' requests, 5xx rate and p99 over the last complete interval (the
CloudWatch metrics API, ``AWS/ECS`` by ``TaskDefinitionRevision``); each new service event
(the analysis writes why it promoted or rolled back). Exit 0 when the deployment is
SUCCESSFUL, 1 when it was rolled back, stopped or failed, or ``--timeout`` passed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from dockyard.aws.protocol import ECS
from runner import canary
from runner.deployments_cli import ENDED, revision_names, traffic_line

__all__ = ["add_canary", "canary_field", "figures", "metric_queries"]

METRICS = "GraniteServiceVersion20100801"
LAG = 12.0  # seconds until a 10 s bucket of the metric store holds its sidecars' flushes
_SHIFTING = ("PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME")
_FIGURES = (("r", "RequestCount", "Sum"), ("e", "HTTPCode_Target_5XX_Count", "Sum"),
            ("q", "TargetResponseTime", "p99"))


def canary_field(args: argparse.Namespace) -> dict[str, Any]:
    """``dockyardCanary`` from the options (ValueError naming the option that is wrong)."""
    policy = canary.Policy(
        canary.parse_steps(args.steps),
        canary.parse_duration(args.interval),
        canary.parse_percent(args.max_error_rate),
        canary.parse_milliseconds(args.max_p99),
    )
    return canary.policy_json(policy)


def metric_queries(cluster: str, service: str, revisions: Sequence[str], window: int) -> list[dict[str, Any]]:
    """GetMetricData queries: requests, 5xx and p99 of each revision over one ``window``
    period (by the ingress dimensions ClusterName, ServiceName, TaskDefinitionRevision: all the
    service's ports)."""
    out = []
    for i, rev in enumerate(revisions):
        dims = [{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": service},
                {"Name": "TaskDefinitionRevision", "Value": rev}]
        for prefix, metric, stat in _FIGURES:
            out.append({"Id": f"{prefix}{i}", "MetricStat": {
                "Metric": {"Namespace": "AWS/ECS", "MetricName": metric, "Dimensions": dims},
                "Period": window, "Stat": stat}})
    return out


def figures(revisions: Sequence[str], results: Sequence[Mapping[str, Any]]) -> str:
    """``rev 1: 900 req 0.00% 5xx p99 12 ms | rev 2: ...`` from GetMetricData's results (pure)."""
    values = {r["Id"]: r.get("Values") or [] for r in results}
    parts = []
    for i, rev in enumerate(revisions):
        requests, errors = sum(values.get(f"r{i}", [])), sum(values.get(f"e{i}", []))
        p99 = max(values.get(f"q{i}", []), default=None)
        rate = 100.0 * errors / requests if requests else 0.0
        shown = "-" if p99 is None else f"{p99:.0f} ms"
        parts.append(f"rev {rev}: {int(requests)} req {rate:.2f}% 5xx p99 {shown}")
    return " | ".join(parts)


def _window(seconds: float) -> int:
    """A period the metrics API takes (10, 30 or a multiple of 60) near ``seconds``."""
    if seconds <= 10:
        return 10
    if seconds <= 30:
        return 30
    return max(60, int(seconds // 60 * 60))


def _newest(client: Any, cluster: str, service: str, after: float) -> dict[str, Any] | None:
    listed = client.call(ECS, "ListServiceDeployments", {"cluster": cluster, "service": service,
                                                         "maxResults": 1})
    arns = [d["serviceDeploymentArn"] for d in listed.get("serviceDeployments") or []
            if float(d.get("createdAt") or 0) >= after - 2.0]
    if not arns:
        return None
    found = client.call(ECS, "DescribeServiceDeployments", {"serviceDeploymentArns": arns})
    return (found.get("serviceDeployments") or [None])[0]


def follow(client: Any, cluster: str, service: str, started: float, interval: float, timeout: float,
           refresh: float = 5.0) -> int:
    deadline = time.monotonic() + timeout
    seen_events: set[str] = set()
    last: tuple[Any, ...] | None = None
    shown_at = 0.0
    window = _window(interval)
    while True:
        d = _newest(client, cluster, service, started)
        svc = client.call(ECS, "DescribeServices", {"cluster": cluster, "services": [service]})["services"][0]
        for e in reversed(svc.get("events") or []):
            if e["id"] not in seen_events and float(e["createdAt"]) >= started - 2.0:
                seen_events.add(e["id"])
                print(f"{time.strftime('%H:%M:%S')}  event  {e['message']}", flush=True)
        if d is not None:
            names = revision_names(client, [d])
            state = (d.get("status"), d.get("lifecycleStage"), traffic_line(d, names))
            if state != last:
                last = state
                print(f"{time.strftime('%H:%M:%S')}  {state[0]}  {state[1]}  traffic {state[2]}", flush=True)
            shifting = d.get("lifecycleStage") in _SHIFTING
            if shifting and time.monotonic() - shown_at >= refresh:
                shown_at = time.monotonic()
                revisions = sorted({n.split(":")[-1] for n in names.values()}, key=lambda r: (len(r), r))
                end = int(time.time() - LAG) // 10 * 10  # the last window whose metrics are in
                answer = client.call(METRICS, "GetMetricData", {
                    "MetricDataQueries": metric_queries(cluster, service, revisions, window),
                    "StartTime": end - window, "EndTime": end})
                print(f"{time.strftime('%H:%M:%S')}  last {window}s  "
                      f"{figures(revisions, answer.get('MetricDataResults') or [])}", flush=True)
            if d.get("status") in ENDED:
                ok = d.get("status") == "SUCCESSFUL"
                print(f"canary {'promoted' if ok else 'not promoted'}: {d.get('status')}"
                      f"{' (' + d['statusReason'] + ')' if d.get('statusReason') else ''}", flush=True)
                return 0 if ok else 1
        if time.monotonic() > deadline:
            print(f"canary not finished after {timeout:g} s", flush=True)
            return 1
        time.sleep(1.0)


def add_canary(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("canary", help="deploy a task definition as a canary judged against the baseline")
    ctx.client_args(p)
    p.add_argument("service", help="a Service Connect service's name or ARN")
    p.add_argument("--to", required=True, metavar="TASKDEF", help="the task definition (family:revision)")
    p.add_argument("--cluster", help="the service's cluster (default: default)")
    p.add_argument("--steps", default="10,50,100", help="the canary's percent of traffic at each step")
    p.add_argument("--interval", default="30s", help="how long each step is held and judged (30s, 2m)")
    p.add_argument("--max-error-rate", default="1%", help="how far its 5xx rate may exceed the baseline's")
    p.add_argument("--max-p99", default="500ms", help="how far the canary's p99 may exceed the baseline's")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow the deployment")
    p.add_argument("--no-follow", action="store_true", help="start the canary and return")

    def run(args: argparse.Namespace) -> int:
        try:
            field = canary_field(args)
        except ValueError as e:
            raise ctx.UserError(str(e)) from None
        client = ctx.client(args)
        if args.cluster is None:
            args.cluster = "default"
            print("dockyard: cluster default (--cluster NAME for another)", file=sys.stderr)
        found = client.call(ECS, "DescribeServices", {"cluster": args.cluster, "services": [args.service]})
        if not found.get("services"):
            raise ctx.UserError(f"no service {args.service} in cluster {args.cluster}")
        config = dict(found["services"][0].get("deploymentConfiguration") or {})
        for k in ("linearConfiguration", "canaryConfiguration", "lifecycleHooks"):
            config.pop(k, None)
        config.update(strategy="CANARY", dockyardCanary=field)
        started = time.time()
        client.call(ECS, "UpdateService", {"cluster": args.cluster, "service": args.service,
                                           "taskDefinition": args.to, "deploymentConfiguration": config})
        steps = ", ".join(f"{s:g}%" for s in field["steps"])
        print(f"canary {args.to} on {args.service}: steps {steps}, {field['intervalSeconds']:g}s each, "
              f"5xx within +{field['maxErrorRate'] * 100:g} points, "
              f"p99 within +{field['maxP99Milliseconds']:g} ms", flush=True)
        if args.no_follow:
            return 0
        return follow(client, args.cluster, args.service, started, field["intervalSeconds"], args.timeout)

    p.set_defaults(func=run)
