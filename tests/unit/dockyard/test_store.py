import asyncio

import pytest

from dockyard.store import Migration, Store

M = [Migration("t", 1, "CREATE TABLE items (k TEXT PRIMARY KEY, v TEXT);")]


@pytest.fixture
def store(tmp_path):
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


def test_migrations_apply_once_and_survive_reopen(tmp_path):
    Store.open(tmp_path / "m.db", M).close()
    extra = [*M, Migration("t", 2, "ALTER TABLE items ADD COLUMN w TEXT;")]
    s = Store.open(tmp_path / "m.db", extra)
    assert [r[1] for r in s.query("PRAGMA table_info(items)")] == ["k", "v", "w"]
    s.close()


def test_a_migration_defined_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="twice"):
        Store.open(tmp_path / "d.db", [*M, *M])


async def test_data_version_changes_when_another_connection_commits(tmp_path):
    a = Store.open(tmp_path / "v.db", M)
    b = Store(str(tmp_path / "v.db"))
    before = a.data_version()
    assert a.data_version() == before
    async with b.transaction() as tx:
        tx.execute("INSERT INTO items VALUES ('z', '1')")
    assert a.data_version() != before
    a.close()
    b.close()
