"""Dockyard's metric store: bounded in-memory time series at CloudWatch's high resolution.

A series is (namespace, metric name, dimensions); each holds one :class:`Agg` per 10 s bucket
(``RESOLUTION``) for ``RETENTION`` seconds (3 h, CloudWatch's first tier), at most
``MAX_SERIES`` series (the oldest-written series is dropped past that). An :class:`Agg` is what
CloudWatch's statistics need: SampleCount, Sum, Minimum, Maximum, plus either the values
(custom metrics, at most ``MAX_VALUES`` a bucket) or Envoy's histogram buckets (latency), from
which percentiles (``p99``) are interpolated. Nothing is written to disk: at 20 sidecars a flush
every 10 s is ~1,000 points/s that the state store would have to commit (docs/telemetry.md).

Pure and synchronous: the caller passes the time; reads never mutate.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

__all__ = ["MAX_SERIES", "RESOLUTION", "RETENTION", "Agg", "Key", "Store", "key", "percentile", "statistic"]

RESOLUTION = 10
RETENTION = 3 * 3600
MAX_SERIES = 20_000
MAX_VALUES = 1_000

Key = tuple[str, str, tuple[tuple[str, str], ...]]


def key(namespace: str, name: str, dimensions: Mapping[str, str]) -> Key:
    return namespace, name, tuple(sorted(dimensions.items()))


@dataclass
class Agg:
    """The samples of one bucket (or of several merged)."""

    count: float = 0.0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: list[float] = field(default_factory=list)  # sorted
    buckets: dict[float, float] = field(default_factory=dict)  # upper bound -> count (not cumulative)
    unit: str = "None"

    def add(self, value: float, count: float = 1.0) -> None:
        self.count += count
        self.total += value * count
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        if len(self.values) < MAX_VALUES:
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
        for bound, n in buckets.items():
            if n:
                self.buckets[bound] = self.buckets.get(bound, 0.0) + n
        bounds = sorted(b for b, n in buckets.items() if n)
        if bounds:
            lower = _lower(bounds[0], sorted(buckets))
            self.minimum = min(self.minimum, lower)
            self.maximum = max(self.maximum, bounds[-1] if math.isfinite(bounds[-1]) else total / count)

    def merge(self, other: Agg) -> None:
        self.count += other.count
        self.total += other.total
        self.minimum = min(self.minimum, other.minimum)
        self.maximum = max(self.maximum, other.maximum)
        for v in other.values[: MAX_VALUES - len(self.values)]:
            bisect.insort(self.values, v)
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
    if agg.values and (not agg.buckets):
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


class Store:
    """The series, each a deque of ``(bucket start, Agg)`` in time order."""

    def __init__(
        self, resolution: int = RESOLUTION, retention: int = RETENTION, max_series: int = MAX_SERIES
    ) -> None:
        self.resolution = resolution
        self.retention = retention
        self.max_series = max_series
        self._series: OrderedDict[Key, deque[tuple[int, Agg]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._series)

    def bucket(self, series: Key, ts: float) -> Agg:
        """The Agg of the bucket of ``ts`` in ``series`` (made when missing), for the caller
        to add to."""
        start = int(ts // self.resolution * self.resolution)
        points = self._series.get(series)
        if points is None:
            points = self._series[series] = deque()
            while len(self._series) > self.max_series:
                self._series.popitem(last=False)
        else:
            self._series.move_to_end(series)
        while points and points[0][0] <= start - self.retention:
            points.popleft()
        if points and points[-1][0] == start:
            return points[-1][1]
        agg = Agg()
        if points and points[-1][0] > start:  # late sample: find or make its bucket
            starts = [p[0] for p in points]
            i = bisect.bisect_left(starts, start)
            if i < len(points) and points[i][0] == start:
                return points[i][1]
            points.insert(i, (start, agg))
            return agg
        points.append((start, agg))
        return agg

    def keys(self) -> Iterator[Key]:
        return iter(list(self._series))

    def points(self, series: Key, start: float, end: float) -> list[tuple[int, Agg]]:
        """The buckets of ``series`` that start in ``[start, end)``."""
        return [(t, a) for t, a in self._series.get(series, ()) if start <= t < end]

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
            points = self._series[k]
            while points and points[0][0] <= edge:
                points.popleft()
            if not points:
                del self._series[k]


def merged(aggs: Iterable[Agg]) -> Agg:
    out = Agg()
    for a in aggs:
        out.merge(a)
    return out
