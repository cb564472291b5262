"""Dockyard's metric store: bounded in-memory time series at CloudWatch's high resolution.

A series is (namespace, metric name, dimensions); each holds one :class:`Agg` per 10 s bucket
(``RESOLUTION``) for ``RETENTION`` seconds (3 h, CloudWatch's first tier), at most
``MAX_SERIES`` series (the oldest-written series is dropped past that). An :class:`Agg` is what
CloudWatch's statistics need: SampleCount, Sum, Minimum, Maximum, plus either the values
(custom metrics, at most ``MAX_VALUES`` a bucket) or Envoy's histogram buckets (latency), from
which percentiles (``p99``) are interpolated. Once a newer bucket starts, a bucket is sealed
into flat arrays (:class:`_Series`: 40 bytes a bucket, ~43 KiB for a full series), only those
with values or histogram counts staying objects: the bound is ``MAX_SERIES`` full series.
Nothing is written to disk: at 20 sidecars a flush every 10 s is ~1,000 points/s that the state
store would have to commit (docs/telemetry.md).

Pure and synchronous: the caller passes the time; reads never mutate.
"""

from __future__ import annotations

import bisect
import math
from array import array
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

__all__ = ["MAX_SERIES", "RESOLUTION", "RETENTION", "Agg", "Key", "Store", "key", "percentile", "statistic"]

RESOLUTION = 10
RETENTION = 3 * 3600
MAX_SERIES = 5_000
MAX_VALUES = 1_000

Key = tuple[str, str, tuple[tuple[str, str], ...]]


def key(namespace: str, name: str, dimensions: Mapping[str, str]) -> Key:
    return namespace, name, tuple(sorted(dimensions.items()))


@dataclass(slots=True)
class Agg:
    """The samples of one bucket (or of several merged). ``values`` (sorted) and ``buckets``
    (Envoy's: upper bound -> count, not cumulative) are made only when a sample needs them:
    most buckets hold summary statistics only (slots, no empty containers: ~120 bytes)."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: list[float] | None = None
    buckets: dict[float, float] | None = None
    unit: str = "None"

    def add(self, value: float, count: float = 1.0) -> None:
        """A value (PutMetricData's ``Value``/``Values``): kept for percentiles, up to
        ``MAX_VALUES`` a bucket."""
        self.add_stats(count, value * count, value, value)
        if self.values is None:
            self.values = []
        for _ in range(min(int(count), MAX_VALUES - len(self.values))):
            bisect.insort(self.values, value)

    def add_stats(self, count: float, total: float, minimum: float, maximum: float) -> None:
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)

    def add_histogram(self, count: float, total: float, buckets: Mapping[float, float]) -> None:
        """Envoy's histogram delta: ``buckets`` maps each upper bound to the samples in it."""
        if count <= 0:
            return
        self.count += count
        self.total += total
        if self.buckets is None:
            self.buckets = {}
        for bound, n in buckets.items():
            if n:
                self.buckets[bound] = self.buckets.get(bound, 0.0) + n
        bounds = sorted(b for b, n in buckets.items() if n)
        if bounds:
            lower = _lower(bounds[0], sorted(buckets))
            self.minimum = min(self.minimum, lower)
            self.maximum = max(self.maximum, bounds[-1] if math.isfinite(bounds[-1]) else total / count)

    def merge(self, other: Agg) -> None:
        self.add_stats(other.count, other.total, other.minimum, other.maximum)
        if other.values:
            if self.values is None:
                self.values = []
            for v in other.values[: MAX_VALUES - len(self.values)]:
                bisect.insort(self.values, v)
        if other.buckets:
            if self.buckets is None:
                self.buckets = {}
            for b, n in other.buckets.items():
                self.buckets[b] = self.buckets.get(b, 0.0) + n
        if other.unit != "None":
            self.unit = other.unit


def _lower(bound: float, bounds: list[float]) -> float:
    i = bounds.index(bound)
    return bounds[i - 1] if i else 0.0


def percentile(agg: Agg, p: float) -> float | None:
    """The ``p``-th percentile (0-100): from the values when there are some, else interpolated
    in Envoy's histogram buckets, else None (only summary statistics were given)."""
    if agg.values and not agg.buckets:
        vals = agg.values
        rank = max(0, math.ceil(p / 100 * len(vals)) - 1)
        return vals[min(rank, len(vals) - 1)]
    if not agg.buckets:
        return None
    total = sum(agg.buckets.values())
    target = p / 100 * total
    seen = 0.0
    bounds = sorted(agg.buckets)
    lower = 0.0
    for b in bounds:
        n = agg.buckets[b]
        if seen + n >= target and n > 0:
            upper = b if math.isfinite(b) else max(lower, agg.maximum)
            return lower + (upper - lower) * ((target - seen) / n)
        seen += n
        lower = b if math.isfinite(b) else lower
    return lower


def statistic(agg: Agg, name: str) -> float | None:
    """CloudWatch statistic ``name`` (SampleCount, Sum, Average, Minimum, Maximum, pNN[.N])
    of ``agg``; None when it has no sample (or no way to say a percentile)."""
    if agg.count <= 0:
        return None
    if name == "SampleCount":
        return agg.count
    if name == "Sum":
        return agg.total
    if name == "Average":
        return agg.total / agg.count
    if name == "Minimum":
        return agg.minimum
    if name == "Maximum":
        return agg.maximum
    if name.startswith("p"):
        return percentile(agg, float(name[1:]))
    raise ValueError(f"unknown statistic {name}")


class _Series:
    """One series: its sealed buckets as flat arrays (40 bytes a bucket), in time order; the
    buckets that carry values or histogram counts (or that a late sample reopened) as
    :class:`Agg` in ``extra`` (which then wins over their array entry); the newest bucket,
    still written to, as ``live``."""

    __slots__ = ("bounds", "count", "extra", "high", "hist", "live", "low", "starts", "total", "unit")

    def __init__(self) -> None:
        self.starts = array("q")
        self.count, self.total, self.low, self.high = array("d"), array("d"), array("d"), array("d")
        self.extra: dict[int, Agg] = {}
        # a sealed histogram: its counts per bound of ``bounds`` (Envoy's bounds do not change)
        self.hist: dict[int, array[float]] = {}
        self.bounds: tuple[float, ...] = ()
        self.live: tuple[int, Agg] | None = None
        self.unit = "None"

    def seal(self) -> None:
        if self.live is None:
            return
        start, agg = self.live
        self.live = None
        self.starts.append(start)
        self.count.append(agg.count)
        self.total.append(agg.total)
        self.low.append(agg.minimum)
        self.high.append(agg.maximum)
        if agg.unit != "None":
            self.unit = agg.unit
        if agg.buckets and not agg.values:
            if not self.bounds or not agg.buckets.keys() <= set(self.bounds):
                for t, counts in self.hist.items():  # kept whole as objects: bounds change
                    self.extra[t] = self._unpack(t, counts)
                self.hist.clear()
                self.bounds = tuple(sorted(set(self.bounds) | agg.buckets.keys()))
            self.hist[start] = array("d", (agg.buckets.get(b, 0.0) for b in self.bounds))
        elif agg.values or agg.buckets:
            self.extra[start] = agg

    def _unpack(self, t: int, counts: array[float]) -> Agg:
        j = bisect.bisect_left(self.starts, t)
        agg = Agg(self.count[j], self.total[j], self.low[j], self.high[j], unit=self.unit)
        agg.buckets = {b: n for b, n in zip(self.bounds, counts, strict=True) if n}
        return agg

    def agg(self, i: int) -> Agg:
        t = self.starts[i]
        found = self.extra.get(t)
        if found is not None:
            return found
        agg = Agg(self.count[i], self.total[i], self.low[i], self.high[i], unit=self.unit)
        counts = self.hist.get(t)
        if counts is not None:
            agg.buckets = {b: n for b, n in zip(self.bounds, counts, strict=True) if n}
        return agg

    def reopen(self, start: int) -> Agg:
        """The Agg of an older bucket (made, in time order, when missing), for a late sample."""
        found = self.extra.get(start)
        if found is not None:
            return found
        i = bisect.bisect_left(self.starts, start)
        if i < len(self.starts) and self.starts[i] == start:
            agg = self.agg(i)
            self.hist.pop(start, None)
        else:
            agg = Agg()
            for column, value in ((self.starts, start), (self.count, 0.0), (self.total, 0.0),
                                  (self.low, math.inf), (self.high, -math.inf)):
                column.insert(i, value)  # type: ignore[attr-defined]
        self.extra[start] = agg
        return agg

    def trim(self, edge: float) -> None:
        """Drop the buckets that start at or before ``edge``."""
        k = bisect.bisect_right(self.starts, edge)
        if k:
            for column in (self.starts, self.count, self.total, self.low, self.high):
                del column[:k]
            for t in [t for t in self.extra if t <= edge]:
                del self.extra[t]
            for t in [t for t in self.hist if t <= edge]:
                del self.hist[t]
        if self.live is not None and self.live[0] <= edge:
            self.live = None

    def empty(self) -> bool:
        return not self.starts and self.live is None

    def points(self, start: float, end: float) -> list[tuple[int, Agg]]:
        lo, hi = bisect.bisect_left(self.starts, start), bisect.bisect_left(self.starts, end)
        out = [(self.starts[i], self.agg(i)) for i in range(lo, hi)]
        if self.live is not None and start <= self.live[0] < end:
            out.append(self.live)
        return out


class Store:
    """The series (:class:`_Series`) by key, the most recently written last."""

    def __init__(
        self, resolution: int = RESOLUTION, retention: int = RETENTION, max_series: int = MAX_SERIES
    ) -> None:
        self.resolution = resolution
        self.retention = retention
        self.max_series = max_series
        self._series: OrderedDict[Key, _Series] = OrderedDict()

    def __len__(self) -> int:
        return len(self._series)

    def bucket(self, series: Key, ts: float) -> Agg:
        """The Agg of the bucket of ``ts`` in ``series`` (made when missing), for the caller
        to add to now (a later call may seal it)."""
        start = int(ts // self.resolution * self.resolution)
        s = self._series.get(series)
        if s is None:
            s = self._series[series] = _Series()
            while len(self._series) > self.max_series:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(series)
        s.trim(start - self.retention)
        if s.live is not None and s.live[0] == start:
            return s.live[1]
        if s.live is None or start > s.live[0]:
            if s.starts and start <= s.starts[-1]:
                return s.reopen(start)
            s.seal()
            s.live = (start, Agg())
            return s.live[1]
        return s.reopen(start)

    def keys(self) -> Iterator[Key]:
        return iter(list(self._series))

    def points(self, series: Key, start: float, end: float) -> list[tuple[int, Agg]]:
        """The buckets of ``series`` that start in ``[start, end)``, oldest first."""
        s = self._series.get(series)
        return s.points(start, end) if s is not None else []

    def periods(self, series: Key, start: float, end: float, period: int) -> list[tuple[int, Agg]]:
        """The buckets of ``[start, end)`` merged per ``period`` (aligned to ``start``), the
        periods without data left out, oldest first."""
        out: dict[int, Agg] = {}
        base = int(start)
        for t, a in self.points(series, start, end):
            slot = base + (t - base) // period * period
            out.setdefault(slot, Agg()).merge(a)
        return sorted(out.items())

    def expire(self, now: float) -> None:
        """Drop the buckets past retention and the series left empty."""
        edge = now - self.retention
        for k in list(self._series):
            s = self._series[k]
            s.trim(edge)
            if s.empty():
                del self._series[k]


def merged(aggs: Iterable[Agg]) -> Agg:
    out = Agg()
    for a in aggs:
        out.merge(a)
    return out
