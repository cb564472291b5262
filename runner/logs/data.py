"""The log store: log groups, streams and events in a SQLite database of their own.

The only module of :mod:`runner.logs` with SQL; callers get frozen dataclasses. The database is
``<data-dir>/runner/cwlogs.db`` (WAL, ``synchronous=NORMAL``: an event survives a crash of
the process, the last ones may not survive a power cut; the state store keeps its
``synchronous=FULL`` and never waits on log traffic). Why SQLite and not append-only files:
docs/logs.md ("Storage"), measured by ``bench/logs.py``.

Layout::

    log_groups (id, name UNIQUE, created_ms, retention_days, tags JSON)
    log_streams (id, group_id, name, created_ms, first_ms, last_ms, last_ingest_ms,
                 stored_bytes, seq, cursor_ns)          UNIQUE (group_id, name)
    log_events (id, group_id, stream_id, ts, ingest, message)
        INDEX (stream_id, ts, id)   GetLogEvents, a stream in time order
        INDEX (group_id, ts, id)    FilterLogEvents, a group's streams interleaved

An event's size is its message's UTF-8 bytes plus 26 (CloudWatch's accounting). Reads iterate
cursors and stop at their limits: nothing reads a whole stream into memory.

Every method is synchronous (a filter scan can take a while): callers run them in a thread
(``asyncio.to_thread``). Writes are serialised by one lock over one connection; each thread
reads on its own connection.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["EVENT_OVERHEAD", "Event", "LogGroup", "LogStore", "LogStream", "db_path", "event_size"]

EVENT_OVERHEAD = 26  # bytes CloudWatch counts per event besides its message

_SCHEMA = """
CREATE TABLE IF NOT EXISTS log_groups (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_ms INTEGER NOT NULL,
    retention_days INTEGER, tags TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS log_streams (
    id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL, name TEXT NOT NULL,
    created_ms INTEGER NOT NULL, first_ms INTEGER, last_ms INTEGER, last_ingest_ms INTEGER,
    stored_bytes INTEGER NOT NULL DEFAULT 0, seq INTEGER NOT NULL DEFAULT 0,
    cursor_ns INTEGER NOT NULL DEFAULT 0, UNIQUE (group_id, name));
CREATE TABLE IF NOT EXISTS log_events (
    id INTEGER PRIMARY KEY, group_id INTEGER NOT NULL, stream_id INTEGER NOT NULL,
    ts INTEGER NOT NULL, ingest INTEGER NOT NULL, message TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS log_events_stream ON log_events (stream_id, ts, id);
CREATE INDEX IF NOT EXISTS log_events_group ON log_events (group_id, ts, id);
"""


def db_path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "runner" / "cwlogs.db"


def event_size(message: str) -> int:
    return len(message.encode("utf-8", "surrogatepass")) + EVENT_OVERHEAD


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class LogGroup:
    id: int
    name: str
    created_ms: int
    retention_days: int | None
    tags: dict[str, str]
    stored_bytes: int


@dataclass(frozen=True)
class LogStream:
    id: int
    group_id: int
    name: str
    created_ms: int
    first_ms: int | None
    last_ms: int | None
    last_ingest_ms: int | None
    stored_bytes: int
    seq: int
    cursor_ns: int


@dataclass(frozen=True)
class Event:
    id: int
    stream_id: int
    ts: int
    ingest: int
    message: str


def _group(row: sqlite3.Row) -> LogGroup:
    return LogGroup(
        row["id"],
        row["name"],
        row["created_ms"],
        row["retention_days"],
        json.loads(row["tags"]),
        row["stored_bytes"] or 0,
    )


def _stream(row: sqlite3.Row) -> LogStream:
    return LogStream(
        row["id"],
        row["group_id"],
        row["name"],
        row["created_ms"],
        row["first_ms"],
        row["last_ms"],
        row["last_ingest_ms"],
        row["stored_bytes"],
        row["seq"],
        row["cursor_ns"],
    )


def _event(row: sqlite3.Row) -> Event:
    return Event(row["id"], row["stream_id"], row["ts"], row["ingest"], row["message"])


def _bounded(rows: Iterable[sqlite3.Row], max_bytes: int) -> list[Event]:
    """Events from ``rows`` until the next would pass ``max_bytes`` (the first always kept):
    read one at a time, so a stream of large events is never all in memory."""
    out: list[Event] = []
    size = 0
    for row in rows:
        size += event_size(row["message"])
        if size > max_bytes and out:
            break
        out.append(_event(row))
    return out


_GROUP_SELECT = """SELECT g.*, (SELECT SUM(stored_bytes) FROM log_streams s WHERE s.group_id = g.id)
                   AS stored_bytes FROM log_groups g"""


class LogStore:
    """The log database (see module docstring)."""

    def __init__(self, path: str | Path) -> None:
        """Opened on first use (a control worker process registers the operations but
        forwards them, so it never opens the database)."""
        self.path = str(path)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._writer_conn: sqlite3.Connection | None = None
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            with self._lock:
                if not self._ready:
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                    first = sqlite3.connect(self.path, isolation_level=None, timeout=30)
                    first.execute("PRAGMA journal_mode=WAL")
                    first.executescript(_SCHEMA)
                    first.close()
                    self._ready = True
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    @property
    def _writer(self) -> sqlite3.Connection:
        if self._writer_conn is None:
            self._writer_conn = self._connect()
        return self._writer_conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        with self._lock:
            if self._writer_conn is not None:
                self._writer_conn.close()
                self._writer_conn = None

    def _write(self, fn: Any) -> Any:
        conn = self._writer
        with self._lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                out = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return out

    # -- groups ----------------------------------------------------------------------------
    def create_group(self, name: str, tags: dict[str, str] | None = None) -> bool:
        """Create the group; False when one of that name exists."""

        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO log_groups (name, created_ms, tags) VALUES (?, ?, ?)",
                (name, now_ms(), json.dumps(tags or {})),
            )
            return cur.rowcount == 1

        return bool(self._write(tx))

    def group(self, name: str) -> LogGroup | None:
        row = self._reader().execute(f"{_GROUP_SELECT} WHERE g.name = ?", (name,)).fetchone()
        return _group(row) if row else None

    def groups(
        self, prefix: str = "", after: str = "", limit: int = 50, contains: str = ""
    ) -> list[LogGroup]:
        """Groups by name from after ``after``, whose names start with ``prefix`` (and contain
        ``contains``), at most ``limit``."""
        rows = (
            self._reader()
            .execute(
                f"{_GROUP_SELECT} WHERE g.name > ? AND substr(g.name, 1, ?) = ? AND instr(g.name, ?) > 0 "
                "ORDER BY g.name LIMIT ?",
                (after, len(prefix), prefix, contains, limit),
            )
            .fetchall()
        )
        return [_group(r) for r in rows]

    def delete_group(self, name: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT id FROM log_groups WHERE name = ?", (name,)).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM log_events WHERE group_id = ?", (row["id"],))
            conn.execute("DELETE FROM log_streams WHERE group_id = ?", (row["id"],))
            conn.execute("DELETE FROM log_groups WHERE id = ?", (row["id"],))
            return True

        return bool(self._write(tx))

    def set_retention(self, name: str, days: int | None) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute("UPDATE log_groups SET retention_days = ? WHERE name = ?", (days, name)).rowcount
                == 1
            )

        return bool(self._write(tx))

    def set_tags(self, name: str, tags: dict[str, str]) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            return (
                conn.execute(
                    "UPDATE log_groups SET tags = ? WHERE name = ?", (json.dumps(tags), name)
                ).rowcount
                == 1
            )

        return bool(self._write(tx))

    # -- streams ---------------------------------------------------------------------------
    def create_stream(self, group_id: int, name: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT OR IGNORE INTO log_streams (group_id, name, created_ms) VALUES (?, ?, ?)",
                (group_id, name, now_ms()),
            )
            return cur.rowcount == 1

        return bool(self._write(tx))

    def stream(self, group_id: int, name: str) -> LogStream | None:
        row = (
            self._reader()
            .execute("SELECT * FROM log_streams WHERE group_id = ? AND name = ?", (group_id, name))
            .fetchone()
        )
        return _stream(row) if row else None

    def streams(
        self,
        group_id: int,
        *,
        prefix: str = "",
        by_time: bool = False,
        descending: bool = False,
        offset: int = 0,
        limit: int = 50,
    ) -> list[LogStream]:
        order = "COALESCE(last_ms, created_ms)" if by_time else "name"
        rows = (
            self._reader()
            .execute(
                f"SELECT * FROM log_streams WHERE group_id = ? AND substr(name, 1, ?) = ? "
                f"ORDER BY {order} {'DESC' if descending else 'ASC'}, id LIMIT ? OFFSET ?",
                (group_id, len(prefix), prefix, limit, offset),
            )
            .fetchall()
        )
        return [_stream(r) for r in rows]

    def stream_names(self, ids: Iterable[int]) -> dict[int, str]:
        wanted = list(set(ids))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        rows = self._reader().execute(f"SELECT id, name FROM log_streams WHERE id IN ({marks})", wanted)
        return {r["id"]: r["name"] for r in rows}

    def delete_stream(self, group_id: int, name: str) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            row = conn.execute(
                "SELECT id FROM log_streams WHERE group_id = ? AND name = ?", (group_id, name)
            ).fetchone()
            if row is None:
                return False
            conn.execute("DELETE FROM log_events WHERE stream_id = ?", (row["id"],))
            conn.execute("DELETE FROM log_streams WHERE id = ?", (row["id"],))
            return True

        return bool(self._write(tx))

    # -- events ----------------------------------------------------------------------------
    def append(
        self, stream: LogStream, events: Sequence[tuple[int, str]], cursor_ns: int | None = None
    ) -> int:
        """Add ``events`` (timestamp in ms, message) to the stream in one transaction, moving
        its ``cursor_ns`` (where the collector resumes) when given; returns its new ``seq``, or
        -1 when the stream is gone (its group deleted meanwhile: nothing is stored)."""
        ingest = now_ms()

        def tx(conn: sqlite3.Connection) -> int:
            if conn.execute("SELECT 1 FROM log_streams WHERE id = ?", (stream.id,)).fetchone() is None:
                return -1
            conn.executemany(
                "INSERT INTO log_events (group_id, stream_id, ts, ingest, message) VALUES (?, ?, ?, ?, ?)",
                [(stream.group_id, stream.id, ts, ingest, msg) for ts, msg in events],
            )
            size = sum(event_size(msg) for _, msg in events)
            first = min((ts for ts, _ in events), default=None)
            last = max((ts for ts, _ in events), default=None)
            conn.execute(
                "UPDATE log_streams SET stored_bytes = stored_bytes + ?, seq = seq + 1, last_ingest_ms = ?, "
                "first_ms = CASE WHEN ? IS NULL THEN first_ms ELSE MIN(COALESCE(first_ms, ?), ?) END, "
                "last_ms = CASE WHEN ? IS NULL THEN last_ms ELSE MAX(COALESCE(last_ms, ?), ?) END, "
                "cursor_ns = COALESCE(?, cursor_ns) WHERE id = ?",
                (size, ingest, first, first, first, last, last, last, cursor_ns, stream.id),
            )
            row = conn.execute("SELECT seq FROM log_streams WHERE id = ?", (stream.id,)).fetchone()
            return int(row["seq"]) if row else 0

        return int(self._write(tx))

    def stream_events(
        self,
        stream_id: int,
        *,
        start: int | None,
        end: int | None,
        after: tuple[int, int] | None = None,
        before: tuple[int, int] | None = None,
        from_head: bool,
        limit: int,
        max_bytes: int = 1 << 62,
    ) -> list[Event]:
        """At most ``limit`` events (and ``max_bytes`` of them, :func:`event_size`, at least
        one) of the stream in [start, end), in time order: the first ones (``from_head``, or
        those after the position ``after``) or the last ones (those before ``before``, else the
        stream's end)."""
        where = ["stream_id = ?", "ts >= ?", "ts < ?"]
        params: list[Any] = [
            stream_id,
            start if start is not None else -(2**62),
            end if end is not None else 2**62,
        ]
        if after is not None:
            where.append("(ts, id) > (?, ?)")
            params += list(after)
        if before is not None:
            where.append("(ts, id) < (?, ?)")
            params += list(before)
        head = after is not None or (from_head and before is None)
        sql = (
            f"SELECT * FROM log_events WHERE {' AND '.join(where)} "
            f"ORDER BY ts {'ASC' if head else 'DESC'}, id {'ASC' if head else 'DESC'} LIMIT ?"
        )
        rows = _bounded(self._reader().execute(sql, [*params, limit]), max_bytes)
        return rows if head else rows[::-1]

    def tail(self, stream_id: int, after_id: int | None, limit: int, max_bytes: int = 1 << 62) -> list[Event]:
        """The stream's last ``limit`` events (and ``max_bytes``) in the order they were
        stored, or with ``after_id`` the first ones stored after that event (``dockyard
        logs``)."""
        if after_id is None:
            cursor = self._reader().execute(
                "SELECT * FROM log_events WHERE stream_id = ? ORDER BY id DESC LIMIT ?", (stream_id, limit)
            )
            return _bounded(cursor, max_bytes)[::-1]
        cursor = self._reader().execute(
            "SELECT * FROM log_events WHERE stream_id = ? AND id > ? ORDER BY id LIMIT ?",
            (stream_id, after_id, limit),
        )
        return _bounded(cursor, max_bytes)

    def group_events(
        self,
        group_id: int,
        *,
        start: int | None,
        end: int | None,
        after: tuple[int, int] | None,
        stream_ids: Sequence[int] | None,
        needles: Sequence[str] = (),
    ) -> Iterator[Event]:
        """The group's events in [start, end) after the position ``after``, in (time, id)
        order, from the streams ``stream_ids`` (None: all), holding every one of ``needles``:
        an iterator over a cursor (the caller stops when it has enough)."""
        where = ["group_id = ?", "ts >= ?", "ts < ?"]
        params: list[Any] = [
            group_id,
            start if start is not None else -(2**62),
            end if end is not None else 2**62,
        ]
        if after is not None:
            where.append("(ts, id) > (?, ?)")
            params += list(after)
        if stream_ids is not None:
            where.append(f"stream_id IN ({','.join('?' * len(stream_ids))})")
            params += list(stream_ids)
        for n in needles:
            where.append("instr(message, ?) > 0")
            params.append(n)
        conn = self._connect()  # its own: a long scan must not hold a connection others share
        try:
            for row in conn.execute(
                f"SELECT * FROM log_events WHERE {' AND '.join(where)} ORDER BY ts, id", params
            ):
                yield _event(row)
        finally:
            conn.close()

    # -- bounds ----------------------------------------------------------------------------
    def expire(self, now: int | None = None, batch: int = 10_000) -> int:
        """Delete the events older than their group's retention (at most ``batch`` per group
        per call); returns how many went."""
        now = now if now is not None else now_ms()
        gone = 0
        groups = (
            self._reader()
            .execute("SELECT id, retention_days FROM log_groups WHERE retention_days IS NOT NULL")
            .fetchall()
        )
        for g in groups:
            cutoff = now - int(g["retention_days"]) * 86_400_000
            gone += self._delete_where("group_id = ? AND ts < ?", (g["id"], cutoff), batch)
        return gone

    def checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it (after a big trim)."""
        conn = self._writer
        with self._lock:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def total_bytes(self) -> int:
        row = self._reader().execute("SELECT COALESCE(SUM(stored_bytes), 0) AS b FROM log_streams").fetchone()
        return int(row["b"])

    def trim(self, max_bytes: int, batch: int = 10_000) -> int:
        """While the store holds more than ``max_bytes``, delete its oldest-ingested events
        (``batch`` at a time); returns how many went."""
        gone = 0
        while self.total_bytes() > max_bytes:
            row = (
                self._reader()
                .execute("SELECT id FROM log_events ORDER BY id LIMIT 1 OFFSET ?", (batch - 1,))
                .fetchone()
            )
            if row is None:
                row = self._reader().execute("SELECT MAX(id) AS id FROM log_events").fetchone()
                if row is None or row["id"] is None:
                    break
            n = self._delete_where("id <= ?", (row["id"],), batch)
            if n == 0:
                break
            gone += n
        return gone

    def _delete_where(self, where: str, params: tuple[Any, ...], batch: int) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            rows = conn.execute(
                "SELECT stream_id, COUNT(*) AS n, "
                f"SUM(length(CAST(message AS BLOB)) + {EVENT_OVERHEAD}) AS b, "
                f"MAX(id) AS top FROM (SELECT * FROM log_events WHERE {where} ORDER BY id LIMIT ?) "
                "GROUP BY stream_id",
                (*params, batch),
            ).fetchall()
            if not rows:
                return 0
            top = max(r["top"] for r in rows)
            conn.execute(f"DELETE FROM log_events WHERE {where} AND id <= ?", (*params, top))
            for r in rows:
                conn.execute(
                    "UPDATE log_streams SET stored_bytes = MAX(stored_bytes - ?, 0), "
                    "first_ms = (SELECT MIN(ts) FROM log_events WHERE stream_id = ?) WHERE id = ?",
                    (r["b"], r["stream_id"], r["stream_id"]),
                )
            return sum(int(r["n"]) for r in rows)

        return int(self._write(tx))
