"""EventBridge Scheduler's API on the control port (REST-JSON, routed by botocore's ``scheduler``
model: ``POST /schedules/{Name}``, ``GET /schedules``, ...): schedules in the ``default``
schedule group, each with one ECS target.

A schedule's ``ScheduleExpression`` is ``at(yyyy-mm-ddThh:mm:ss)``, ``rate()`` or ``cron()`` in its
``ScheduleExpressionTimezone`` (an IANA name, UTC by default), read by the parser EventBridge
rules and Application Auto Scaling use (:func:`runner.eventbridge.api.parse_expression`), within
``StartDate``/``EndDate``. A ``FLEXIBLE`` time window of ``MaximumWindowInMinutes`` fires each
due time at an offset within the window (:func:`window_offset`: spread by the schedule's ARN,
and the same offset for a due time however often it is asked). The target runs as an
EventBridge rule's ECS target does (:mod:`runner.eventbridge.bus`), its ``Input`` with the
context attributes ``<aws.scheduler.schedule-arn>``, ``<aws.scheduler.scheduled-time>``,
``<aws.scheduler.execution-id>`` and ``<aws.scheduler.attempt-number>`` filled in, retried by
its ``RetryPolicy``, dead letters recorded (``ListDeadLetters``); the tasks' ``startedBy`` is
``scheduler/<schedule name>``. ``ActionAfterCompletion: DELETE`` deletes a schedule after its
last invocation. Only the default group exists: other group names are
``ResourceNotFoundException``, creating or deleting groups a ``ValidationException``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

from dockyard.aws.errors import ConflictException, ResourceNotFoundException, ValidationException
from dockyard.aws.paging import page
from dockyard.aws.protocol import Call
from dockyard.config import Config
from dockyard.store import Store
from runner import data
from runner.autoscaling import schedule
from runner.eventbridge import api, targets

__all__ = ["GROUP", "SERVICE", "due_after", "operations", "schedule_arn", "window_offset"]

SERVICE = "scheduler"  # botocore's name: the model routes its REST-JSON operations
GROUP = "default"


class NotFound(ResourceNotFoundException):
    """Scheduler's ResourceNotFoundException answers 404 (its model says so)."""

    status = 404


def schedule_arn(config: Config, group: str, name: str) -> str:
    return f"arn:aws:scheduler:{config.region}:{config.account_id}:schedule/{group}/{name}"


def group_arn(config: Config, group: str = GROUP) -> str:
    return f"arn:aws:scheduler:{config.region}:{config.account_id}:schedule-group/{group}"


def window_offset(arn: str, due: float, window: float) -> float:
    """Seconds after ``due`` a flexible window of ``window`` seconds fires it (pure, the same
    for the same schedule and due time)."""
    if window <= 0:
        return 0.0
    digest = hashlib.sha256(f"{arn}@{due}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * window


def due_after(s: data.Schedule, since: float, minute: float = 60.0) -> float | None:
    """The first due time of ``s`` after ``since`` (None: no more), within its start and end
    dates (a ``rate()`` counts from its start date, else from its creation)."""
    try:
        parsed = api.parse_expression(s.expression, s.timezone or "UTC", minute, at=True)
    except ValueError:
        return None
    anchor = s.start_date if s.start_date is not None else s.created_at
    since = max(since, s.start_date - 1e-6) if s.start_date is not None and parsed.kind != "at" else since
    due = schedule.next_after(parsed, since, anchor=anchor)
    if due is None or (s.end_date is not None and due > s.end_date and parsed.kind != "at"):
        return None
    return due


def _group(value: Any) -> str:
    group = value or GROUP
    if group != GROUP:
        raise NotFound(f"Schedule group {group} does not exist.")
    return str(group)


def _not_found(group: str, name: str) -> Exception:
    return NotFound(f"Schedule {name} does not exist in group {group}.")


def _checked(
    store: Store, config: Config, params: dict[str, Any], call: Call | None, found: data.Schedule | None
) -> data.Schedule:
    group, name = _group(params.get("GroupName")), str(params.get("Name"))
    expression = str(params.get("ScheduleExpression") or "")
    zone = str(params.get("ScheduleExpressionTimezone") or "UTC")
    try:
        api.parse_expression(expression, zone, at=True)
    except ValueError as e:
        raise ValidationException(f"Invalid Schedule Expression {expression}: {e}") from None
    window = dict(params.get("FlexibleTimeWindow") or {})
    if window.get("Mode") == "FLEXIBLE":
        if not 1 <= int(window.get("MaximumWindowInMinutes") or 0) <= 1440:
            raise ValidationException(
                "MaximumWindowInMinutes must be between 1 and 1440 when Mode is FLEXIBLE."
            )
    elif "MaximumWindowInMinutes" in window:
        raise ValidationException("MaximumWindowInMinutes can only be given when Mode is FLEXIBLE.")
    start, end = params.get("StartDate"), params.get("EndDate")
    if start is not None and end is not None and float(start) >= float(end):
        raise ValidationException("The StartDate must come before the EndDate.")
    target = dict(params.get("Target") or {})
    try:
        targets.check_target({**target, "Id": name})
    except ValueError as e:
        raise ValidationException(str(e).replace(f"Target {name}: ", "")) from None
    api.check_ecs_target(store, config, call, {**target, "Id": name})
    now = time.time()
    return data.Schedule(
        group,
        name,
        schedule_arn(config, group, name),
        expression,
        zone,
        float(start) if start is not None else None,
        float(end) if end is not None else None,
        str(params.get("Description") or ""),
        str(params.get("State") or "ENABLED"),
        target,
        window,
        str(params.get("ActionAfterCompletion") or "NONE"),
        found.created_at if found else now,
        now,
        found.last_due if found and found.expression == expression else None,
    )


async def create_schedule(
    store: Store, config: Config, params: dict[str, Any], call: Call | None = None
) -> dict[str, Any]:
    row = _checked(store, config, params, call, None)
    async with store.transaction() as tx:
        if data.schedule(tx, row.group, row.name) is not None:
            raise ConflictException(f"Schedule {row.name} already exists.")
        data.put_schedule(tx, row)
    return {"ScheduleArn": row.arn}


async def update_schedule(
    store: Store, config: Config, params: dict[str, Any], call: Call | None = None
) -> dict[str, Any]:
    group, name = _group(params.get("GroupName")), str(params.get("Name"))
    found = data.schedule(store, group, name)
    if found is None:
        raise _not_found(group, name)
    row = _checked(store, config, params, call, found)
    async with store.transaction() as tx:
        if data.schedule(tx, group, name) is None:
            raise _not_found(group, name)
        data.put_schedule(tx, row)
    return {"ScheduleArn": row.arn}


def _shape(s: data.Schedule) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Arn": s.arn,
        "GroupName": s.group,
        "Name": s.name,
        "ScheduleExpression": s.expression,
        "ScheduleExpressionTimezone": s.timezone,
        "State": s.state,
        "CreationDate": s.created_at,
        "LastModificationDate": s.modified_at,
        "Target": dict(s.target),
        "FlexibleTimeWindow": dict(s.window),
        "ActionAfterCompletion": s.after_completion,
    }
    if s.description:
        out["Description"] = s.description
    if s.start_date is not None:
        out["StartDate"] = s.start_date
    if s.end_date is not None:
        out["EndDate"] = s.end_date
    return out


async def get_schedule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    group, name = _group(params.get("GroupName")), str(params.get("Name"))
    found = data.schedule(store, group, name)
    if found is None:
        raise _not_found(group, name)
    return _shape(found)


async def delete_schedule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    group, name = _group(params.get("GroupName")), str(params.get("Name"))
    async with store.transaction() as tx:
        if not data.delete_schedule(tx, group, name):
            raise _not_found(group, name)
    return {}


async def list_schedules(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    group = _group(params.get("GroupName")) if params.get("GroupName") else None
    rows = data.schedules(store, group, str(params.get("NamePrefix") or ""), params.get("State"))
    shown = [
        {
            "Arn": s.arn,
            "Name": s.name,
            "GroupName": s.group,
            "State": s.state,
            "CreationDate": s.created_at,
            "LastModificationDate": s.modified_at,
            "Target": {"Arn": s.target.get("Arn", "")},
        }
        for s in rows
    ]
    chunk, token = page(
        shown,
        params,
        ValidationException,
        default=100,
        maximum=100,
        token_key="NextToken",
        max_key="MaxResults",
    )
    return {"Schedules": chunk, **({"NextToken": token} if token else {})}


def _group_shape(config: Config) -> dict[str, Any]:
    return {
        "Arn": group_arn(config),
        "Name": GROUP,
        "State": "ACTIVE",
        "CreationDate": 0.0,
        "LastModificationDate": 0.0,
    }


async def get_group(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    _group(params.get("Name"))
    return _group_shape(config)


async def list_groups(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    shown = [_group_shape(config)] if GROUP.startswith(params.get("NamePrefix") or "") else []
    return {"ScheduleGroups": shown}


async def create_group(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    if params.get("Name") == GROUP:
        raise ConflictException(f"Schedule group {GROUP} already exists.")
    raise ValidationException("Dockyard has only the default schedule group.")


async def delete_group(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    _group(params.get("Name"))
    raise ValidationException("The default schedule group cannot be deleted.")


def operations() -> dict[str, Callable[..., Any]]:
    """Operation name -> ``async fn(store, config, params, call)``."""

    def plain(fn: Callable[..., Any]) -> Callable[..., Any]:
        async def op(
            store: Store, config: Config, params: dict[str, Any], call: Call | None
        ) -> dict[str, Any]:
            return await fn(store, config, params)

        return op

    return {
        "CreateSchedule": create_schedule,
        "UpdateSchedule": update_schedule,
        "GetSchedule": plain(get_schedule),
        "DeleteSchedule": plain(delete_schedule),
        "ListSchedules": plain(list_schedules),
        "GetScheduleGroup": plain(get_group),
        "ListScheduleGroups": plain(list_groups),
        "CreateScheduleGroup": plain(create_group),
        "DeleteScheduleGroup": plain(delete_group),
    }
