"""Users: password hashing, prefixes and actions, and the store functions."""

import pytest

from dockyard.store import Store
from registry import users


def test_a_password_verifies_against_its_own_hash_only():
    hashed = users.hash_password("correct horse")
    assert hashed.startswith("$scrypt$ln=14,r=8,p=5$")
    assert users.verify_password("correct horse", hashed)
    assert not users.verify_password("correct horsE", hashed)


def test_the_same_password_hashes_differently_each_time():
    assert users.hash_password("pw") != users.hash_password("pw")


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "$scrypt$$$", "$bcrypt$x$y$z", "$scrypt$ln=99,r=8,p=1$AA$AA", "$scrypt$ln=14,r=8$AA$AA",
     "$scrypt$ln=x,r=8,p=1$AA$AA"],
)
def test_a_malformed_stored_hash_never_matches(encoded):
    assert not users.verify_password("pw", encoded)


@pytest.mark.parametrize(
    ("prefix", "stored"), [("shop/", "shop"), ("shop", "shop"), ("a/b/", "a/b"), ("*", "*"), ("", "*")]
)
def test_prefixes_normalise_without_the_trailing_slash(prefix, stored):
    assert users.normalize_prefix(prefix) == stored


@pytest.mark.parametrize("prefix", ["Shop/", "a//b", "../x", "a b", "-a"])
def test_malformed_prefixes_are_refused(prefix):
    with pytest.raises(users.InvalidInput):
        users.normalize_prefix(prefix)


@pytest.mark.parametrize(
    ("prefix", "repository", "covered"),
    [("shop", "shop/web", True), ("shop", "shop", True), ("shop", "shop/a/b", True),
     ("shop", "shopping", False), ("shop/web", "shop", False), ("*", "anything/at/all", True)],
)
def test_a_prefix_covers_itself_and_everything_below_it(prefix, repository, covered):
    assert users.prefix_covers(prefix, repository) is covered


def test_actions_parse_in_canonical_order_and_star_means_all():
    assert users.parse_actions("push, pull") == ("pull", "push")
    assert users.parse_actions("*") == ("pull", "push", "delete")
    with pytest.raises(users.InvalidInput):
        users.parse_actions("pull,fly")
    with pytest.raises(users.InvalidInput):
        users.parse_actions(",")


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "s.db", users.MIGRATIONS)
    yield s
    s.close()


async def test_users_are_created_granted_revoked_and_deleted(store):
    await users.create_user(store, "alice", "pw", grants={"shop/": ("pull",)})
    assert await users.grant(store, "alice", "shop", ("pull", "push"))
    assert await users.grant(store, "alice", "tools/", ("pull",))
    alice = users.get_user(store, "alice")
    assert alice.grants == {"shop": ("pull", "push"), "tools": ("pull",)}
    assert users.verify_password("pw", alice.password_hash)
    assert await users.revoke(store, "alice", "tools/")
    assert not await users.revoke(store, "alice", "tools/")
    assert [u.name for u in users.list_users(store)] == ["alice"]
    assert await users.delete_user(store, "alice")
    assert users.get_user(store, "alice") is None
    assert store.query("SELECT * FROM registry_grants") == []


async def test_a_taken_or_malformed_name_or_an_empty_password_is_refused(store):
    await users.create_user(store, "alice", "pw")
    for name, password in (("alice", "pw"), ("bad name", "pw"), ("bob", "")):
        with pytest.raises(users.InvalidInput):
            await users.create_user(store, name, password)


async def test_granting_to_an_unknown_user_changes_nothing(store):
    assert not await users.grant(store, "nobody", "shop", ("pull",))
    assert store.query("SELECT * FROM registry_grants") == []


async def test_a_new_password_replaces_the_old_one(store):
    await users.create_user(store, "alice", "old")
    assert await users.set_password(store, "alice", "new")
    hashed = users.get_user(store, "alice").password_hash
    assert users.verify_password("new", hashed) and not users.verify_password("old", hashed)


async def test_anonymous_pull_is_set_per_prefix(store):
    assert await users.set_anonymous_pull(store, "public/", True)
    assert not await users.set_anonymous_pull(store, "public", True)
    assert users.anonymous_prefixes(store) == ["public"]
    assert await users.set_anonymous_pull(store, "public", False)
    assert users.anonymous_prefixes(store) == []
