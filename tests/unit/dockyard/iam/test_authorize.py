"""The authorization hook of the AWS layer over a real store: keys with a policy, admin keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard import keys
from dockyard.aws import sigv4
from dockyard.aws.protocol import ECS, PEER, Call, Operations
from dockyard.config import Config
from dockyard.iam import policy
from dockyard.iam.authorize import Authorizer, permits
from dockyard.store import Store

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CLUSTER = "arn:aws:ecs:us-east-1:000000000000:cluster/"


async def setup(tmp_path: Any) -> tuple[Store, Operations, list[Call]]:
    store = Store.open(tmp_path / "s.db", keys.MIGRATIONS)
    ops = Operations(keys.SecretCache(store))
    ops.authorize = Authorizer(store, Config(data_dir=str(tmp_path)))
    seen: list[Call] = []

    async def ok(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(call)
        return {"ok": True, "privileged": permits(call, "dockyard:RunPrivilegedTask", [CLUSTER + "x"])}

    for name in ("ListClusters", "CreateCluster", "DescribeClusters", "ListServices"):
        ops.add(ECS, name, ok)
    return store, ops, seen


async def call(ops: Operations, key: keys.AccessKey, op: str, params: dict[str, Any] | None = None,
               peer: str = "127.0.0.1") -> tuple[int, dict[str, Any]]:
    body = json.dumps(params or {}).encode()
    headers = sigv4.sign("POST", "/", {"host": "h", "content-type": "application/x-amz-json-1.1",
                                       "x-amz-target": f"{ECS}.{op}"}, body, key.access_key_id, key.secret,
                         "us-east-1", "ecs")
    headers[PEER] = peer
    status, payload = await ops.answer("POST", "/", "", headers, body, "rid")
    return status, json.loads(payload)


async def test_a_key_without_a_policy_is_an_administrator(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    admin = await keys.create(store, "admin")
    for op in ("ListClusters", "CreateCluster"):
        status, body = await call(ops, admin, op)
        assert status == 200 and body["privileged"] is True


async def test_a_read_only_key_lists_but_cannot_create(tmp_path: Any) -> None:
    store, ops, seen = await setup(tmp_path)
    ro = await keys.create(store, "viewer", policy.parse(policy.READ_ONLY).document)
    status, body = await call(ops, ro, "ListClusters")
    assert status == 200 and body["privileged"] is False
    status, body = await call(ops, ro, "CreateCluster", {"clusterName": "x"})
    assert status == 400 and body["__type"] == "AccessDeniedException"
    assert body["message"] == (
        "User: arn:aws:iam::000000000000:user/viewer is not authorized to perform: ecs:CreateCluster "
        f"on resource: {CLUSTER}x because no identity-based policy allows the ecs:CreateCluster action"
    )
    assert len(seen) == 1  # the refused call never reached its handler


async def test_a_deny_on_one_cluster(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:*", "Resource": CLUSTER + "secret"},
    ]}
    key = await keys.create(store, "ci", policy.parse(doc).document)
    assert (await call(ops, key, "ListServices", {"cluster": "open"}))[0] == 200
    status, body = await call(ops, key, "ListServices", {"cluster": "secret"})
    assert status == 400 and "with an explicit deny" in body["message"]
    status, body = await call(ops, key, "DescribeClusters", {"clusters": ["open", CLUSTER + "secret"]})
    assert status == 400 and f"on resource: {CLUSTER}secret" in body["message"]


async def test_conditions_see_the_caller(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    doc = {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "ecs:*", "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"},
                      "StringEquals": {"aws:username": "ci", "aws:RequestedRegion": "us-east-1"},
                      "Bool": {"aws:SecureTransport": "false"}},
    }}
    key = await keys.create(store, "ci", policy.parse(doc).document)
    assert (await call(ops, key, "ListClusters", peer="10.1.1.1"))[0] == 200
    assert (await call(ops, key, "ListClusters", peer="127.0.0.1"))[0] == 400


async def test_policy_changes_apply_at_once(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    key = await keys.create(store, "ci", policy.parse(policy.READ_ONLY).document)
    assert (await call(ops, key, "ListClusters"))[0] == 200
    await keys.delete(store, key.access_key_id)
    status, body = await call(ops, key, "ListClusters")
    assert status == 403 and body["__type"] == "UnrecognizedClientException"
    assert store.query_one("SELECT count(*) FROM key_policies")[0] == 0


async def test_a_stored_policy_that_no_longer_parses_allows_nothing(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    key = await keys.create(store, "ci", "{not json")
    status, body = await call(ops, key, "ListClusters")
    assert status == 400 and body["__type"] == "AccessDeniedException"
