"""The log store: streams in time order, group scans, retention and the global byte bound."""

from __future__ import annotations

from pathlib import Path

from runner.logs.data import EVENT_OVERHEAD, LogStore

DAY = 86_400_000


def _store(tmp_path: Path) -> tuple[LogStore, int, object]:
    store = LogStore(tmp_path / "logs.db")
    assert store.create_group("g") and not store.create_group("g")
    group = store.group("g")
    assert group is not None
    assert store.create_stream(group.id, "s") and not store.create_stream(group.id, "s")
    stream = store.stream(group.id, "s")
    return store, group.id, stream


def test_appended_events_are_read_in_time_order_from_the_head_or_the_tail(tmp_path: Path) -> None:
    store, gid, stream = _store(tmp_path)
    store.append(stream, [(3, "c"), (1, "a"), (2, "b")], cursor_ns=7)
    head = store.stream_events(stream.id, start=None, end=None, from_head=True, limit=2)
    assert [e.message for e in head] == ["a", "b"]
    tail = store.stream_events(stream.id, start=None, end=None, from_head=False, limit=2)
    assert [e.message for e in tail] == ["b", "c"]
    after = store.stream_events(
        stream.id, start=None, end=None, after=(head[-1].ts, head[-1].id), from_head=False, limit=10
    )
    assert [e.message for e in after] == ["c"]
    s = store.stream(gid, "s")
    assert (s.first_ms, s.last_ms, s.cursor_ns, s.seq) == (1, 3, 7, 1)
    assert s.stored_bytes == 3 * (1 + EVENT_OVERHEAD)


def test_a_group_scan_interleaves_streams_and_prefilters_on_needles(tmp_path: Path) -> None:
    store, gid, s1 = _store(tmp_path)
    store.create_stream(gid, "t")
    s2 = store.stream(gid, "t")
    store.append(s1, [(1, "ERROR a"), (3, "ok")])
    store.append(s2, [(2, "ERROR b")])
    scan = list(store.group_events(gid, start=None, end=None, after=None, stream_ids=None))
    assert [e.message for e in scan] == ["ERROR a", "ERROR b", "ok"]
    hits = list(store.group_events(gid, start=2, end=None, after=None, stream_ids=None, needles=["ERROR"]))
    assert [e.message for e in hits] == ["ERROR b"]
    only = list(store.group_events(gid, start=None, end=None, after=None, stream_ids=[s1.id]))
    assert [e.message for e in only] == ["ERROR a", "ok"]


def test_retention_drops_events_older_than_the_groups_days(tmp_path: Path) -> None:
    store, gid, stream = _store(tmp_path)
    now = 100 * DAY
    store.append(stream, [(now - 3 * DAY, "old"), (now - 1000, "new")])
    assert store.expire(now) == 0  # no retention: kept for ever
    store.set_retention("g", 1)
    assert store.expire(now) == 1
    left = store.stream_events(stream.id, start=None, end=None, from_head=True, limit=10)
    assert [e.message for e in left] == ["new"]
    assert store.stream(gid, "s").stored_bytes == 3 + EVENT_OVERHEAD
    assert store.stream(gid, "s").first_ms == now - 1000


def test_the_global_bound_drops_the_oldest_events_first(tmp_path: Path) -> None:
    store, _gid, stream = _store(tmp_path)
    store.append(stream, [(i, f"{i:04d}") for i in range(100)])
    per = 4 + EVENT_OVERHEAD
    assert store.total_bytes() == 100 * per
    assert store.trim(30 * per, batch=7) == 70
    assert store.total_bytes() == 30 * per
    left = store.stream_events(stream.id, start=None, end=None, from_head=True, limit=1)
    assert left[0].message == "0070"


def test_deleting_a_group_takes_its_streams_and_events(tmp_path: Path) -> None:
    store, gid, stream = _store(tmp_path)
    store.append(stream, [(1, "a")])
    assert store.delete_group("g") and not store.delete_group("g")
    assert store.group("g") is None and store.total_bytes() == 0
    assert list(store.group_events(gid, start=None, end=None, after=None, stream_ids=None)) == []


def test_events_for_a_stream_whose_group_went_are_not_stored(tmp_path: Path) -> None:
    store, _gid, stream = _store(tmp_path)
    store.delete_group("g")
    assert store.append(stream, [(1, "late")]) == -1
    assert store.total_bytes() == 0
    assert list(store.group_events(stream.group_id, start=None, end=None, after=None, stream_ids=None)) == []


def test_reads_stop_at_their_byte_bound_keeping_at_least_one_event(tmp_path: Path) -> None:
    store, _gid, stream = _store(tmp_path)
    store.append(stream, [(i, "x" * 100) for i in range(10)])
    per = 100 + EVENT_OVERHEAD
    head = store.stream_events(stream.id, start=None, end=None, from_head=True, limit=10, max_bytes=3 * per)
    assert [e.ts for e in head] == [0, 1, 2]
    tail = store.stream_events(stream.id, start=None, end=None, from_head=False, limit=10, max_bytes=2 * per)
    assert [e.ts for e in tail] == [8, 9]
    assert len(store.tail(stream.id, None, 10, max_bytes=1)) == 1
    assert [e.ts for e in store.tail(stream.id, head[-1].id, 10, max_bytes=2 * per)] == [3, 4]
