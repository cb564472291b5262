"""The trust model of tasks: host access refused by default, allowed per cluster and per key."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from dockyard import keys
from dockyard.aws import sigv4
from dockyard.aws.protocol import ECS, Operations
from dockyard.config import Config
from dockyard.iam import policy
from dockyard.iam.authorize import Authorizer
from dockyard.store import Store
from runner import clusters, hostaccess, part, taskdefs
from runner.taskdef.trust import host_access, path_allowed


def td(**extra: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "busybox", "memory": 16, **extra.pop("container", {})}
    return {"family": "f", "containerDefinitions": [container], **extra}


def fields(defn: dict[str, Any], allowed: tuple[str, ...] = ()) -> list[str]:
    return [h.field for h in host_access(defn, allowed)]


def test_an_ordinary_task_needs_no_host_access() -> None:
    assert fields(td()) == []
    assert fields(td(networkMode="bridge", pidMode="task", volumes=[{"name": "v"}])) == []
    assert fields(td(container={"privileged": False})) == []


def test_each_field_that_reaches_into_the_host_is_named() -> None:
    defn = td(networkMode="host", pidMode="host", ipcMode="host", container={"privileged": True},
              volumes=[{"name": "root", "host": {"sourcePath": "/"}}])
    assert fields(defn) == ["networkMode", "pidMode", "ipcMode", "containerDefinitions[app].privileged",
                            "volumes[root].host.sourcePath"]


@pytest.mark.parametrize(
    ("path", "allowed", "ok"),
    [
        ("/srv/data", ["/srv/data"], True),
        ("/srv/data/app", ["/srv/data"], True),
        ("/srv/data/", ["/srv/data/"], True),
        ("/srv/database", ["/srv/data"], False),
        ("/srv/data/../../etc", ["/srv/data"], False),
        ("/srv//data/./x", ["/srv/data"], True),
        ("/etc", [], False),
        ("/", ["/"], False),  # "/" holds the Docker socket
        ("/var/run/docker.sock", ["/var/run"], False),
        ("/var/run", ["/var"], False),
        ("/run", ["/"], False),
        ("/var/lib/app", ["/var"], True),
        ("/tmp/x", ["relative"], False),
    ],
)
def test_host_paths(path: str, allowed: list[str], ok: bool) -> None:
    assert path_allowed(path, allowed) is ok


def test_the_docker_socket_is_named_as_such() -> None:
    found = host_access(td(volumes=[{"name": "d", "host": {"sourcePath": "/var/run/docker.sock"}}]), ["/"])
    assert found[0].gives.startswith("the Docker socket")


# -- the check at RunTask, through the AWS layer, over a real store ----------------------------------


async def setup(tmp_path: Any, **settings: str) -> tuple[Any, Operations, list[dict[str, Any]]]:
    store = Store.open(tmp_path / "s.db", [*keys.MIGRATIONS, *part.MIGRATIONS])
    config = Config(data_dir=str(tmp_path), **settings)
    for name in ("default", "infra"):
        await clusters.create(store, config, {"clusterName": name})
    await taskdefs.register(store, config, td(family="plain"))
    await taskdefs.register(store, config, td(family="hostnet", networkMode="host"))
    await taskdefs.register(store, config, td(family="priv", container={"privileged": True}))
    data = [{"name": "d", "host": {"sourcePath": "/srv/d"}}]
    await taskdefs.register(store, config, td(family="data", volumes=data))
    ops = Operations(keys.SecretCache(store))
    ops.authorize = Authorizer(store, config)
    seen: list[dict[str, Any]] = []

    async def run_task(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        return {"tasks": [], "failures": []}

    ops.add(ECS, "RunTask", part._bind(SimpleNamespace(store=store, config=config), run_task, "RunTask"))
    return store, ops, seen


async def run(ops: Operations, key: keys.AccessKey, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    body = json.dumps(params).encode()
    headers = sigv4.sign("POST", "/", {"host": "h", "content-type": "application/x-amz-json-1.1",
                                       "x-amz-target": f"{ECS}.RunTask"}, body, key.access_key_id, key.secret,
                         "us-east-1", "ecs")
    status, payload = await ops.answer("POST", "/", "", headers, body, "rid")
    return status, json.loads(payload)


async def test_host_access_is_refused_by_default_even_for_an_administrator(tmp_path: Any) -> None:
    store, ops, seen = await setup(tmp_path)
    admin = await keys.create(store, "admin")
    assert (await run(ops, admin, {"taskDefinition": "plain"}))[0] == 200
    assert seen[-1]["taskDefinition"].endswith(":task-definition/plain:1")  # pinned to what was checked
    for family, field in (("hostnet", "networkMode"), ("priv", "containerDefinitions[app].privileged"),
                          ("data", "volumes[d].host.sourcePath")):
        status, body = await run(ops, admin, {"taskDefinition": family, "cluster": "infra"})
        assert (status, body["__type"]) == (400, "ClientException"), body
        assert body["message"].startswith(f"{field} is refused") and "cluster infra" in body["message"]
    assert len(seen) == 1


async def test_the_operator_allows_it_on_a_cluster(tmp_path: Any) -> None:
    store, ops, _seen = await setup(tmp_path, host_access_clusters="other, inf?a")
    admin = await keys.create(store, "admin")
    assert (await run(ops, admin, {"taskDefinition": "priv", "cluster": "infra"}))[0] == 200
    assert (await run(ops, admin, {"taskDefinition": "priv"}))[0] == 400  # not on default


async def test_an_allowed_host_path_needs_no_host_access(tmp_path: Any) -> None:
    store, ops, _seen = await setup(tmp_path, host_paths="/srv")
    admin = await keys.create(store, "admin")
    assert (await run(ops, admin, {"taskDefinition": "data"}))[0] == 200


async def test_a_key_with_a_policy_also_needs_the_iam_action(tmp_path: Any) -> None:
    store, ops, _seen = await setup(tmp_path, host_access_clusters="*")
    doc = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}}
    ci = await keys.create(store, "ci", policy.parse(doc).document)
    assert (await run(ops, ci, {"taskDefinition": "plain"}))[0] == 200
    status, body = await run(ops, ci, {"taskDefinition": "priv", "cluster": "infra"})
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    infra = "arn:aws:ecs:us-east-1:000000000000:cluster/infra"
    assert f"dockyard:RunPrivilegedTask on resource: {infra}" in body["message"]
    doc["Statement"] = [doc["Statement"], {"Effect": "Allow", "Action": hostaccess.ACTION,
                                           "Resource": "arn:aws:ecs:*:*:cluster/infra"}]
    ops_key = await keys.create(store, "ops", policy.parse(doc).document)
    assert (await run(ops, ops_key, {"taskDefinition": "priv", "cluster": "infra"}))[0] == 200
    assert (await run(ops, ops_key, {"taskDefinition": "priv", "cluster": "default"}))[0] == 400


async def test_an_unknown_definition_is_left_to_the_operation(tmp_path: Any) -> None:
    store, ops, seen = await setup(tmp_path)
    admin = await keys.create(store, "admin")
    assert (await run(ops, admin, {"taskDefinition": "nope"}))[0] == 200
    assert seen[-1]["taskDefinition"] == "nope"


async def test_a_task_role_needs_iam_pass_role(tmp_path: Any) -> None:
    store, ops, _ = await setup(tmp_path)
    config = Config(data_dir=str(tmp_path))
    role = "arn:aws:iam::000000000000:role/app"
    await taskdefs.register(store, config, td(family="roled", taskRoleArn=role))
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}
    ci = await keys.create(store, "ci", policy.parse(doc).document)
    status, body = await run(ops, ci, {"taskDefinition": "roled"})
    assert (status, body["__type"]) == (400, "AccessDeniedException")
    assert f"iam:PassRole on resource: {role}" in body["message"]
    doc["Statement"].append({"Effect": "Allow", "Action": "iam:PassRole", "Resource": role})
    passer = await keys.create(store, "passer", policy.parse(doc).document)
    assert (await run(ops, passer, {"taskDefinition": "roled"}))[0] == 200
    admin = await keys.create(store, "admin")
    assert (await run(ops, admin, {"taskDefinition": "roled"}))[0] == 200
