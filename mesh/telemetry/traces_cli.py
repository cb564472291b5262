"""``dockyard traces``: recent traces from the collector's Zipkin v2 API, drawn as trees.

``dockyard traces [--service NAME] [--span NAME] [--min-duration 10ms] [--lookback 15m]
[--limit N] [--json]`` asks ``GET /api/v2/traces`` of the control URL (the same one the other
commands use); ``dockyard traces --trace ID`` shows one trace (``GET /api/v2/trace/ID``).
Each trace is a header line (id, root service and span, span count, services, duration, start
time) and one line per span, indented under its parent, with its offset from the trace's start
and its duration (:func:`mesh.telemetry.traces.render`). ``--json`` prints Zipkin's JSON as
the API answers it.
"""

from __future__ import annotations

import argparse
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from mesh.telemetry.traces import render, summary

__all__ = ["add_commands", "micros", "show"]

_UNITS = {"us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(us|ms|s|m|h|d)?\s*$")


def micros(text: str, default_unit: str = "ms") -> int:
    """``"10ms"`` → 10000, ``"15m"`` → 900000000 (a bare number is in ``default_unit``)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration such as 250ms, 30s, 15m or 2h")
    return round(float(m.group(1)) * _UNITS[m.group(2) or default_unit])


def _when(us: int | None) -> str:
    if us is None:
        return "?"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(us / 1e6)) + f".{us // 1000 % 1000:03d}Z"


def show(traces: list[list[dict[str, Any]]]) -> list[str]:
    """The lines ``dockyard traces`` prints for ``traces`` (each a list of spans)."""
    lines: list[str] = []
    for spans in traces:
        if not spans:
            continue
        s = summary(spans)
        took = "?" if s["duration"] is None else f"{s['duration'] / 1000:.3f}ms"
        lines.append(f"trace {s['traceId']}  {s['service'] or '?'} {s['name'] or '-'}  {s['spans']} spans "
                     f"({', '.join(s['services'])})  {took}  {_when(s['timestamp'])}")
        lines.extend("  " + line for line in render(spans))
        lines.append("")
    return lines


def _get(client: Any, path: str, params: dict[str, str], error: type[Exception]) -> Any:
    url = f"{client.endpoint}{path}" + (f"?{urllib.parse.urlencode(params)}" if params else "")
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        message = e.read().decode(errors="replace").strip()
        raise error(f"{path}: {e.code} {message}") from None
    except (urllib.error.URLError, OSError) as e:
        raise client.unreachable(e) from None


def add_commands(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("traces", help="recent traces from the sidecars (Zipkin v2), as trees with timings")
    ctx.client_args(p)
    p.add_argument("--service", help="traces with a span of this service (its ECS service name)")
    p.add_argument("--span", help="traces with a span of this name")
    p.add_argument("--min-duration", help="traces with a span at least this long (250ms, 1s)")
    p.add_argument("--lookback", default="1h", help="how far back to look (default 1h)")
    p.add_argument("--limit", type=int, default=10, help="at most this many traces (default 10)")
    p.add_argument("--trace", help="show this one trace")

    def traces(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.trace:
            found = [_get(client, f"/api/v2/trace/{urllib.parse.quote(args.trace)}", {}, ctx.UserError)]
        else:
            try:
                params = {"lookback": str(max(1, micros(args.lookback, "s") // 1000)),
                          "limit": str(args.limit)}
                if args.min_duration:
                    params["minDuration"] = str(micros(args.min_duration))
            except ValueError as e:
                raise ctx.UserError(str(e)) from None
            if args.limit < 1:
                raise ctx.UserError("--limit must be at least 1")
            if args.service:
                params["serviceName"] = args.service
            if args.span:
                params["spanName"] = args.span
            found = _get(client, "/api/v2/traces", params, ctx.UserError)
        if args.json:
            print(json.dumps(found, indent=2))
        else:
            print("\n".join(show(found)) if found else "no traces")
        return 0

    p.set_defaults(func=traces)
