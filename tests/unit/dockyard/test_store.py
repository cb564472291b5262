import asyncio

import pytest

from dockyard.state import connect
from dockyard.store import Migration, Store

# The store's contract, on both backends (tests/conftest.py: state_backend); the tests marked
# sqlite are about the SQLite file itself (its pragmas, its WAL after a SIGKILL).
M = [Migration("t", 1, "CREATE TABLE items (k TEXT PRIMARY KEY, v TEXT);")]


@pytest.fixture
def store(tmp_path, state_backend):
    s = Store.open(tmp_path / "s.db", M)
    yield s
    s.close()


async def test_committed_writes_are_visible_and_bump_the_revision(store):
    start = store.revision
    async with store.transaction() as tx:
        tx.execute("INSERT INTO items VALUES ('a', '1')")
        tx.changed("items", "a")
    assert store.query_one("SELECT v FROM items WHERE k='a'")[0] == "1"
    assert store.revision == start + 1


async def test_a_failed_transaction_rolls_back_and_keeps_the_revision(store):
    start = store.revision
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            tx.execute("INSERT INTO items VALUES ('b', '1')")
            tx.changed("items", "b")
            raise RuntimeError("boom")
    assert store.query_one("SELECT v FROM items WHERE k='b'") is None
    assert store.revision == start


async def test_a_watcher_wakes_on_a_change_of_its_topic(store):
    since = store.revision
    waiter = asyncio.create_task(store.changes(since, ["items"], timeout=5))
    await asyncio.sleep(0.01)
    async with store.transaction() as tx:
        tx.changed("other", "x")
    async with store.transaction() as tx:
        tx.changed("items", "c")
    changes = await waiter
    assert [(c.topic, c.key) for c in changes] == [("items", "c")]


async def test_a_watcher_times_out_with_nothing(store):
    assert await store.changes(store.revision, timeout=0.05) == []


async def test_migrations_apply_once_and_survive_reopen(tmp_path, state_backend):
    s = Store.open(tmp_path / "m.db", M)
    async with s.transaction() as tx:
        tx.execute("INSERT INTO items VALUES ('a', '1')")
    s.close()
    extra = [*M, Migration("t", 2, "ALTER TABLE items ADD COLUMN w TEXT;")]
    s = Store.open(tmp_path / "m.db", extra)
    assert dict(s.query_one("SELECT * FROM items")) == {"k": "a", "v": "1", "w": None}
    s.close()


def test_a_migration_defined_twice_is_refused(tmp_path, state_backend):
    with pytest.raises(ValueError, match="twice"):
        Store.open(tmp_path / "d.db", [*M, *M])


async def test_data_version_changes_when_another_connection_commits(tmp_path, state_backend):
    a = Store.open(tmp_path / "v.db", M)
    b = connect(a.target, key_file=a.key_file)
    before = a.data_version()
    assert a.data_version() == before
    async with b.transaction() as tx:
        tx.execute("INSERT INTO items VALUES ('z', '1')")
    assert a.data_version() != before
    a.close()
    b.close()


def _synchronous(store: Store) -> int:
    return int(store._writer.execute("PRAGMA synchronous").fetchone()[0])


@pytest.mark.sqlite
async def test_a_non_durable_transaction_commits_and_the_next_one_is_durable_again(tmp_path):
    store = Store.open(tmp_path / "s.db", M)
    assert _synchronous(store) == 2  # FULL
    async with store.transaction(durable=False) as tx:
        tx.execute("INSERT INTO items VALUES ('nd', '1')")
        tx.changed("items", "nd")
    assert store.query_one("SELECT v FROM items WHERE k='nd'")[0] == "1"
    assert _synchronous(store) == 2
    with pytest.raises(RuntimeError):
        async with store.transaction(durable=False) as tx:
            tx.execute("INSERT INTO items VALUES ('nd2', '1')")
            raise RuntimeError("boom")
    assert store.query_one("SELECT v FROM items WHERE k='nd2'") is None
    assert _synchronous(store) == 2


@pytest.mark.sqlite
def test_a_non_durable_commit_survives_the_process_being_killed(tmp_path):
    """``durable=False`` skips the fsync, not the write: a SIGKILL right after it loses
    nothing (only the machine losing power could)."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import asyncio, os, signal\n"
        "from dockyard.store import Migration, Store\n"
        f"s = Store.open({str(tmp_path / 'k.db')!r}, "
        "[Migration('t', 1, 'CREATE TABLE items (k TEXT PRIMARY KEY, v TEXT);')])\n"
        "async def main():\n"
        "    for i in range(50):\n"
        "        async with s.transaction(durable=False) as tx:\n"
        "            tx.execute('INSERT INTO items VALUES (?, ?)', (str(i), 'v'))\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "asyncio.run(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False)
    assert proc.returncode == -signal.SIGKILL
    s = Store.open(tmp_path / "k.db", M)
    try:
        assert s.query_one("SELECT count(*) FROM items")[0] == 50
        assert s.query_one("PRAGMA integrity_check")[0] == "ok"
    finally:
        s.close()
    assert os.path.exists(tmp_path / "k.db")
