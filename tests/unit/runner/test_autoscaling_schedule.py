"""AWS schedule expressions (pure): at(), rate(), cron() with AWS's six fields, in a time zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from runner.autoscaling.schedule import next_after, parse

UTC = dt.UTC


def ts(*args: int, tz: str = "UTC") -> float:
    return dt.datetime(*args, tzinfo=ZoneInfo(tz)).timestamp()  # type: ignore[misc]


def test_at_fires_once_in_its_time_zone():
    s = parse("at(2026-12-24T18:00:00)", "Europe/Paris")
    assert next_after(s, ts(2026, 12, 1)) == ts(2026, 12, 24, 17, 0)  # 18:00 in Paris is 17:00 UTC
    assert next_after(s, ts(2026, 12, 25)) is None


def test_rate_counts_from_its_start():
    s = parse("rate(5 minutes)")
    start = ts(2026, 1, 1, 10, 0)
    assert next_after(s, start, anchor=start) == start + 300
    assert next_after(s, start + 301, anchor=start) == start + 600
    assert parse("rate(1 hour)").period == 3600 and parse("rate(2 days)").period == 2 * 86400


def test_cron_every_weekday_morning():
    s = parse("cron(30 8 ? * MON-FRI *)", "America/New_York")
    friday_evening = ts(2026, 12, 4, 20, 0, tz="America/New_York")  # a Friday
    assert next_after(s, friday_evening) == ts(2026, 12, 7, 8, 30, tz="America/New_York")  # Monday


def test_cron_day_numbers_are_sun_1_to_sat_7_and_years_bound_it():
    s = parse("cron(0 12 ? * 1 2027)")  # Sundays at noon, in 2027 only
    assert next_after(s, ts(2026, 12, 1)) == ts(2027, 1, 3, 12, 0)  # the first Sunday of 2027
    assert next_after(s, ts(2027, 12, 31)) is None


def test_cron_last_day_nearest_weekday_and_nth_weekday():
    assert next_after(parse("cron(0 0 L * ? *)"), ts(2027, 2, 1)) == ts(2027, 2, 28)
    # the 15th of 2026-11 is a Sunday: 15W is Monday the 16th
    assert next_after(parse("cron(0 9 15W * ? *)"), ts(2026, 11, 1)) == ts(2026, 11, 16, 9, 0)
    # 3#2: the second Tuesday; 6L: the last Friday
    assert next_after(parse("cron(0 9 ? * 3#2 *)"), ts(2026, 12, 1)) == ts(2026, 12, 8, 9, 0)
    assert next_after(parse("cron(0 9 ? * 6L *)"), ts(2026, 12, 1)) == ts(2026, 12, 25, 9, 0)


def test_steps_lists_and_names():
    s = parse("cron(0/15 9-17 ? JAN,JUL MON *)")
    assert next_after(s, ts(2027, 1, 4, 9, 50)) == ts(2027, 1, 4, 10, 0)  # 2027-01-04 is a Monday
    assert s.minutes == {0, 15, 30, 45}


@pytest.mark.parametrize(("expression", "says"), [
    ("cron(0 12 * * * *)", "exactly one of day-of-month and day-of-week"),
    ("cron(0 12 ? * MON)", "6 fields"),
    ("cron(61 12 ? * MON *)", "outside 0-59"),
    ("cron(0 12 ? * FUNDAY *)", "not a number"),
    ("rate(1 minutes)", "singular"),
    ("rate(5 minute)", "singular"),
    ("rate(0 minutes)", "singular"),
    ("every(5 minutes)", "is not at"),
    ("at(2026-13-01T00:00:00)", "month"),
])
def test_bad_expressions_say_what_is_wrong(expression, says):
    with pytest.raises(ValueError, match=says):
        parse(expression)


def test_an_unknown_time_zone_is_refused():
    with pytest.raises(ValueError, match="Unknown time zone"):
        parse("rate(5 minutes)", "Mars/Olympus")
