"""The metric store (``mesh.telemetry.metrics_store``): buckets, statistics, percentiles from
values and from Envoy's histograms, retention and the series bound."""

from __future__ import annotations

import math

import pytest

from mesh.telemetry.metrics_store import Agg, Store, key, merged, percentile, statistic

K = key("Test", "Latency", {"Api": "orders"})


def test_samples_fall_in_10_second_buckets_and_periods_merge_them():
    store = Store()
    for ts, v in ((1000.0, 1), (1004.0, 2), (1012.0, 3), (1075.0, 4)):
        store.bucket(K, ts).add(v)
    assert [t for t, _ in store.points(K, 0, 2000)] == [1000, 1010, 1070]
    got = [(t, statistic(a, "Sum"), statistic(a, "SampleCount")) for t, a in store.periods(K, 960, 1140, 60)]
    assert got == [(960, 6, 3), (1020, 4, 1)]  # aligned to the start; empty periods left out


def test_a_late_sample_lands_in_its_own_bucket():
    store = Store()
    store.bucket(K, 1030).add(1)
    store.bucket(K, 1005).add(2)
    store.bucket(K, 1031).add(3)
    assert [(t, a.total) for t, a in store.points(K, 0, 2000)] == [(1000, 2), (1030, 4)]


def test_statistics():
    a = Agg()
    for v in (4, 1, 7):
        a.add(v)
    names = ("SampleCount", "Sum", "Average", "Minimum", "Maximum")
    assert [statistic(a, s) for s in names] == [3, 12, 4, 1, 7]
    assert statistic(Agg(), "Sum") is None
    with pytest.raises(ValueError):
        statistic(a, "Median")


def test_percentiles_from_values_are_nearest_rank():
    a = Agg()
    for v in range(1, 101):
        a.add(float(v))
    assert (percentile(a, 50), percentile(a, 99), percentile(a, 100)) == (50, 99, 100)


def test_percentiles_from_histograms_interpolate_within_the_bucket():
    a = Agg()
    # 100 requests: 90 in (0, 10] ms, 10 in (10, 100] ms
    a.add_histogram(100, 1500, {10.0: 90, 100.0: 10})
    assert percentile(a, 50) == pytest.approx(50 / 90 * 10)
    assert percentile(a, 99) == pytest.approx(10 + 90 * 9 / 10)
    assert (a.minimum, a.maximum, statistic(a, "Average")) == (0.0, 100.0, 15.0)


def test_samples_above_the_last_bound_use_the_maximum():
    a = Agg()
    a.add_histogram(4, 4000, {10.0: 2, math.inf: 2})
    assert a.maximum == 1000  # the average: Envoy gives no upper bound past its last bucket
    assert 10 <= percentile(a, 99) <= 1000


def test_merging_histograms_adds_their_buckets():
    x, y = Agg(), Agg()
    x.add_histogram(2, 10, {5.0: 2})
    y.add_histogram(2, 100, {50.0: 2})
    m = merged([x, y])
    assert (m.count, m.total, m.buckets) == (4, 110, {5.0: 2, 50.0: 2})
    assert percentile(m, 25) == pytest.approx(2.5)


def test_retention_drops_old_buckets_and_empty_series():
    store = Store(retention=3600)
    store.bucket(K, 1000).add(1)
    other = key("Test", "Other", {})
    store.bucket(other, 4000).add(1)
    store.expire(4650)
    assert store.points(K, 0, 10_000) == [] and len(store) == 1
    # writing also trims a series' own past
    store.bucket(other, 8000).add(1)
    assert [t for t, _ in store.points(other, 0, 10_000)] == [8000]


def test_the_oldest_written_series_goes_past_the_bound():
    store = Store(max_series=2)
    a, b, c = (key("T", n, {}) for n in "abc")
    store.bucket(a, 1).add(1)
    store.bucket(b, 1).add(1)
    store.bucket(a, 2).add(1)  # a written again: b is now the oldest
    store.bucket(c, 3).add(1)
    assert set(store.keys()) == {a, c}


def test_sealed_buckets_keep_their_statistics_values_histograms_and_unit():
    store = Store()
    hist = key("T", "Time", {})
    store.bucket(K, 1000).add(5)
    store.bucket(K, 1000).unit = "Milliseconds"
    store.bucket(K, 1010).add_stats(2, 30, 10, 20)  # summary only
    store.bucket(hist, 1000).add_histogram(10, 100, {10.0: 10})
    for k in (K, hist):
        store.bucket(k, 1020).add_stats(1, 1, 1, 1)  # seals the buckets before
    first, second, _ = (a for _, a in store.points(K, 0, 2000))
    assert (first.values, statistic(first, "p50"), first.unit) == ([5.0], 5.0, "Milliseconds")
    assert [statistic(second, s) for s in ("SampleCount", "Sum", "Minimum", "Maximum")] == [2, 30, 10, 20]
    assert second.unit == "Milliseconds" and percentile(second, 50) is None
    [(_, h), _] = store.points(hist, 0, 2000)
    assert percentile(h, 50) == pytest.approx(5.0)
    # a late sample reopens its sealed bucket; one for a bucket never written is placed in order
    store.bucket(K, 1011).add(40)
    store.bucket(K, 990).add(1)
    assert [(t, a.count, a.total) for t, a in store.points(K, 0, 2000)] == [
        (990, 1, 1), (1000, 1, 5), (1010, 3, 70), (1020, 1, 1)]


def test_a_histogram_with_a_new_bound_keeps_the_sealed_ones_whole():
    store = Store()
    hist = key("T", "Time", {})
    store.bucket(hist, 1000).add_histogram(2, 10, {10.0: 2})
    store.bucket(hist, 1010).add_histogram(2, 200, {100.0: 2})
    store.bucket(hist, 1020).add_histogram(1, 1, {1.0: 1})
    store.bucket(hist, 1030).add_stats(0, 0, 0, 0)
    assert [a.buckets for _, a in store.points(hist, 0, 2000)][:3] == [{10.0: 2}, {100.0: 2}, {1.0: 1}]
