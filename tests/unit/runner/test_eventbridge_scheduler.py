"""EventBridge Scheduler's timing, pure: due times of at(), rate() and cron() schedules in a time
zone within their start and end dates, and the offsets of flexible time windows."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from runner import data
from runner.eventbridge.scheduler import due_after, window_offset

PARIS = ZoneInfo("Europe/Paris")
CREATED = dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC).timestamp()  # a Friday, before the DST change
BASE = data.Schedule(
    "default",
    "s",
    "arn:aws:scheduler:us-east-1:000000000000:schedule/default/s",
    "rate(5 minutes)",
    "UTC",
    None,
    None,
    "",
    "ENABLED",
    {},
    {"Mode": "OFF"},
    "NONE",
    CREATED,
    CREATED,
)


def test_a_rate_counts_from_the_creation_or_the_start_date() -> None:
    assert due_after(BASE, CREATED) == CREATED + 300
    assert due_after(BASE, CREATED + 300) == CREATED + 600
    start = CREATED + 3600
    assert due_after(replace(BASE, start_date=start), CREATED) == start
    assert due_after(BASE, CREATED, minute=2.0) == CREATED + 10  # a 2 s minute


def test_an_end_date_ends_it() -> None:
    s = replace(BASE, end_date=CREATED + 700)
    assert due_after(s, CREATED + 300) == CREATED + 600
    assert due_after(s, CREATED + 600) is None


def test_cron_is_read_in_its_time_zone_across_a_dst_change() -> None:
    s = replace(BASE, expression="cron(30 2 ? * MON-FRI *)", timezone="Europe/Paris")
    due = due_after(s, CREATED)
    local = dt.datetime.fromtimestamp(due or 0, PARIS)
    # Saturday and Sunday are skipped; Monday 30 March 2026 02:30 is summer time (UTC+2)
    assert (local.weekday(), local.hour, local.minute, local.utcoffset()) == (0, 2, 30, dt.timedelta(hours=2))


def test_at_fires_once_in_its_time_zone() -> None:
    s = replace(BASE, expression="at(2026-03-28T09:00:00)", timezone="America/New_York")
    due = due_after(s, CREATED)
    assert due == dt.datetime(2026, 3, 28, 13, 0, tzinfo=dt.UTC).timestamp()
    assert due_after(s, due or 0) is None


def test_a_bad_expression_is_never_due() -> None:
    assert due_after(replace(BASE, expression="rate(0 minutes)"), CREATED) is None


def test_a_flexible_window_offset_stays_inside_and_is_stable() -> None:
    offsets = [window_offset(BASE.arn, CREATED + 300 * i, 900.0) for i in range(200)]
    assert all(0 <= o < 900 for o in offsets)
    assert len(set(offsets)) > 150  # spread
    assert window_offset(BASE.arn, CREATED, 900.0) == window_offset(BASE.arn, CREATED, 900.0)
    assert window_offset(BASE.arn, CREATED, 0.0) == 0.0
