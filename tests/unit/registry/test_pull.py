"""The pull credential the registry gives the runner (registry.pull)."""

import pytest

from dockyard.store import Store
from registry import pull, users


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "s.db", [*users.MIGRATIONS, *pull.MIGRATIONS])
    yield s
    s.close()


async def test_the_first_call_makes_a_pull_only_user_and_later_calls_return_the_same_password(store):
    creds = pull.PullCredentials(store)
    first = await creds()
    assert first is not None and first["username"] == pull.PULL_USER
    user = users.get_user(store, pull.PULL_USER)
    assert user is not None and not user.admin
    assert users.verify_password(first["password"], user.password_hash)
    assert await pull.PullCredentials(store)() == first


async def test_a_lost_stored_password_is_replaced_and_the_user_keeps_working(store):
    first = await pull.PullCredentials(store)()
    async with store.transaction() as tx:
        tx.execute("DELETE FROM registry_pull_credential")
    second = await pull.PullCredentials(store)()
    assert second is not None and second["password"] != first["password"]
    user = users.get_user(store, pull.PULL_USER)
    assert users.verify_password(second["password"], user.password_hash)
    assert not users.verify_password(first["password"], user.password_hash)
