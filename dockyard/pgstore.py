"""The state store on PostgreSQL (``state_url = "postgresql://user:pass@host:port/db"``).

The same interface and guarantees as the SQLite :class:`dockyard.store.Store` it extends, so
no part knows which one it has:

* the parts' SQL is SQLite's, translated by :mod:`dockyard.sqldialect` (cached per text);
  the migrations are the same definitions, their scripts translated the same way;
* rows answer by index and by (case-insensitive) name as ``sqlite3.Row``; integers come back
  as ``int`` (a ``SUM`` too), a ``bool`` parameter is stored as 0/1 as SQLite does;
* ``transaction()`` is one serialised writer, across every process on the database: each
  transaction takes one transaction-scoped advisory lock first (what ``BEGIN IMMEDIATE`` is
  to SQLite), so read-then-write code keeps SQLite's serial order; ``durable=False`` is
  ``synchronous_commit = off`` for that one commit;
* ``tx.changed`` bumps the same revision row, and the commit sends ``NOTIFY`` on the
  database's channel; :meth:`follow` LISTENs on it (a connection of its own), so watchers in
  every process wake within a round trip of any commit.

Queries run on the event loop thread through psycopg 3's synchronous connections (one reader,
one writer per process, as SQLite's), the choice measured in docs/architecture.md: the store's
read interface is synchronous and a point read over a local socket costs tens of µs.

A connection that breaks (PostgreSQL restarted, a network cut) raises
:class:`dockyard.store.StoreUnavailable`, answered as 503 ``ServiceUnavailable`` with a retry
hint; the next use reconnects, so the server recovers with no restart.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg import sql as pgsql
from psycopg.adapt import Loader
from psycopg.types.numeric import Int8Dumper

from dockyard import sealed, sqldialect
from dockyard.store import _CORE, Migration, Store, StoreUnavailable, Tx, order_migrations

__all__ = ["PostgresStore", "Row", "check_url"]

log = logging.getLogger("dockyard.store")

# the one advisory lock every write transaction takes (any 64-bit number Dockyard owns)
WRITER_LOCK = 0x646F636B79617264  # "dockyard"
CONNECT_TIMEOUT = 10
LOCK_WAIT = 30.0  # seconds a transaction waits for another process's (SQLite: busy_timeout)
RECONNECT_PAUSE = 0.5  # seconds a failed reconnection is not tried again (requests fail at once)
# libpq settings unless the URL gives its own: a dead peer is noticed in seconds, not at TCP's
# retransmission timeout (a query in flight blocks the event loop until then)
_LIBPQ_DEFAULTS = {"tcp_user_timeout": "10000", "keepalives_idle": "5", "keepalives_interval": "2",
                   "keepalives_count": "3"}


class Row(tuple):
    """A result row as ``sqlite3.Row``: by index, by name (any case), ``keys()``, ``dict(row)``."""

    __slots__ = ()
    _names: dict[str, int]
    _keys: list[str]

    def __getitem__(self, key: Any) -> Any:  # type: ignore[override]
        if isinstance(key, str):
            try:
                return tuple.__getitem__(self, self._names[key.lower()])
            except KeyError:
                raise IndexError(f"No item with that key: {key}") from None
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._keys)


def _row_factory(cursor: psycopg.Cursor[Any]) -> Any:
    names = [c.name for c in cursor.description or ()]
    cls = type("Row", (Row,), {"_names": {n.lower(): i for i, n in enumerate(names)}, "_keys": names})
    return lambda values: cls(values)


class _NumericLoader(Loader):
    """``numeric`` (what PostgreSQL sums integers to) as SQLite gives it: an int when whole."""

    def load(self, data: Any) -> Any:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


class _BoolDumper(Int8Dumper):
    """A Python bool stored as 0/1, into the INTEGER columns the SQLite schema declares."""

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


def redact(url: str) -> str:
    """``url`` without its password (for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def check_url(url: str) -> None:
    """Raise ValueError naming what is wrong with a ``postgresql://`` state URL's form."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"state_url {redact(url)!r}: the scheme must be postgresql://")
    try:
        parts.port  # noqa: B018 (raises ValueError when not a port)
    except ValueError:
        raise ValueError(f"state_url {redact(url)!r}: the port is not a number from 1 to 65535") from None
    if not parts.path.strip("/"):
        raise ValueError(f"state_url {redact(url)!r}: no database name (postgresql://user:pass@host:port/db)")
    try:
        psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError as e:
        raise ValueError(f"state_url {redact(url)!r} is malformed: {e}") from None


def _connect(url: str) -> psycopg.Connection[Any]:
    given = psycopg.conninfo.conninfo_to_dict(url)
    extra = {k: v for k, v in _LIBPQ_DEFAULTS.items() if k not in given}
    if str(given.get("host", "")).startswith("/"):  # a unix socket: no TCP settings
        extra = {}
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **extra)
    except psycopg.OperationalError as e:
        reason = " ".join(line.strip() for line in str(e).splitlines() if line.strip()) or type(e).__name__
        raise StoreUnavailable(f"cannot connect to PostgreSQL at {redact(url)}: {reason}") from None
    conn.row_factory = _row_factory
    conn.adapters.register_loader("numeric", _NumericLoader)
    conn.adapters.register_dumper(bool, _BoolDumper)
    return conn


class _Connection:
    """One psycopg connection with sqlite3's ``execute``: SQLite SQL in, a cursor out; opened
    again on the next use after it broke."""

    def __init__(self, url: str, store: PostgresStore) -> None:
        self._url = url
        self._store = store
        self._conn: psycopg.Connection[Any] | None = _connect(url)
        self._failed_at = 0.0

    @property
    def raw(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._conn = None
            if time.monotonic() - self._failed_at < RECONNECT_PAUSE:
                raise StoreUnavailable("PostgreSQL unavailable (reconnecting)")
            try:
                self._conn = _connect(self._url)
            except StoreUnavailable:
                self._failed_at = time.monotonic()
                raise
            log.info("reconnected to PostgreSQL", extra={"url": redact(self._url)})
        return self._conn

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self.raw.execute(self._store.translate(sql), params)  # type: ignore[arg-type]
        except psycopg.OperationalError as e:
            if self._conn is not None and (self._conn.closed or self._conn.broken):
                raise StoreUnavailable(f"PostgreSQL connection lost: {str(e).strip()}") from e
            raise sqlite3.OperationalError(str(e)) from e
        except psycopg.IntegrityError as e:
            raise sqlite3.IntegrityError(str(e)) from e

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cur = self.raw.cursor()
        try:
            cur.executemany(self._store.translate(sql), list(rows))  # type: ignore[arg-type]
        except psycopg.OperationalError as e:
            raise StoreUnavailable(f"PostgreSQL connection lost: {str(e).strip()}") from e
        except psycopg.IntegrityError as e:
            raise sqlite3.IntegrityError(str(e)) from e
        return cur

    def script(self, text: str) -> None:
        """Run a whole script (no parameters; PostgreSQL's simple query protocol)."""
        self.raw.execute(text.encode())

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class PostgresStore(Store):
    """The store over one PostgreSQL database (see module docstring)."""

    def __init__(self, url: str, key_file: str | Path) -> None:
        self.url = self.target = url
        self.path = redact(url)
        self.key_file = Path(key_file)
        self._sealer: sealed.Sealer | None = None
        self._translated: OrderedDict[str, str] = OrderedDict()
        self._schema = sqldialect.Schema()
        self._writer = _Connection(url, self)  # type: ignore[assignment]
        self._reader = _Connection(url, self)  # type: ignore[assignment]
        self._lock = asyncio.Lock()
        self._waiter: asyncio.Future[None] | None = None
        self._load_schema()
        self.channel = "dockyard_" + str(
            self._reader.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
        )
        self.revision = self._read_revision()

    @classmethod
    def open_url(
        cls, url: str, migrations: Iterable[Migration] = (), key_file: str | Path = sealed.KEY_FILE
    ) -> PostgresStore:
        """Connect, apply pending migrations, and return the store."""
        check_url(url)
        conn = _Connection.__new__(_Connection)
        conn._url, conn._conn, conn._failed_at = url, _connect(url), 0.0
        try:
            _migrate(conn, [*_CORE, *migrations], lambda: sealed.Sealer.load_or_create(Path(key_file)))
        finally:
            conn.close()
        return cls(url, key_file)

    # -- the dialect ---------------------------------------------------------------------
    def translate(self, sql: str) -> str:
        done = self._translated.get(sql)
        if done is None:
            done = sqldialect.statement(sql, self._schema)
            self._translated[sql] = done
            if len(self._translated) > 2048:
                self._translated.popitem(last=False)
        return done

    def _load_schema(self) -> None:
        self._schema = _schema(self._reader.raw)
        self._translated.clear()

    def close(self) -> None:
        self._writer.close()  # type: ignore[attr-defined]
        self._reader.close()  # type: ignore[attr-defined]

    # -- reads ---------------------------------------------------------------------------
    def current_revision(self) -> int:
        return self._read_revision()

    def data_version(self) -> int:
        """The next transaction id: it moves whenever any process writes (a write takes one)."""
        row = self._reader.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint").fetchone()
        return int(row[0])  # type: ignore[index]

    # -- writes --------------------------------------------------------------------------
    @asynccontextmanager
    async def transaction(self, durable: bool = True) -> AsyncIterator[Tx]:
        async with self._lock:
            conn: _Connection = self._writer  # type: ignore[assignment]
            raw = conn.raw
            try:
                raw.execute("BEGIN")
                await self._writer_lock(raw)
                if not durable:
                    raw.execute("SET LOCAL synchronous_commit = off")
            except BaseException as e:
                if not raw.closed and not raw.broken:
                    raw.execute("ROLLBACK")
                if isinstance(e, psycopg.OperationalError):
                    raise StoreUnavailable(f"PostgreSQL connection lost: {str(e).strip()}") from e
                raise
            tx = Tx(conn, self)  # type: ignore[arg-type]
            try:
                yield tx
                if tx.revision is not None:
                    raw.execute("SELECT pg_notify(%s, %s)", (self.channel, str(tx.revision)))
                raw.execute("COMMIT")
            except BaseException as e:
                if not raw.closed and not raw.broken:
                    try:
                        raw.execute("ROLLBACK")
                    except psycopg.Error:
                        pass
                if isinstance(e, psycopg.OperationalError):
                    raise StoreUnavailable(f"PostgreSQL connection lost: {str(e).strip()}") from e
                raise
            if tx.revision is not None:
                self.revision = max(self.revision, tx.revision)
                await self._notify()

    @staticmethod
    async def _writer_lock(raw: psycopg.Connection[Any]) -> None:
        """Take the writers' lock without blocking the event loop while another process holds
        it (tried, then retried after a short sleep); StoreUnavailable after LOCK_WAIT s."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + LOCK_WAIT, 0.001
        while not raw.execute("SELECT pg_try_advisory_xact_lock(%s)", (WRITER_LOCK,)).fetchone()[0]:
            if loop.time() > deadline:
                raise StoreUnavailable(f"another process has held the writers' lock for {LOCK_WAIT} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.05)

    # -- watch ---------------------------------------------------------------------------
    async def follow(self, interval: float = 0.01) -> None:
        """LISTEN for other processes' commits and wake this process's watchers; runs until
        cancelled, reconnecting (and catching up on the revision) when the connection drops."""
        del interval  # notifications, not polling
        while True:
            try:
                aconn = await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
                )
            except psycopg.OperationalError:
                await asyncio.sleep(1.0)
                continue
            try:
                async with aconn:
                    await aconn.execute(pgsql.SQL("LISTEN {}").format(pgsql.Identifier(self.channel)))
                    await self._catch_up()
                    async for note in aconn.notifies():
                        if int(note.payload) > self.revision:
                            self.revision = int(note.payload)
                            await self._notify()
            except (psycopg.OperationalError, StoreUnavailable):
                await asyncio.sleep(1.0)

    async def _catch_up(self) -> None:
        revision = await asyncio.to_thread(self._fresh_revision)
        if revision > self.revision:
            self.revision = revision
            await self._notify()

    def _fresh_revision(self) -> int:
        with _connect(self.url) as conn:
            row = conn.execute("SELECT value FROM revision WHERE id = 1").fetchone()
            return int(row[0]) if row else 0


def _schema(conn: psycopg.Connection[Any]) -> sqldialect.Schema:
    columns: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position"
    ):
        columns.setdefault(table, []).append(column)
    keys: dict[str, list[str]] = {}
    for table, column in conn.execute(
        "SELECT tc.table_name, k.column_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage k"
        "  ON k.constraint_name = tc.constraint_name AND k.constraint_schema = tc.constraint_schema"
        " WHERE tc.constraint_type = 'PRIMARY KEY' AND tc.table_schema = current_schema()"
        " ORDER BY tc.table_name, k.ordinal_position"
    ):
        keys.setdefault(table, []).append(column)
    return sqldialect.Schema(
        {t: tuple(c) for t, c in columns.items()}, {t: tuple(c) for t, c in keys.items()}
    )


class _MigrationConnection(_Connection):
    """The connection migrations run over: translates with the schema as it is so far."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self._url, self._conn, self._failed_at = url, conn, 0.0
        self.schema = _schema(conn)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> psycopg.Cursor[Any]:
        return self.raw.execute(sqldialect.statement(sql, self.schema), params)  # type: ignore[arg-type]


def _migrate(conn: _Connection, migrations: list[Migration], sealer: Any) -> None:
    raw = conn.raw
    # one migrator at a time (replicas starting together); session lock, released at close
    raw.execute("SELECT pg_advisory_lock(%s)", (WRITER_LOCK + 1,))
    raw.execute(sqldialect.FUNCTIONS.encode())
    raw.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " part TEXT NOT NULL, version BIGINT NOT NULL, applied_at DOUBLE PRECISION NOT NULL,"
        " PRIMARY KEY (part, version))"
    )
    done = {(r[0], r[1]) for r in raw.execute("SELECT part, version FROM schema_migrations")}
    for m in order_migrations(migrations):
        if (m.part, m.version) in done:
            continue
        with raw.transaction():
            if m.sql.strip():
                raw.execute(sqldialect.migration(m.sql).encode())
            if m.step is not None:
                m.step(_MigrationConnection(raw, conn._url), sealer())  # type: ignore[arg-type]
            raw.execute(
                "INSERT INTO schema_migrations (part, version, applied_at) VALUES (%s, %s, %s)",
                (m.part, m.version, time.time()),
            )
    raw.execute("SELECT pg_advisory_unlock(%s)", (WRITER_LOCK + 1,))
