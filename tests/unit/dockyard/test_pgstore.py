"""What the PostgreSQL store adds to the contract tests/unit/dockyard/test_store.py checks on
both backends: processes that share one database, the dialect on a real server, bad URLs, and
a server restarted under the store. A real PostgreSQL (tests/support/postgres.py)."""

import asyncio
import threading

import pytest

from dockyard.pgstore import PostgresStore
from dockyard.state import open_state
from dockyard.store import Migration, StoreUnavailable
from tests.support import postgres as pg
from tests.support.server import free_port

M = [
    Migration("t", 1, """
        CREATE TABLE items (k TEXT PRIMARY KEY, v TEXT, n INTEGER DEFAULT 7, at REAL);
        CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL);
        INSERT INTO counter VALUES (1, 0);
        CREATE TABLE log (id INTEGER PRIMARY KEY AUTOINCREMENT, what TEXT NOT NULL);
        """),
]


@pytest.fixture
def url(postgres, request):
    return postgres.store_url(request.node.nodeid)


@pytest.fixture
def store(url, tmp_path):
    s = open_state(url, M, key_file=tmp_path / "secrets.key")
    yield s
    s.close()


async def test_rows_answer_by_index_and_name_and_values_keep_sqlites_types(store):
    async with store.transaction() as tx:
        tx.execute("INSERT INTO items (k, v, n, at) VALUES (?, ?, ?, ?)", ("a", "x%y", True, 1.5))
        tx.execute("INSERT INTO items (k, v, n) VALUES (?, ?, ?)", ("b", "z", 41))
    row = store.query_one("SELECT k, v, n, at FROM items WHERE k = ?", ("a",))
    assert (row[0], row["V"], row["n"], row["at"]) == ("a", "x%y", 1, 1.5)
    assert dict(row) == {"k": "a", "v": "x%y", "n": 1, "at": 1.5} and row.keys() == ["k", "v", "n", "at"]
    total = store.query_one("SELECT SUM(n), SUM(k = 'a'), COUNT(*) FROM items")
    assert tuple(total) == (42, 1, 2) and all(type(x) is int for x in total)
    assert store.query_one("SELECT json_extract(?, '$.a.b')", ('{"a": {"b": "deep"}}',))[0] == "deep"


async def test_insert_or_replace_resets_the_unlisted_columns_as_sqlite_does(store):
    async with store.transaction() as tx:
        tx.execute("INSERT INTO items (k, v, n) VALUES ('a', 'one', 1)")
        tx.execute("INSERT OR REPLACE INTO items (k, v) VALUES (?, ?)", ("a", "two"))
        tx.execute("INSERT OR IGNORE INTO items (k, v) VALUES (?, ?)", ("a", "three"))
    assert tuple(store.query_one("SELECT v, n FROM items WHERE k = 'a'")) == ("two", 7)


async def test_an_autoincrement_key_is_returned_by_returning(store):
    async with store.transaction() as tx:
        first = tx.query_one("INSERT INTO log (what) VALUES (?) RETURNING id", ("x",))[0]
        second = tx.query_one("INSERT INTO log (what) VALUES (?) RETURNING id", ("y",))[0]
    assert second == first + 1


async def test_a_failed_statement_rolls_the_whole_transaction_back(store):
    with pytest.raises(Exception, match="duplicate key"):
        async with store.transaction() as tx:
            tx.execute("INSERT INTO items (k) VALUES ('dup')")
            tx.changed("items", "dup")
            tx.execute("INSERT INTO items (k) VALUES ('dup')")
    assert store.query_one("SELECT k FROM items WHERE k = 'dup'") is None
    async with store.transaction() as tx:  # the connection is usable again
        tx.execute("INSERT INTO items (k) VALUES ('dup')")
    assert store.query_one("SELECT k FROM items WHERE k = 'dup'")[0] == "dup"


async def test_a_non_durable_transaction_turns_synchronous_commit_off_for_itself_only(store):
    async with store.transaction(durable=False) as tx:
        assert tx.query_one("SHOW synchronous_commit")[0] == "off"
        tx.execute("INSERT INTO items (k) VALUES ('nd')")
    async with store.transaction() as tx:
        assert tx.query_one("SHOW synchronous_commit")[0] != "off"
    assert store.query_one("SELECT k FROM items WHERE k = 'nd'")[0] == "nd"


async def test_a_watcher_in_another_process_wakes_on_a_commit_by_notify(store, url, tmp_path):
    other = PostgresStore(url, tmp_path / "secrets.key")
    follower = asyncio.create_task(other.follow())
    try:
        since = other.revision
        waiting = asyncio.create_task(other.changes(since, ["items"], timeout=20))
        await asyncio.sleep(0.2)
        async with store.transaction() as tx:
            tx.execute("INSERT INTO items (k) VALUES ('w')")
            tx.changed("items", "w")
        found = await waiting
        assert [(c.topic, c.key) for c in found] == [("items", "w")]
        assert other.revision == store.revision == other.current_revision()
    finally:
        follower.cancel()
        other.close()


def _increment(url: str, key_file, times: int) -> None:
    """Read, yield to the loop, write back: lost updates unless writers are serialised."""

    async def run() -> None:
        s = PostgresStore(url, key_file)
        for _ in range(times):
            async with s.transaction() as tx:
                value = tx.query_one("SELECT value FROM counter WHERE id = 1")[0]
                await asyncio.sleep(0)
                tx.execute("UPDATE counter SET value = ? WHERE id = 1", (value + 1,))
                tx.changed("counter")
        s.close()

    asyncio.run(run())


def test_writers_of_two_processes_are_serialised_as_sqlites_single_writer(store, url, tmp_path):
    key = tmp_path / "secrets.key"
    threads = [threading.Thread(target=_increment, args=(url, key, 40)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert store.query_one("SELECT value FROM counter WHERE id = 1")[0] == 120
    revisions = [c.revision for c in store.changes_since(0, ["counter"])]
    assert revisions == sorted(revisions) and len(set(revisions)) == 120


def test_a_malformed_url_is_refused_naming_what_is_wrong(tmp_path):
    with pytest.raises(ValueError, match="port"):
        open_state("postgresql://u:secret@127.0.0.1:notaport/db", key_file=tmp_path / "k")
    with pytest.raises(ValueError, match="no database name"):
        open_state("postgresql://u:secret@127.0.0.1:5432/", key_file=tmp_path / "k")
    with pytest.raises(ValueError, match="malformed") as caught:
        open_state("postgresql://u:secret@127.0.0.1:5432/db?nosuchoption=1", key_file=tmp_path / "k")
    assert "secret" not in str(caught.value)


def test_an_unreachable_server_is_refused_naming_the_address(tmp_path):
    port = free_port()
    with pytest.raises(StoreUnavailable, match=f"cannot connect to PostgreSQL at .*:{port}.* refused") as e:
        open_state(f"postgresql://u:secret@127.0.0.1:{port}/db", key_file=tmp_path / "k")
    assert "secret" not in str(e.value)


def test_wrong_credentials_are_refused_naming_them(postgres, tmp_path):
    with pytest.raises(StoreUnavailable, match="password authentication failed") as caught:
        open_state(postgres.url(password="wrong-pw"), key_file=tmp_path / "k")
    assert "wrong-pw" not in str(caught.value)


async def test_a_restarted_server_fails_requests_cleanly_then_the_store_recovers(tmp_path):
    with pg.Postgres.temporary() as own:
        s = open_state(own.store_url("restart"), M, key_file=tmp_path / "k")
        follower = asyncio.create_task(s.follow())
        async with s.transaction() as tx:
            tx.execute("INSERT INTO items (k) VALUES ('before')")
        own.stop()
        with pytest.raises(StoreUnavailable):
            s.query("SELECT k FROM items")
        with pytest.raises(StoreUnavailable):
            async with s.transaction() as tx:
                tx.execute("INSERT INTO items (k) VALUES ('lost')")
        own._ctl_start()
        for _ in range(100):  # the reconnection pause, then the next use reconnects
            try:
                rows = s.query("SELECT k FROM items ORDER BY k")
                break
            except StoreUnavailable:
                await asyncio.sleep(0.1)
        assert [r[0] for r in rows] == ["before"]
        waiting = asyncio.create_task(s.changes(s.revision, ["items"], timeout=20))
        async with s.transaction() as tx:
            tx.execute("INSERT INTO items (k) VALUES ('after')")
            tx.changed("items", "after")
        assert [c.key for c in await waiting] == ["after"]
        follower.cancel()
        s.close()
