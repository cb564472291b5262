"""The container credentials endpoint of task roles, in process over a real store."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from dockyard import keys
from dockyard.config import Config
from dockyard.iam import policy, records, sessions
from dockyard.store import Store
from runner import part, supervisor
from runner.taskcreds import TaskCredentials

KEY = b"k" * 32


async def setup(tmp_path: Any) -> tuple[Store, TaskCredentials]:
    store = Store.open(tmp_path / "s.db", [*keys.MIGRATIONS, *records.MIGRATIONS, *part.MIGRATIONS])
    await records.create_role(store, "app", policy.parse(policy.READ_ONLY).document)
    for ident, status, role in (("t1", "RUNNING", "app"), ("t2", "STOPPED", "app"), ("t3", "RUNNING", "gone"),
                                ("t4", "RUNNING", "")):
        defn = {"family": "f", "containerDefinitions": [{"name": "c", "image": "i"}]}
        if role:
            defn["taskRoleArn"] = f"arn:aws:iam::000000000000:role/{role}"
        async with store.transaction() as tx:
            tx.execute(
                "INSERT INTO tasks (id, cluster, instance_id, definition_arn, family, definition,"
                " overrides, launch_type, last_status, desired_status, started_by, grp, cpu, memory,"
                " host_ports, tags, extra, created_at) VALUES (?, 'c', 'i', '', 'f', ?, '{}', 'EC2', ?,"
                " 'RUNNING', '', '', 0, 0, '[]', '[]', '{}', 0)",
                (ident, json.dumps(defn), status),
            )
    creds = TaskCredentials(store, Config(data_dir=str(tmp_path), task_role_seconds=120), KEY)
    creds.base = "http://172.17.0.1:1234"
    return store, creds


async def test_a_task_gets_credentials_of_its_role(tmp_path: Any) -> None:
    _, creds = await setup(tmp_path)
    env = creds.environment("t1")
    assert env["AWS_CONTAINER_CREDENTIALS_FULL_URI"] == "http://172.17.0.1:1234/v1/tasks/t1/credentials"
    app = web.Application()
    app.router.add_get("/v1/tasks/{task}/credentials", creds.handle)
    async with TestClient(TestServer(app)) as client:
        auth = {"Authorization": env["AWS_CONTAINER_AUTHORIZATION_TOKEN"]}
        resp = await client.get("/v1/tasks/t1/credentials", headers=auth)
        assert resp.status == 200
        body = await resp.json()
        assert body["RoleArn"] == "arn:aws:iam::000000000000:role/app"
        session = sessions.verify(KEY, body["AccessKeyId"], body["Token"])
        assert session is not None and session.role == "app" and session.task_arn.endswith(":task/c/t1")
        assert sessions.secret(KEY, body["AccessKeyId"]) == body["SecretAccessKey"]
        assert body["Expiration"].endswith("Z")
        # another task's token, no token, a stopped task, a missing role, no role
        other = {"Authorization": creds.token("t3")}
        assert (await client.get("/v1/tasks/t1/credentials", headers=other)).status == 403
        assert (await client.get("/v1/tasks/t1/credentials")).status == 403
        for ident in ("t2", "t3", "t4", "nope"):
            own = {"Authorization": creds.token(ident)}
            resp = await client.get(f"/v1/tasks/{ident}/credentials", headers=own)
            assert resp.status == 404, ident


async def test_only_tasks_with_a_role_get_the_variables(tmp_path: Any) -> None:
    store, creds = await setup(tmp_path)
    resolve = supervisor._environment_resolver(store, lambda: creds.environment("t1"))
    defn = {"containerDefinitions": [{"name": "a"}, {"name": "b"}]}
    assert resolve(defn) == {}
    with_role = resolve({**defn, "taskRoleArn": "arn:aws:iam::000000000000:role/app"})
    assert set(with_role) == {"a", "b"}
    assert with_role["a"]["AWS_CONTAINER_AUTHORIZATION_TOKEN"] == creds.token("t1")
    creds.base = ""  # the endpoint is off: nothing to tell
    assert resolve({**defn, "taskRoleArn": "arn:aws:iam::000000000000:role/app"}) == {}
