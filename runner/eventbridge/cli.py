"""``dockyard rules``: EventBridge rules and Scheduler schedules with their last runs.

* ``dockyard rules``: one row per rule of the default bus (ListRules, ListTargetsByRule) and per
  schedule (ListSchedules): its trigger (pattern or schedule), state, targets, its last run
  (ListRuleInvocations: when, status, the tasks started or the error) and how many dead
  letters it has (ListDeadLetters).
* ``--dead-letters``: the dead letters themselves, newest first (rule, target, error,
  condition that ran out, retries).
* ``--json``: the rows as JSON.

The rows (:func:`row`, :func:`dead_letter_row`) are pure, tested with answers shaped as the
API gives them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COLUMNS", "DEAD_COLUMNS", "add_rules", "dead_letter_row", "row"]

EVENTS = "AWSEvents"
COLUMNS = ["rule", "state", "trigger", "targets", "last run", "status", "result", "dead letters"]
DEAD_COLUMNS = ["time", "rule", "target", "error", "exhausted", "retries"]


def _when(ts: Any) -> str:
    if not isinstance(ts, (int, float)):
        return "-"
    return dt.datetime.fromtimestamp(float(ts), dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def row(
    rule: Mapping[str, Any], targets: int, runs: Sequence[Mapping[str, Any]], dead: int
) -> dict[str, Any]:
    """A rule's (or a schedule's: ``ScheduleExpression`` without ``EventPattern``) row; ``runs``
    newest first."""
    trigger = rule.get("ScheduleExpression") or ""
    if rule.get("EventPattern"):
        pattern = json.dumps(json.loads(rule["EventPattern"]), separators=(",", ":"))
        trigger = f"{trigger} + {pattern}" if trigger else pattern
    last = runs[0] if runs else {}
    result = str(last.get("Message", ""))
    if result.startswith("arn:aws:ecs:"):
        result = " ".join(arn.rsplit("/", 1)[-1] for arn in result.split())  # task ids
    return {
        "rule": rule.get("Name", ""),
        "state": rule.get("State", ""),
        "trigger": _short(trigger),
        "targets": targets,
        "last run": _when(last.get("Time")),
        "status": last.get("Status", "-"),
        "result": _short(result) or "-",
        "dead letters": dead,
    }


def dead_letter_row(letter: Mapping[str, Any]) -> dict[str, Any]:
    attrs = letter.get("Attributes") or {}
    return {
        "time": _when(letter.get("Time")),
        "rule": str(attrs.get("RULE_ARN", "")).split(":", 5)[-1],
        "target": attrs.get("TARGET_ID", ""),
        "error": _short(f"{attrs.get('ERROR_CODE', '')}: {attrs.get('ERROR_MESSAGE', '')}", 100),
        "exhausted": attrs.get("EXHAUSTED_RETRY_CONDITION") or "-",
        "retries": attrs.get("RETRY_ATTEMPTS", 0),
    }


def _rows(client: Any) -> list[dict[str, Any]]:
    rows = []
    rules = client.call(EVENTS, "ListRules", {}).get("Rules") or []
    for r in rules:
        targets = client.call(EVENTS, "ListTargetsByRule", {"Rule": r["Name"]}).get("Targets") or []
        runs = client.call(EVENTS, "ListRuleInvocations", {"Rule": r["Name"]}).get("Invocations") or []
        dead = client.call(EVENTS, "ListDeadLetters", {"Rule": r["Name"]}).get("DeadLetters") or []
        rows.append(row(r, len(targets), runs, len(dead)))
    for s in client.call_rest("scheduler", "GET", "/schedules").get("Schedules") or []:
        full = client.call_rest("scheduler", "GET", f"/schedules/{s['Name']}")
        runs = client.call(EVENTS, "ListRuleInvocations", {"Schedule": s["Name"]}).get("Invocations") or []
        dead = client.call(EVENTS, "ListDeadLetters", {"Schedule": s["Name"]}).get("DeadLetters") or []
        rows.append(row({**full, "Name": f"schedule/{s['Name']}"}, 1, runs, len(dead)))
    return rows


def add_rules(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("rules", help="EventBridge rules and schedules with their last runs (--dead-letters)")
    ctx.client_args(p)
    p.add_argument("--dead-letters", action="store_true", help="the events targets could not take")

    def run(args: argparse.Namespace) -> int:
        client = ctx.client(args)
        if args.dead_letters:
            letters = client.call(EVENTS, "ListDeadLetters", {}).get("DeadLetters") or []
            if args.json:
                print(json.dumps(letters, indent=2))
            else:
                print(ctx.table([dead_letter_row(d) for d in letters], DEAD_COLUMNS))
            return 0
        rows = _rows(client)
        print(json.dumps(rows, indent=2) if args.json else ctx.table(rows, COLUMNS))
        return 0

    p.set_defaults(func=run)
