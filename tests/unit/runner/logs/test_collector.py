"""The collector: a container's timestamped output into its stream, resumed without repeats."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path

from runner.logs.collector import Collector, split_line
from runner.logs.data import LogStore

LC = {
    "logDriver": "awslogs",
    "options": {"awslogs-group": "/ecs/g", "awslogs-stream-prefix": "p", "awslogs-create-group": "true"},
}


def stamp(second: int, text: str) -> bytes:
    return f"2026-12-02T10:00:{second:02d}.000000001Z {text}\n".encode()


class FakeEngine:
    """The output of each container: chunks cut anywhere, as Docker's frames may be."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.since: list[float | None] = []

    def __call__(self, url: str, cid: str, since: float | None) -> Iterator[bytes]:
        self.since.append(since)
        yield from self.chunks


def messages(store: LogStore) -> list[str]:
    group = store.group("/ecs/g")
    assert group is not None
    stream = store.stream(group.id, "p/web/t1")
    assert stream is not None
    return [
        e.message for e in store.stream_events(stream.id, start=None, end=None, from_head=True, limit=100)
    ]


async def _follow(store: LogStore, engine: FakeEngine) -> None:
    collector = Collector(store, follow=engine)
    assert await collector.prepare(LC) == ""
    await collector.follow("unix:///x", "c1", "t1", "web", LC)
    assert await collector.drained("c1", 10)
    assert collector._done == {}  # a follower done and stored is forgotten (memory stays bounded)
    assert await collector.drained("c1", 0)  # and counts as drained
    collector.close()


def test_output_lands_in_the_ecs_named_stream_line_by_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "l.db")
    data = stamp(1, "one") + stamp(2, "two") + stamp(3, "three")
    engine = FakeEngine([data[:10], data[10:50], data[50:]])
    asyncio.run(_follow(store, engine))
    assert messages(store) == ["one", "two", "three"]
    assert engine.since == [None]


def test_a_second_follow_resumes_after_the_last_stored_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "l.db")
    asyncio.run(_follow(store, FakeEngine([stamp(1, "one") + stamp(2, "two")])))
    again = FakeEngine([stamp(2, "two") + stamp(3, "three")])  # Docker's since is inclusive
    asyncio.run(_follow(store, again))
    assert messages(store) == ["one", "two", "three"]
    assert again.since[0] is not None and int(again.since[0]) == 1796205602


def test_a_missing_group_without_create_group_is_the_reason_a_container_cannot_start(tmp_path: Path) -> None:
    collector = Collector(LogStore(tmp_path / "l.db"), follow=FakeEngine([]))
    lc = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/none"}}
    assert "does not exist" in asyncio.run(collector.prepare(lc))
    assert asyncio.run(collector.prepare({"logDriver": "json-file"})) == ""


def test_a_line_keeps_dockers_time_and_loses_its_newline() -> None:
    ns, message = split_line(b"2026-12-02T10:00:01.5Z hello\r", 0)
    assert message == "hello" and ns % 1_000_000_000 == 500_000_000
    assert split_line(b"no stamp here", 42) == (42, "no stamp here")


def test_following_again_while_the_last_lines_are_unstored_starts_no_second_reader(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "l.db")
    release = threading.Event()

    def slow(url: str, cid: str, since: float | None) -> Iterator[bytes]:
        yield stamp(1, "one")
        release.wait(10)

    engine_calls: list[float | None] = []

    def engine(url: str, cid: str, since: float | None) -> Iterator[bytes]:
        engine_calls.append(since)
        yield from slow(url, cid, since)

    async def go() -> None:
        collector = Collector(store, follow=engine)
        await collector.prepare(LC)
        await collector.follow("", "c1", "t1", "web", LC)
        await collector.follow("", "c1", "t1", "web", LC)  # still following: a no-op
        release.set()
        assert await collector.drained("c1", 10)
        collector.close()

    asyncio.run(go())
    assert engine_calls == [None] and messages(store) == ["one"]
