"""EventBridge's API on the control port (AWS JSON 1.1, ``X-Amz-Target: AWSEvents.<Op>``):
rules on the default event bus, their targets, PutEvents, TestEventPattern and tags.

A rule has an ``EventPattern`` (:mod:`runner.eventbridge.pattern`), a ``ScheduleExpression``
(``rate()`` or ``cron()``, :mod:`runner.autoscaling.schedule`; only on the default bus, as on
AWS) or both. Targets are ECS clusters (:mod:`runner.eventbridge.targets`), at most five per
rule; their inputs are :mod:`runner.eventbridge.transform`'s. A target whose task definition
does not exist, or whose task definition the caller may not run on the cluster
(:mod:`runner.hostaccess`), is refused and nothing of the request is written. What happens to
events is :mod:`runner.eventbridge.bus`'s; the rows are :mod:`runner.data`'s.

Two operations of Dockyard's own (no model) show what the bus did: ``ListRuleInvocations``
(the newest tries of a rule's targets) and ``ListDeadLetters`` (the events targets could not
take, with the attributes EventBridge gives a dead-letter queue's messages).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dockyard.aws.errors import (
    AccessDeniedException,
    AwsError,
    LimitExceededException,
    ResourceNotFoundException,
    ValidationException,
    register,
)
from dockyard.aws.paging import page
from dockyard.aws.protocol import Call
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import data, hostaccess, taskdefs
from runner.autoscaling import schedule
from runner.eventbridge import envelope, pattern, targets, transform

__all__ = [
    "BUS",
    "MIGRATIONS",
    "TARGET",
    "bus_name",
    "check_ecs_target",
    "operations",
    "parse_expression",
    "rule_arn",
    "rule_schedule",
]

TARGET = "AWSEvents"
BUS = "default"
InvalidEventPatternException = register("InvalidEventPatternException")
ConcurrentModificationException = register("ConcurrentModificationException")

MIGRATIONS = [
    Migration(
        "runner_eventbridge",
        1,
        """
        CREATE TABLE eventbridge_rules (
            bus TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL UNIQUE, pattern TEXT, schedule TEXT,
            state TEXT NOT NULL, description TEXT NOT NULL, role_arn TEXT NOT NULL, tags TEXT NOT NULL,
            created_at REAL NOT NULL, created_by TEXT NOT NULL, last_fired REAL, PRIMARY KEY (bus, name));
        CREATE TABLE eventbridge_targets (
            bus TEXT NOT NULL, rule TEXT NOT NULL, id TEXT NOT NULL, config TEXT NOT NULL,
            PRIMARY KEY (bus, rule, id));
        CREATE TABLE eventbridge_invocations (
            id INTEGER PRIMARY KEY AUTOINCREMENT, bus TEXT NOT NULL, rule TEXT NOT NULL, target TEXT NOT NULL,
            event_id TEXT NOT NULL, at REAL NOT NULL, status TEXT NOT NULL, attempt INTEGER NOT NULL,
            message TEXT NOT NULL);
        CREATE INDEX eventbridge_invocations_by_rule ON eventbridge_invocations (bus, rule, id);
        CREATE TABLE eventbridge_dead_letters (
            id INTEGER PRIMARY KEY AUTOINCREMENT, bus TEXT NOT NULL, rule TEXT NOT NULL, target TEXT NOT NULL,
            target_arn TEXT NOT NULL, dlq_arn TEXT NOT NULL, event TEXT NOT NULL, error_code TEXT NOT NULL,
            error_message TEXT NOT NULL, exhausted TEXT NOT NULL, retries INTEGER NOT NULL, at REAL NOT NULL);
        """,
    ),
    Migration(
        "runner_eventbridge",
        2,
        """
        CREATE TABLE scheduler_schedules (
            grp TEXT NOT NULL, name TEXT NOT NULL, arn TEXT NOT NULL, expression TEXT NOT NULL,
            timezone TEXT NOT NULL, start_date REAL, end_date REAL, description TEXT NOT NULL,
            state TEXT NOT NULL, target TEXT NOT NULL, win TEXT NOT NULL, after_completion TEXT NOT NULL,
            created_at REAL NOT NULL, modified_at REAL NOT NULL, last_due REAL, PRIMARY KEY (grp, name));
        """,
    ),
]

_NAME = re.compile(r"^[.\-_A-Za-z0-9]{1,64}$")
MAX_TAGS = 50
PutEvents = Callable[[dict[str, Any]], None]


def rule_arn(config: Config, bus: str, name: str) -> str:
    path = name if bus == BUS else f"{bus}/{name}"
    return f"arn:aws:events:{config.region}:{config.account_id}:rule/{path}"


def bus_arn(config: Config, bus: str = BUS) -> str:
    return f"arn:aws:events:{config.region}:{config.account_id}:event-bus/{bus}"


def bus_name(config: Config, given: Any) -> str:
    """The event bus a request names (a name or an ARN; none: the default); only the default
    bus exists."""
    if given is None or given == "":
        return BUS
    text = str(given)
    name = text.rsplit("/", 1)[-1] if text.startswith("arn:") else text
    if name != BUS or (text.startswith("arn:") and text != bus_arn(config)):
        raise ResourceNotFoundException(f"Event bus {name} does not exist.")
    return BUS


def _rule_name(value: Any, field: str = "Name") -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationException(
            f"1 validation error detected: Value {value!r} at '{field.lower()}' failed to satisfy "
            "constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ "
            "(1 to 64 characters)"
        )
    return value


def _no_rule(name: str, bus: str) -> AwsError:
    return ResourceNotFoundException(f"Rule {name} does not exist on EventBus {bus}.")


def _existing(store: data.Reader, config: Config, params: dict[str, Any], field: str = "Name") -> data.Rule:
    bus = bus_name(config, params.get("EventBusName"))
    name = _rule_name(params.get(field), field)
    found = data.rule(store, bus, name)
    if found is None:
        raise _no_rule(name, bus)
    return found


def parse_expression(
    expression: str, tz: str = "UTC", minute: float = 60.0, at: bool = False
) -> schedule.Schedule:
    """The schedule of an expression (``rate()``, ``cron()`` in ``tz``, and ``at()`` when
    ``at``; a rate's minute lasts ``minute`` seconds), read by the one parser Application Auto
    Scaling's scheduled actions use too; ValueError if it is refused."""
    if not expression.startswith(("rate(", "cron(", *(("at(",) if at else ()))):
        raise ValueError(f"{expression!r} is not {'at(...), ' if at else ''}rate(...) or cron(...)")
    parsed = schedule.parse(expression, tz)
    if parsed.kind == "rate":
        return replace(parsed, period=parsed.period * minute / 60.0)
    return parsed


def rule_schedule(expression: str, minute: float = 60.0) -> schedule.Schedule:
    """The schedule of a rule's ``ScheduleExpression`` (``rate()`` or ``cron()`` in UTC)."""
    return parse_expression(expression, "UTC", minute)


def _tags(raw: Any) -> list[dict[str, str]]:
    tags = [{"Key": str(t["Key"]), "Value": str(t.get("Value", ""))} for t in raw or []]
    if len(tags) > MAX_TAGS:
        raise ValidationException(f"A rule can have at most {MAX_TAGS} tags.")
    return tags


# -- rules --------------------------------------------------------------------------------------
async def put_rule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus = bus_name(config, params.get("EventBusName"))
    name = _rule_name(params.get("Name"))
    text, expression = params.get("EventPattern"), params.get("ScheduleExpression")
    if not text and not expression:
        raise ValidationException("Parameter(s) EventPattern or ScheduleExpression must be specified.")
    if text:
        try:
            pattern.parse(text)
        except pattern.PatternError as e:
            raise InvalidEventPatternException(f"Event pattern is not valid. Reason: {e}") from None
    if expression:
        try:
            rule_schedule(str(expression))
        except ValueError:
            raise ValidationException("Parameter ScheduleExpression is not valid.") from None
    found = data.rule(store, bus, name)
    row = data.Rule(
        bus,
        name,
        rule_arn(config, bus, name),
        text or None,
        expression or None,
        params.get("State") or "ENABLED",
        params.get("Description") or "",
        params.get("RoleArn") or "",
        tuple(_tags(params.get("Tags"))) if found is None else found.tags,
        found.created_at if found else time.time(),
        config.account_id,
        found.last_fired if found else None,
    )
    async with store.transaction() as tx:
        data.put_rule(tx, row)
    return {"RuleArn": row.arn}


def _rule_shape(r: data.Rule, full: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"Name": r.name, "Arn": r.arn, "State": r.state, "EventBusName": r.bus}
    for key, value in (
        ("EventPattern", r.pattern),
        ("ScheduleExpression", r.schedule),
        ("Description", r.description),
        ("RoleArn", r.role_arn),
    ):
        if value:
            out[key] = value
    if full:
        out["CreatedBy"] = r.created_by
    return out


async def describe_rule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    return _rule_shape(_existing(store, config, params), full=True)


async def list_rules(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus = bus_name(config, params.get("EventBusName"))
    rows = [_rule_shape(r) for r in data.rules(store, bus, str(params.get("NamePrefix") or ""))]
    chunk, token = page(
        rows, params, ValidationException, default=100, maximum=100, token_key="NextToken", max_key="Limit"
    )
    return {"Rules": chunk, **({"NextToken": token} if token else {})}


async def list_rule_names_by_target(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus = bus_name(config, params.get("EventBusName"))
    arn = params.get("TargetArn")
    names = [
        r.name
        for r in data.rules(store, bus)
        if any(t.config.get("Arn") == arn for t in data.targets_of(store, bus, r.name))
    ]
    chunk, token = page(
        names, params, ValidationException, default=100, maximum=100, token_key="NextToken", max_key="Limit"
    )
    return {"RuleNames": chunk, **({"NextToken": token} if token else {})}


async def delete_rule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus = bus_name(config, params.get("EventBusName"))
    name = _rule_name(params.get("Name"))
    async with store.transaction() as tx:
        if data.rule(tx, bus, name) is None:
            return {}  # as EventBridge: deleting a rule that is not there succeeds
        if data.targets_of(tx, bus, name):
            raise ValidationException("Rule can't be deleted since it has targets.")
        data.delete_rule(tx, bus, name)
    return {}


async def _set_state(store: Store, config: Config, params: dict[str, Any], state: str) -> dict[str, Any]:
    async with store.transaction() as tx:
        found = _existing(tx, config, params)
        data.put_rule(tx, replace(found, state=state))
    return {}


async def enable_rule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    return await _set_state(store, config, params, "ENABLED")


async def disable_rule(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    return await _set_state(store, config, params, "DISABLED")


# -- targets -------------------------------------------------------------------------------------
def check_ecs_target(store: Store, config: Config, call: Call | None, target: dict[str, Any]) -> None:
    """The task definition of an ECS target exists and the caller may run it on the cluster."""
    ecs = target["EcsParameters"]
    ident = ecs["TaskDefinitionArn"]
    try:
        taskdefs.definition(store, config, ident)
    except AwsError:
        raise ValidationException(
            f"Task definition {ident} of target {target['Id']} does not exist."
        ) from None
    if call is None:
        return
    request = {"taskDefinition": ident, "cluster": targets.cluster_of(target["Arn"])}
    try:
        hostaccess.check(store, config, call, request)
    except AccessDeniedException:
        raise
    except AwsError as e:
        raise ValidationException(f"Target {target['Id']}: {e.message}") from None


async def put_targets(
    store: Store, config: Config, params: dict[str, Any], call: Call | None = None
) -> dict[str, Any]:
    found = _existing(store, config, params, "Rule")
    given = list(params.get("Targets") or [])
    ids = [t.get("Id") for t in given]
    if len(set(ids)) != len(ids):
        raise ValidationException("Targets of one request must have different Ids.")
    for t in given:
        try:
            targets.check_target(t)
            transform.check_target_input(t)
        except ValueError as e:
            raise ValidationException(str(e)) from None
        check_ecs_target(store, config, call, t)
    async with store.transaction() as tx:
        current = {t.id for t in data.targets_of(tx, found.bus, found.name)}
        if len(current | set(ids)) > targets.MAX_TARGETS:
            raise LimitExceededException(
                "The requested resource exceeds the maximum number allowed "
                f"({targets.MAX_TARGETS} targets per rule)."
            )
        data.put_targets(tx, found.bus, found.name, given)
    return {"FailedEntryCount": 0, "FailedEntries": []}


async def remove_targets(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    found = _existing(store, config, params, "Rule")
    ids = [str(i) for i in params.get("Ids") or []]
    async with store.transaction() as tx:
        current = {t.id for t in data.targets_of(tx, found.bus, found.name)}
        data.delete_targets(tx, found.bus, found.name, [i for i in ids if i in current])
    failed = [
        {
            "TargetId": i,
            "ErrorCode": "ResourceNotFoundException",
            "ErrorMessage": f"Target {i} does not exist on rule {found.name}.",
        }
        for i in ids
        if i not in current
    ]
    return {"FailedEntryCount": len(failed), "FailedEntries": failed}


async def list_targets(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    found = _existing(store, config, params, "Rule")
    rows = [dict(t.config) for t in data.targets_of(store, found.bus, found.name)]
    chunk, token = page(
        rows, params, ValidationException, default=100, maximum=100, token_key="NextToken", max_key="Limit"
    )
    return {"Targets": chunk, **({"NextToken": token} if token else {})}


# -- events --------------------------------------------------------------------------------------
def _entry_event(config: Config, entry: dict[str, Any]) -> dict[str, Any]:
    """The event of one PutEvents entry; ValueError(code, message) for one EventBridge refuses."""
    for key in ("Source", "DetailType", "Detail"):
        if not entry.get(key):
            raise ValueError(
                "InvalidArgument", f"Parameter {key} is not valid. Reason: {key} is a required argument."
            )
    if str(entry["Source"]).startswith("aws."):
        raise ValueError("NotAuthorizedForSourceException", "Not authorized for the source.")
    try:
        detail = json.loads(entry["Detail"])
    except ValueError:
        detail = None
    if not isinstance(detail, dict):
        raise ValueError("MalformedDetail", "Detail is malformed.")
    try:
        bus_name(config, entry.get("EventBusName"))
    except AwsError as e:
        raise ValueError("InvalidArgument", e.message) from None
    when = entry.get("Time")
    return envelope.envelope(
        str(uuid.uuid4()),
        str(entry["DetailType"]),
        str(entry["Source"]),
        detail,
        entry.get("Resources") or [],
        config.account_id,
        config.region,
        float(when) if isinstance(when, (int, float)) else time.time(),
    )


async def put_events(
    store: Store, config: Config, params: dict[str, Any], bus: PutEvents | None = None
) -> dict[str, Any]:
    results: list[dict[str, str]] = []
    for entry in params.get("Entries") or []:
        try:
            event = _entry_event(config, entry)
        except ValueError as e:
            code, message = e.args
            results.append({"ErrorCode": code, "ErrorMessage": message})
            continue
        if bus is not None:
            bus(event)
        results.append({"EventId": event["id"]})
    return {"FailedEntryCount": sum(1 for r in results if "ErrorCode" in r), "Entries": results}


async def test_event_pattern(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    try:
        checked = pattern.parse(str(params.get("EventPattern")))
    except pattern.PatternError as e:
        raise InvalidEventPatternException(f"Event pattern is not valid. Reason: {e}") from None
    try:
        event = json.loads(str(params.get("Event")))
    except ValueError:
        raise ValidationException("Parameter Event is not valid.") from None
    missing = [
        k
        for k in ("id", "account", "source", "time", "region", "detail-type")
        if not isinstance(event, dict) or k not in event
    ]
    if missing:
        raise ValidationException(f"Parameter Event is not valid: it has no {', '.join(missing)}.")
    return {"Result": pattern.matches(checked, event)}


# -- the bus and tags ---------------------------------------------------------------------------
async def describe_event_bus(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    name = bus_name(config, params.get("Name"))
    return {"Name": name, "Arn": bus_arn(config, name)}


async def list_event_buses(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    shown = [{"Name": BUS, "Arn": bus_arn(config)}] if BUS.startswith(params.get("NamePrefix") or "") else []
    return {"EventBuses": shown}


def _rule_of_arn(store: data.Reader, arn: Any) -> data.Rule:
    found = data.rule_by_arn(store, str(arn))
    if found is None:
        name = str(arn).rsplit("/", 1)[-1]
        raise _no_rule(name, BUS)
    return found


async def _retag(store: Store, arn: Any, change: Callable[[dict[str, str]], None]) -> dict[str, Any]:
    async with store.transaction() as tx:
        found = _rule_of_arn(tx, arn)
        tags = {t["Key"]: t["Value"] for t in found.tags}
        change(tags)
        if len(tags) > MAX_TAGS:
            raise ValidationException(f"A rule can have at most {MAX_TAGS} tags.")
        data.put_rule(tx, replace(found, tags=tuple({"Key": k, "Value": v} for k, v in tags.items())))
    return {}


async def tag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    new = {t["Key"]: t["Value"] for t in _tags(params.get("Tags"))}
    return await _retag(store, params.get("ResourceARN"), lambda tags: tags.update(new))


async def untag_resource(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    gone = set(params.get("TagKeys") or [])

    def drop(tags: dict[str, str]) -> None:
        for k in gone:
            tags.pop(k, None)

    return await _retag(store, params.get("ResourceARN"), drop)


async def list_tags(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": [dict(t) for t in _rule_of_arn(store, params.get("ResourceARN")).tags]}


# -- Dockyard's own ------------------------------------------------------------------------------
def _source(config: Config, params: dict[str, Any]) -> tuple[str, str | None]:
    """(bus, rule) a Dockyard listing names: ``Rule`` on ``EventBusName``, or ``Schedule``
    (EventBridge Scheduler's, in group ``GroupName``)."""
    if params.get("Schedule") is not None:
        return f"scheduler/{params.get('GroupName') or 'default'}", str(params["Schedule"])
    name = params.get("Rule")
    return bus_name(config, params.get("EventBusName")), None if name is None else str(name)


async def list_invocations(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus, name = _source(config, params)
    if name is not None and params.get("Schedule") is None:
        _existing(store, config, params, "Rule")
    rows = data.invocations(store, bus, name)
    return {
        "Invocations": [
            {
                "Rule": i.rule,
                "TargetId": i.target,
                "EventId": i.event_id,
                "Time": i.at,
                "Status": i.status,
                "Attempt": i.attempt,
                "Message": i.message,
            }
            for i in rows
        ]
    }


async def list_dead_letters(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    bus, name = _source(config, params)
    rows = data.dead_letters(store, bus, name)
    return {
        "DeadLetters": [
            {
                "Id": d.id,
                "Time": d.at,
                "Event": dict(d.event),
                "DeadLetterArn": d.dlq_arn,
                "Attributes": {
                    "RULE_ARN": rule_arn(config, d.bus, d.rule),
                    "TARGET_ARN": d.target_arn,
                    "TARGET_ID": d.target,
                    "ERROR_CODE": d.error_code,
                    "ERROR_MESSAGE": d.error_message,
                    "EXHAUSTED_RETRY_CONDITION": d.exhausted,
                    "RETRY_ATTEMPTS": d.retries,
                },
            }
            for d in rows
        ]
    }


def _source_arn(config: Config, bus: str, name: str) -> str:
    if bus.startswith("scheduler/"):
        group = bus.split("/", 1)[1]
        return f"arn:aws:scheduler:{config.region}:{config.account_id}:schedule/{group}/{name}"
    return rule_arn(config, bus, name)


def operations(bus: PutEvents | None) -> dict[str, Callable[..., Any]]:
    """Operation name -> ``async fn(store, config, params, call)``; PutEvents hands its events
    to ``bus``."""

    def plain(fn: Callable[..., Any]) -> Callable[..., Any]:
        async def op(
            store: Store, config: Config, params: dict[str, Any], call: Call | None
        ) -> dict[str, Any]:
            return await fn(store, config, params)

        return op

    async def targets_op(
        store: Store, config: Config, params: dict[str, Any], call: Call | None
    ) -> dict[str, Any]:
        return await put_targets(store, config, params, call)

    async def events_op(
        store: Store, config: Config, params: dict[str, Any], call: Call | None
    ) -> dict[str, Any]:
        return await put_events(store, config, params, bus)

    ops = {
        "PutRule": put_rule,
        "DescribeRule": describe_rule,
        "ListRules": list_rules,
        "DeleteRule": delete_rule,
        "EnableRule": enable_rule,
        "DisableRule": disable_rule,
        "ListRuleNamesByTarget": list_rule_names_by_target,
        "RemoveTargets": remove_targets,
        "ListTargetsByRule": list_targets,
        "TestEventPattern": test_event_pattern,
        "DescribeEventBus": describe_event_bus,
        "ListEventBuses": list_event_buses,
        "TagResource": tag_resource,
        "UntagResource": untag_resource,
        "ListTagsForResource": list_tags,
        "ListRuleInvocations": list_invocations,
        "ListDeadLetters": list_dead_letters,
    }
    return {**{k: plain(v) for k, v in ops.items()}, "PutTargets": targets_op, "PutEvents": events_op}
