"""AWS schedule expressions, pure: ``at(yyyy-mm-ddThh:mm:ss)``, ``rate(N unit)`` and
``cron(minutes hours day-of-month month day-of-week year)`` in an IANA time zone, as
Application Auto Scaling's scheduled actions (and EventBridge) read them.

AWS's cron is not Unix cron: six fields with a year, day-of-week 1-7 = SUN-SAT (or the names),
exactly one of day-of-month and day-of-week ``?``; ``L`` (the month's last day, or ``5L`` its
last Thursday), ``W`` (``15W``: the weekday nearest the 15th, ``LW``), ``#`` (``3#2``: the
second Tuesday), lists, ranges and ``/`` steps. ``croniter`` reads Unix cron (a sixth field of
seconds, 0 = SUN, no year and no ``W``), so translating into it would lose fields; this module
is the ~150 lines AWS's grammar needs (docs/architecture.md). :func:`next_after` walks day by
day (at most five years ahead), so a sparse schedule costs a few thousand steps, not a
minute-by-minute scan.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Schedule", "next_after", "parse"]

_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {d: i + 1 for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT = {"minute": 60, "hour": 3600, "day": 86400}
HORIZON_DAYS = 5 * 366


@dataclass(frozen=True)
class Schedule:
    kind: str  # at | rate | cron
    tz: str
    at: float = 0.0  # at(): the instant
    period: float = 0.0  # rate(): seconds
    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    years: frozenset[int] | None = None  # None: every year
    dom: str = "?"  # the raw day-of-month field (days depend on the month)
    dow: str = "?"


def _values(field: str, lo: int, hi: int, names: dict[str, int] | None = None) -> frozenset[int]:
    out: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, raw = part.split("/", 1)
            if not raw.isdigit() or int(raw) < 1:
                raise ValueError(f"bad step {raw!r}")
            step = int(raw)
        if part in ("*", ""):
            first, last = lo, hi
        elif "-" in part:
            a, b = part.split("-", 1)
            first, last = _one(a, names), _one(b, names)
        else:
            first = _one(part, names)
            last = hi if step > 1 else first
        if not (lo <= first <= hi and lo <= last <= hi) or first > last:
            raise ValueError(f"{part!r} is outside {lo}-{hi}")
        out.update(range(first, last + 1, step))
    return frozenset(out)


def _one(text: str, names: dict[str, int] | None) -> int:
    if names and text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ValueError(f"{text!r} is not a number{' or a name' if names else ''}")
    return int(text)


def _check_day_field(field: str, lo: int, hi: int, names: dict[str, int] | None, special: str) -> None:
    if field == "?":
        return
    for part in field.split(","):
        if re.fullmatch(special, part, re.IGNORECASE):
            continue
        _values(part, lo, hi, names)


def parse(expression: str, tz: str = "UTC") -> Schedule:
    """The schedule of ``expression`` in ``tz``; ValueError saying what is wrong."""
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"Unknown time zone {tz!r}.") from None
    text = (expression or "").strip()
    if m := _AT.match(text):
        local = dt.datetime.fromisoformat(m.group(1)).replace(tzinfo=zone)
        return Schedule("at", tz, at=local.timestamp())
    if m := _RATE.match(text):
        n, unit = int(m.group(1)), m.group(2)
        if n < 1 or (n == 1) != (not unit.endswith("s")):
            raise ValueError(f"{text}: a rate of 1 takes a singular unit, more a plural one.")
        return Schedule("rate", tz, period=n * _UNIT[unit.rstrip("s")])
    if m := _CRON.match(text):
        fields = m.group(1).split()
        if len(fields) != 6:
            raise ValueError(
                f"{text}: cron() takes 6 fields (minutes hours day-of-month month day-of-week year)."
            )
        mi, ho, dom, mo, dow, yr = fields
        if (dom == "?") == (dow == "?"):
            raise ValueError(f"{text}: exactly one of day-of-month and day-of-week must be '?'.")
        try:
            _check_day_field(dom, 1, 31, None, r"L|LW|\d{1,2}W")
            _check_day_field(dow, 1, 7, _DAYS, r"[1-7]L|[1-7]#[1-5]|(SUN|MON|TUE|WED|THU|FRI|SAT)#[1-5]")
            return Schedule("cron", tz, minutes=_values(mi, 0, 59), hours=_values(ho, 0, 23),
                            months=_values(mo, 1, 12, _MONTHS),
                            years=None if yr in ("*", "?") else _values(yr, 1970, 2199), dom=dom, dow=dow)
        except ValueError as e:
            raise ValueError(f"{text}: {e}.") from None
    raise ValueError(f"{text!r} is not at(...), rate(...) or cron(...).")


def _aws_dow(day: dt.date) -> int:
    return (day.isoweekday() % 7) + 1  # SUN=1 ... SAT=7


def _day_matches(s: Schedule, day: dt.date) -> bool:
    if day.month not in s.months or (s.years is not None and day.year not in s.years):
        return False
    last = calendar.monthrange(day.year, day.month)[1]
    if s.dom != "?":
        for part in s.dom.split(","):
            p = part.upper()
            if p == "L" and day.day == last:
                return True
            if p.endswith("W"):
                target = last if p == "LW" else min(int(p[:-1]), last)
                want = dt.date(day.year, day.month, target)
                if want.weekday() == 5:  # Saturday: the Friday before, or the Monday after the 1st
                    want = want - dt.timedelta(days=1) if target > 1 else want + dt.timedelta(days=2)
                elif want.weekday() == 6:  # Sunday: the Monday after, or the Friday before the last
                    want = want + dt.timedelta(days=1) if target < last else want - dt.timedelta(days=2)
                if want == day:
                    return True
            elif p != "L" and day.day in _values(p, 1, 31):
                return True
        return False
    for part in s.dow.split(","):
        p = part.upper()
        if p.endswith("L"):
            if _aws_dow(day) == int(p[:-1]) and day.day + 7 > last:
                return True
        elif "#" in p:
            d, n = p.split("#")
            if _aws_dow(day) == _one(d, _DAYS) and (day.day - 1) // 7 + 1 == int(n):
                return True
        elif _aws_dow(day) in _values(p, 1, 7, _DAYS):
            return True
    return False


def next_after(s: Schedule, after: float, anchor: float = 0.0) -> float | None:
    """The first time the schedule fires strictly after ``after`` (None: never again).
    ``anchor`` is when a ``rate()`` schedule started (it fires at anchor + k x period)."""
    if s.kind == "at":
        return s.at if s.at > after else None
    if s.kind == "rate":
        k = max(0, int((after - anchor) // s.period) + 1)
        return anchor + k * s.period
    zone = ZoneInfo(s.tz or "UTC")
    start = dt.datetime.fromtimestamp(after, zone)
    day = start.date()
    for _ in range(HORIZON_DAYS):
        if _day_matches(s, day):
            for hour in sorted(s.hours):
                for minute in sorted(s.minutes):
                    moment = dt.datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)
                    if moment.timestamp() > after:
                        return moment.timestamp()
        day += dt.timedelta(days=1)
    return None
