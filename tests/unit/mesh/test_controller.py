"""The controller over a real store, with plain stand-ins for the runner's and discovery's views."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from dockyard.store import Store
from mesh import data as mesh_data
from mesh.cache import SnapshotCache
from mesh.controller import VIRTUAL_NODE, VIRTUAL_SERVICE, Controller
from mesh.data import MIGRATIONS, ROUTE, VIRTUAL_ROUTER, Data, Mesh, Resource
from mesh.debounce import Debounce
from mesh.snapshot import CLUSTER, ENDPOINT
from mesh.snapshot import ROUTE as RDS
from tests.unit.mesh.desired_fakes import Alias, ConnectService, Task, instance

NS = "shop.local"
BLACKHOLE = "egress_blackhole"  # the virtual outbound listener's default (mesh.snapshot)
TASK = Task("arn:task/front-1", alias_addresses={"web.shop.local": "127.255.0.1"})
WEB = ConnectService(NS, "web", aliases=(Alias("web.shop.local", 80),))


class FakeConnect:
    change_topics = ("runner/task",)

    def __init__(self) -> None:
        self.tasks = [TASK]

    def meshed_tasks(self):
        return self.tasks

    def namespace_services(self, namespace: str):
        return [WEB] if namespace == NS else []


class FakeInstances:
    change_topics = ("discovery/instance",)

    def __init__(self) -> None:
        self.found = {
            (NS, "web"): [
                instance("t1", "10.0.0.1", ECS_TASK_DEFINITION_REVISION="1"),
                instance("t2", "10.0.0.2", ECS_TASK_DEFINITION_REVISION="2"),
            ]
        }

    def instances(self, namespace: str, service: str):
        return self.found.get((namespace, service))


@pytest.fixture(autouse=True)
def node_kinds(monkeypatch):
    """Virtual nodes and services, stored as the other App Mesh resources are."""
    monkeypatch.setitem(mesh_data.TOPICS, VIRTUAL_NODE, "mesh/virtual-node")
    monkeypatch.setitem(mesh_data.TOPICS, VIRTUAL_SERVICE, "mesh/virtual-service")


@contextlib.asynccontextmanager
async def running(
    tmp_path: Path, quiet: float = 0.1, connected=set
) -> AsyncIterator[tuple[Controller, Data]]:
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    data = Data(store)
    ctl = Controller(
        data,
        SnapshotCache(),
        FakeConnect(),
        FakeInstances(),
        connected=connected,
        debounce=Debounce(quiet=quiet, bound=1.0),
    )
    task = asyncio.create_task(ctl.run())
    await asyncio.sleep(0.01)
    try:
        yield ctl, data
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()


def resource(kind: str, name: str, spec: dict, parent: str = "") -> Resource:
    return Resource(kind, "m", parent, name, f"arn:{name}", name, spec, [], 1, time.time(), time.time())


def node_spec(revision: str) -> dict:
    return {
        "serviceDiscovery": {
            "awsCloudMap": {
                "namespaceName": NS,
                "serviceName": "web",
                "attributes": [{"key": "ECS_TASK_DEFINITION_REVISION", "value": revision}],
            }
        },
        "listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
    }


def route_spec(v1: int, v2: int) -> dict:
    return {
        "httpRoute": {
            "match": {"prefix": "/"},
            "action": {
                "weightedTargets": [
                    {"virtualNode": "web-v1", "weight": v1},
                    {"virtualNode": "web-v2", "weight": v2},
                ]
            },
        }
    }


async def canary(data: Data) -> None:
    now = time.time()
    await data.create_mesh(Mesh("m", "arn:m", "u", {}, [], 1, now, now))
    await data.create_resource(resource(VIRTUAL_NODE, "web-v1", node_spec("1")))
    await data.create_resource(resource(VIRTUAL_NODE, "web-v2", node_spec("2")))
    await data.create_resource(
        resource(VIRTUAL_ROUTER, "r", {"listeners": [{"portMapping": {"port": 80, "protocol": "http"}}]})
    )
    await data.create_resource(resource(ROUTE, "split", route_spec(90, 10), parent="r"))
    await data.create_resource(
        resource(
            VIRTUAL_SERVICE, "web.shop.local", {"provider": {"virtualRouter": {"virtualRouterName": "r"}}}
        )
    )


async def until(predicate, timeout: float = 2.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)
    return time.monotonic() - start


def weights(ctl: Controller) -> dict[str, int]:
    (rc,) = ctl.cache.get_snapshot(TASK.task_arn).resources[RDS]
    (vh,) = rc.virtual_hosts
    return {c.name: c.weight.value for c in vh.routes[0].route.weighted_clusters.clusters}


async def test_a_meshed_task_gets_its_snapshot_at_start(tmp_path: Path):
    async with running(tmp_path) as (ctl, _):
        snap = ctl.cache.get_snapshot(TASK.task_arn)
        assert snap is not None and snap.names(CLUSTER) - {BLACKHOLE} == {"sc/shop.local/web"}
        assert ctl.cache.nodes() == [TASK.task_arn]


async def test_an_app_mesh_route_weight_change_is_pushed_at_once(tmp_path: Path):
    async with running(tmp_path, quiet=5.0) as (ctl, data):  # a long quiet: only urgency can push
        await canary(data)
        await until(
            lambda: (
                ctl.cache.get_snapshot(TASK.task_arn).names(CLUSTER) - {BLACKHOLE}
                == {"am/m/web-v1", "am/m/web-v2"}
            )
        )
        assert weights(ctl) == {"am/m/web-v1": 90, "am/m/web-v2": 10}
        before = ctl.cache.get_snapshot(TASK.task_arn)
        await data.update_resource(ROUTE, "m", "r", "split", route_spec(50, 50))
        took = await until(lambda: weights(ctl) == {"am/m/web-v1": 50, "am/m/web-v2": 50})
        assert took < 0.5
        after = ctl.cache.get_snapshot(TASK.task_arn)
        assert {t for t in after.versions if after.versions[t] != before.versions[t]} == {RDS}


async def test_discovery_churn_waits_for_quiet(tmp_path: Path):
    async with running(tmp_path, quiet=0.3) as (ctl, data):

        def endpoints() -> set[str]:
            (cla,) = ctl.cache.get_snapshot(TASK.task_arn).resources[ENDPOINT]
            return {
                e.endpoint.address.socket_address.address for loc in cla.endpoints for e in loc.lb_endpoints
            }

        assert endpoints() == {"10.0.0.1", "10.0.0.2"}
        ctl.instances.found[(NS, "web")].append(instance("t3", "10.0.0.3"))
        async with data.store.transaction() as tx:
            tx.changed("discovery/instance", "srv/t3")
        await asyncio.sleep(0.1)
        assert endpoints() == {"10.0.0.1", "10.0.0.2"}  # still waiting for quiet
        took = await until(lambda: "10.0.0.3" in endpoints())
        assert took < 1.0


async def test_an_unchanged_snapshot_is_not_set_again(tmp_path: Path):
    async with running(tmp_path) as (ctl, data):
        before, pushes = ctl.cache.get_snapshot(TASK.task_arn), ctl.pushes
        async with data.store.transaction() as tx:
            tx.changed("runner/task", "other")
        await until(lambda: ctl.pushes > pushes)
        assert ctl.cache.get_snapshot(TASK.task_arn) is before


async def test_a_stopped_task_is_forgotten_and_an_unknown_connected_node_gets_an_empty_snapshot(
    tmp_path: Path,
):
    connected = {"stranger"}
    async with running(tmp_path, connected=lambda: connected) as (ctl, data):
        stranger = ctl.cache.get_snapshot("stranger")
        assert stranger is not None and all(not rs for rs in stranger.resources.values())
        ctl.connect.tasks = []
        connected.clear()
        async with data.store.transaction() as tx:
            tx.changed("runner/task", TASK.task_arn)
        await until(lambda: ctl.cache.nodes() == [])
        ctl.node_connected("late")
        assert ctl.cache.get_snapshot("late") is not None


async def test_a_tls_node_gets_its_certificate_and_a_new_one_over_sds_before_it_expires(tmp_path: Path,
                                                                                       monkeypatch):
    """Service Connect's tls on web: front (its caller) needs a certificate; the controller
    wakes at the renewal (half the 0.4 s lifetime) and only front's SDS version changes."""
    from dataclasses import replace

    from mesh.ca import Issuer, MeshCA
    from mesh.snapshot import LISTENER, SECRET

    monkeypatch.setattr(FakeConnect, "namespace_services",
                        lambda self, ns: [replace(WEB, tls=True)] if ns == NS else [])
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    issuer = Issuer(MeshCA.load_or_create(tmp_path / "ca", "dockyard.local"), 0.4)
    ctl = Controller(Data(store), SnapshotCache(), FakeConnect(), FakeInstances(), issuer=issuer,
                     trust_domain="dockyard.local")
    task = asyncio.create_task(ctl.run())
    try:
        for _ in range(200):
            await asyncio.sleep(0.01)
            if ctl.cache.get_snapshot(TASK.task_arn) is not None:
                break
        first = ctl.cache.get_snapshot(TASK.task_arn)
        assert first is not None and len(first.resources[SECRET]) == 2
        for _ in range(300):  # renewed within about 0.2 s; allow a loaded machine 3 s
            await asyncio.sleep(0.01)
            if issuer.issued >= 3:
                break
        assert issuer.issued >= 3
        now = ctl.cache.get_snapshot(TASK.task_arn)
        assert now.versions[SECRET] != first.versions[SECRET]
        assert {t: now.versions[t] for t in (CLUSTER, ENDPOINT, LISTENER, RDS)} == \
            {t: first.versions[t] for t in (CLUSTER, ENDPOINT, LISTENER, RDS)}
        assert set(issuer.held) == {TASK.task_arn}
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        store.close()
