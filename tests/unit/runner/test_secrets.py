"""The secret store: references, values, resolution for the agent."""

from __future__ import annotations

import pytest

from dockyard.store import Store
from runner import secrets


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "s.db", secrets.MIGRATIONS)
    yield s
    s.close()


@pytest.mark.parametrize(
    ("ref", "name"),
    [
        ("dockyard:secret:db-password", "db-password"),
        ("dockyard:secret:prod/db", "prod/db"),
        ("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-password", "db-password"),
        ("arn:aws:secretsmanager:us-east-1:000000000000:secret:db-password:password::", "db-password"),
        ("arn:aws:ssm:us-east-1:000000000000:parameter/prod/db", "prod/db"),
        ("hunter2", None),
        ("dockyard:secret:", None),
        ("dockyard:secret:has space", None),
        ("arn:aws:s3:::bucket/key", None),
    ],
)
def test_a_reference_names_one_secret(ref, name):
    assert secrets.parse_reference(ref) == name


def test_env_files_are_key_value_lines():
    text = "# comment\nA=1\n\nB = two=2\nnot a pair\n"
    assert secrets.parse_env_file(text) == [("A", "1"), ("B", " two=2")]


async def test_put_list_resolve_and_delete(store):
    assert await secrets.put(store, "db-password", "s3cret") is True
    assert await secrets.put(store, "db-password", "s3cret2") is False
    await secrets.put(store, "web-env", "MODE=prod\nLEVEL=3")
    assert [r.name for r in secrets.list_names(store)] == ["db-password", "web-env"]
    assert not hasattr(secrets.list_names(store)[0], "value")
    refs = [("DB", "dockyard:secret:db-password"),
            ("DB2", "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-password")]
    assert secrets.resolve(store, refs) == {"DB": "s3cret2", "DB2": "s3cret2"}
    assert secrets.resolve_environment_files(store, ["dockyard:secret:web-env"]) == [
        ("MODE", "prod"), ("LEVEL", "3")]
    assert await secrets.delete(store, "db-password") is True
    assert await secrets.delete(store, "db-password") is False
    with pytest.raises(secrets.SecretNotFound) as e:
        secrets.resolve(store, refs)
    assert e.value.name == "db-password"


async def test_bad_names_and_oversized_values_are_refused(store):
    with pytest.raises(ValueError, match="invalid secret name"):
        await secrets.put(store, "bad name", "x")
    with pytest.raises(ValueError, match="exceeds"):
        await secrets.put(store, "big", "x" * (secrets.MAX_VALUE + 1))
