"""Task-role sessions: minted and checked from the server key, stored nowhere."""

from __future__ import annotations

import base64
import json
import os
import struct
from typing import Any

import pytest

from dockyard import keys
from dockyard.aws import sigv4
from dockyard.aws.protocol import ECS, Call, Operations
from dockyard.config import Config
from dockyard.iam import policy, records, sessions
from dockyard.iam.authorize import Authorizer
from dockyard.store import Store

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

KEY = b"k" * 32
TASK = "arn:aws:ecs:us-east-1:000000000000:task/c/abc123"


def test_a_session_verifies_until_it_expires() -> None:
    c = sessions.mint(KEY, "app", TASK, 60, now=1000)
    assert c.access_key_id.startswith("ASIA") and len(c.access_key_id) == 28 and c.expires_at == 1060
    assert sessions.secret(KEY, c.access_key_id, now=1059) == c.secret_access_key
    assert sessions.verify(KEY, c.access_key_id, c.token, now=1059) == sessions.Session(
        c.access_key_id, "app", TASK, 1060
    )
    assert sessions.secret(KEY, c.access_key_id, now=1060) is None
    assert sessions.verify(KEY, c.access_key_id, c.token, now=1060) is None


def test_nothing_can_be_changed_or_borrowed() -> None:
    c = sessions.mint(KEY, "app", TASK, 60, now=1000)
    other = sessions.mint(KEY, "admin", TASK, 60, now=1000)
    assert sessions.verify(KEY, c.access_key_id, other.token, now=1001) is None  # another key's token
    assert sessions.verify(b"x" * 32, c.access_key_id, c.token, now=1001) is None  # another server
    assert sessions.secret(b"x" * 32, c.access_key_id, now=1001) != c.secret_access_key
    _, _, mac = c.token.partition(".")
    forged = sessions._b64(json.dumps({"k": c.access_key_id, "r": "admin", "t": TASK}).encode())
    assert sessions.verify(KEY, c.access_key_id, f"{forged}.{mac}", now=1001) is None
    # a later expiry written into the key id makes another key id, with another secret
    raw = base64.b32decode(c.access_key_id[4:])
    longer = "ASIA" + base64.b32encode(struct.pack(">I", 99999) + raw[4:]).decode()
    assert sessions.expiry(longer) == 99999
    assert sessions.secret(KEY, longer, now=1001) != c.secret_access_key
    for bad in ("", "x", "a.b", "%%%.%%%", c.token + "x"):
        assert sessions.verify(KEY, c.access_key_id, bad, now=1001) is None
    assert sessions.secret(KEY, "ASIA!!!!!!!!!!!!!!!!!!!!!!!!", now=1) is None
    assert sessions.secret(KEY, "DKYDABC", now=1) is None


def test_the_key_file_is_made_once_and_private(tmp_path: Any) -> None:
    key = sessions.load_key(tmp_path)
    assert len(key) == 32 and sessions.load_key(tmp_path) == key
    assert os.stat(tmp_path / "session.key").st_mode & 0o777 == 0o600


async def test_a_role_session_is_checked_against_the_role_policy(tmp_path: Any) -> None:
    store = Store.open(tmp_path / "s.db", [*keys.MIGRATIONS, *records.MIGRATIONS])
    ops = Operations(sessions.with_sessions(keys.SecretCache(store), KEY))
    ops.authorize = Authorizer(store, Config(data_dir=str(tmp_path)), KEY)

    async def ok(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    for name in ("ListClusters", "CreateCluster"):
        ops.add(ECS, name, ok)
    await records.create_role(store, "viewer", policy.parse(policy.READ_ONLY).document)
    c = sessions.mint(KEY, "viewer", TASK, 60)

    async def call(op: str, token: str | None = c.token) -> tuple[int, dict[str, Any]]:
        headers = {"host": "h", "content-type": "application/x-amz-json-1.1", "x-amz-target": f"{ECS}.{op}"}
        if token is not None:
            headers["x-amz-security-token"] = token
        signed = sigv4.sign("POST", "/", headers, b"{}", c.access_key_id, c.secret_access_key,
                            "us-east-1", "ecs")
        status, body = await ops.answer("POST", "/", "", signed, b"{}", "rid")
        return status, json.loads(body)

    assert (await call("ListClusters"))[0] == 200
    status, body = await call("CreateCluster")
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    assert body["message"].startswith(
        "User: arn:aws:sts::000000000000:assumed-role/viewer/abc123 is not authorized to perform: "
        "ecs:CreateCluster"
    )
    assert (await call("ListClusters", token=None))[1]["__type"] == "UnrecognizedClientException"
    other = sessions.mint(KEY, "viewer", TASK, 60)
    assert (await call("ListClusters", token=other.token))[1]["__type"] == "UnrecognizedClientException"
    await records.delete_role(store, "viewer")
    assert (await call("ListClusters"))[1]["__type"] == "UnrecognizedClientException"


def test_role_arns() -> None:
    assert records.role_arn("000000000000", "app") == "arn:aws:iam::000000000000:role/app"
    assert records.role_name("arn:aws:iam::000000000000:role/app", "000000000000") == "app"
    assert records.role_name("arn:aws:iam::000000000000:role/path/to/app", "000000000000") == "app"
    assert records.role_name("arn:aws:iam::111111111111:role/app", "000000000000") is None
    assert records.role_name("app", "000000000000") is None
