"""EventBridge's request checks that need no store: bus names, schedule expressions of rules and
schedules, and PutEvents entries."""

from __future__ import annotations

import pytest

from dockyard.aws.errors import ResourceNotFoundException
from dockyard.config import Config
from runner.eventbridge.api import _entry_event, bus_name, parse_expression, rule_schedule

CFG = Config()


def test_only_the_default_bus_exists_by_name_or_arn() -> None:
    assert bus_name(CFG, None) == bus_name(CFG, "default") == "default"
    assert bus_name(CFG, "arn:aws:events:us-east-1:000000000000:event-bus/default") == "default"
    for other in ("orders", "arn:aws:events:eu-west-1:000000000000:event-bus/default"):
        with pytest.raises(ResourceNotFoundException):
            bus_name(CFG, other)


def test_rules_take_rate_and_cron_and_schedules_at_too() -> None:
    assert rule_schedule("rate(5 minutes)").period == 300
    assert rule_schedule("rate(1 minute)", minute=2.0).period == 2.0
    assert rule_schedule("cron(0 12 ? * MON-FRI *)").kind == "cron"
    for bad in ("at(2030-01-01T00:00:00)", "rate(0 minutes)", "rate(1 minutes)", "cron(0 12 * * ?)", "daily"):
        with pytest.raises(ValueError):
            rule_schedule(bad)
    assert parse_expression("at(2030-01-01T00:00:00)", "Asia/Tokyo", at=True).kind == "at"
    with pytest.raises(ValueError):
        parse_expression("rate(5 minutes)", "Mars/Olympus", at=True)


def test_a_put_events_entry_becomes_an_event_in_the_envelope() -> None:
    event = _entry_event(
        CFG,
        {
            "Source": "my.app",
            "DetailType": "order",
            "Detail": '{"n": 1}',
            "Resources": ["arn:x"],
            "Time": 1764694800,
        },
    )
    assert {k: event[k] for k in ("source", "detail-type", "detail", "resources", "time", "account")} == {
        "source": "my.app",
        "detail-type": "order",
        "detail": {"n": 1},
        "resources": ["arn:x"],
        "time": "2025-12-02T17:00:00Z",
        "account": CFG.account_id,
    }


@pytest.mark.parametrize(
    "entry, code",
    [
        ({"DetailType": "x", "Detail": "{}"}, "InvalidArgument"),
        ({"Source": "aws.ecs", "DetailType": "x", "Detail": "{}"}, "NotAuthorizedForSourceException"),
        ({"Source": "a", "DetailType": "x", "Detail": "[]"}, "MalformedDetail"),
        ({"Source": "a", "DetailType": "x", "Detail": "{"}, "MalformedDetail"),
        ({"Source": "a", "DetailType": "x", "Detail": "{}", "EventBusName": "orders"}, "InvalidArgument"),
    ],
)
def test_bad_entries_get_their_error_codes(entry: dict, code: str) -> None:
    with pytest.raises(ValueError) as e:
        _entry_event(CFG, entry)
    assert e.value.args[0] == code
