"""Secrets at rest: the store's file modes, sealed values (dockyard.sealed) and the migration
that seals an older store's plaintext rows."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from dockyard import keys, sealed
from dockyard.store import Store
from registry import pull, users
from runner import secrets

MIGRATIONS = [*keys.MIGRATIONS, *secrets.MIGRATIONS, *users.MIGRATIONS, *pull.MIGRATIONS]


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def raw_bytes(db: Path) -> bytes:
    """Everything SQLite wrote for ``db``: the file, its WAL and its shared memory."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if p.exists())


@pytest.mark.sqlite  # the database file's modes and bytes
async def test_state_db_and_its_wal_and_shm_are_0600_in_a_0755_data_dir(tmp_path, umask_022):
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    db = data / "state.db"
    store = Store.open(db, keys.MIGRATIONS)
    await keys.create(store, "ci")  # a write: the WAL and the shared memory exist now
    files = [db, Path(f"{db}-wal"), Path(f"{db}-shm"), Path(f"{db}.rev")]
    assert all(p.exists() for p in files)
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
    assert mode(data / sealed.KEY_FILE) == 0o600
    store.close()


@pytest.mark.sqlite  # the database file's modes and bytes
async def test_an_older_store_left_0644_is_narrowed_when_opened(tmp_path, umask_022):
    db = tmp_path / "state.db"
    conn = sqlite3.connect(db)  # as SQLite makes it on its own: 0644 under umask 022
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (x)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    assert mode(db) == 0o644 and mode(Path(f"{db}-wal")) == 0o644
    store = Store.open(db, keys.MIGRATIONS)
    assert mode(db) == 0o600 and mode(Path(f"{db}-wal")) == 0o600 and mode(Path(f"{db}-shm")) == 0o600
    store.close()
    conn.close()


def test_a_sealed_value_opens_only_with_its_key_and_in_its_row(tmp_path):
    a = sealed.Sealer.load_or_create(tmp_path / "a.key")
    b = sealed.Sealer.load_or_create(tmp_path / "b.key")
    box = a.seal("hunter2", "secrets.value:db")
    assert sealed.is_sealed(box) and "hunter2" not in box
    assert a.seal("hunter2", "secrets.value:db") != box  # a fresh nonce each time
    assert a.open(box, "secrets.value:db") == "hunter2"
    assert sealed.Sealer.load_or_create(tmp_path / "a.key").open(box, "secrets.value:db") == "hunter2"
    with pytest.raises(sealed.SealError):
        b.open(box, "secrets.value:db")
    with pytest.raises(sealed.SealError):
        a.open(box, "secrets.value:other")
    with pytest.raises(sealed.SealError):
        a.open(box[:-4] + "AAAA", "secrets.value:db")
    assert a.open("legacy plaintext", "secrets.value:db") == "legacy plaintext"


async def test_access_key_secrets_secret_values_and_the_pull_password_are_not_stored_in_plaintext(tmp_path):
    db = tmp_path / "state.db"
    store = Store.open(db, MIGRATIONS)
    key = await keys.create(store, "ci")
    await secrets.put(store, "db-password", "correct-horse-battery-staple")
    creds = await pull.PullCredentials(store)()
    assert creds is not None
    raw = raw_bytes(db)
    for plain in (key.secret, "correct-horse-battery-staple", creds["password"]):
        assert plain.encode() not in raw
    assert keys.secret_for(store, key.access_key_id) == key.secret
    assert secrets.get(store, "db-password") == "correct-horse-battery-staple"
    assert await pull.PullCredentials(store)() == creds
    store.close()


async def test_without_its_key_file_the_store_reveals_no_secret(tmp_path):
    db = tmp_path / "state.db"
    store = Store.open(db, MIGRATIONS, key_file=tmp_path / "elsewhere" / "dockyard.key")
    key = await keys.create(store, "ci")
    await secrets.put(store, "db-password", "s3cret")
    first = await pull.PullCredentials(store)()
    store.close()
    assert not (tmp_path / sealed.KEY_FILE).exists()
    assert mode(tmp_path / "elsewhere" / "dockyard.key") == 0o600
    other = Store.open(db, MIGRATIONS)  # a new key in the data dir: not the one it was sealed with
    assert keys.secret_for(other, key.access_key_id) is None
    with pytest.raises(secrets.SecretNotFound):
        secrets.get(other, "db-password")
    second = await pull.PullCredentials(other)()  # a new password for the pull user
    assert second is not None and second["password"] != first["password"]
    assert users.verify_password(second["password"], users.get_user(other, pull.PULL_USER).password_hash)
    other.close()


@pytest.mark.sqlite  # the database file's modes and bytes
async def test_an_older_stores_plaintext_rows_are_sealed_on_its_first_start(tmp_path):
    db = tmp_path / "state.db"
    old = Store.open(db, [m for m in MIGRATIONS if m.version == 1])  # the schema before sealing
    async with old.transaction() as tx:
        tx.execute("INSERT INTO access_keys VALUES ('DKYDOLDKEY', 'old-plain-secret', 'admin', 0)")
        tx.execute("INSERT INTO secrets VALUES ('db-password', 'old-plain-value', 0, 0)")
        tx.execute("INSERT INTO registry_users VALUES ('dockyard-runner', ?, 0, 0)",
                   (users.hash_password("old-plain-pull"),))
        tx.execute("INSERT INTO registry_pull_credential VALUES ('dockyard-runner', 'old-plain-pull')")
    old.close()
    assert b"old-plain-secret" in raw_bytes(db)

    store = Store.open(db, MIGRATIONS)
    rows = {
        "key": store.query_one("SELECT secret FROM access_keys")[0],
        "value": store.query_one("SELECT value FROM secrets")[0],
        "pull": store.query_one("SELECT password FROM registry_pull_credential")[0],
    }
    assert all(sealed.is_sealed(v) for v in rows.values()), rows
    assert keys.secret_for(store, "DKYDOLDKEY") == "old-plain-secret"
    assert secrets.get(store, "db-password") == "old-plain-value"
    pulled = await pull.PullCredentials(store)()
    assert pulled == {"username": "dockyard-runner", "password": "old-plain-pull"}
    raw = raw_bytes(db)  # the rewritten rows left no plaintext behind, in the file or the WAL
    for plain in (b"old-plain-secret", b"old-plain-value", b"old-plain-pull"):
        assert plain not in raw
    store.close()
