"""The mesh controller driving a real Envoy (``envoy`` on PATH) through store changes.

In process: a real store with App Mesh's resources written through ``mesh.data``, the
controller, the ``AdsServer`` on a real gRPC port and Envoy with the bootstrap
``mesh.bootstrap`` generates. The runner's and discovery's views are plain stand-ins (the
runner does not place meshed tasks yet): one meshed task whose node id is Envoy's, two
backends registered as revisions 1 and 2 of a Cloud Map service. An App Mesh route's weight
change, written to the store, reaches Envoy and is ACKed; an endpoint's health flip is
debounced and reaches Envoy's cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
from pathlib import Path

import grpc
import pytest

from dockyard.store import Store
from mesh import data as mesh_data
from mesh.bootstrap import bootstrap
from mesh.cache import SnapshotCache
from mesh.controller import VIRTUAL_NODE, VIRTUAL_SERVICE, Controller
from mesh.data import MIGRATIONS, ROUTE, Data
from mesh.server import AdsServer, add_to_server
from mesh.snapshot import ROUTE as RDS
from tests.integration.test_mesh_ads import admin_get, backend, curl, eventually
from tests.support.server import free_port
from tests.unit.mesh.desired_fakes import Alias, ConnectService, Task, instance
from tests.unit.mesh.test_controller import FakeConnect, canary, route_spec

NODE = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef"
NS = "shop.local"


def weights(admin: int) -> dict[str, int]:
    dump = json.loads(admin_get(admin, "/config_dump?resource=dynamic_route_configs"))
    out: dict[str, int] = {}

    def walk(x):
        if isinstance(x, dict):
            if "weighted_clusters" in x:
                for c in x["weighted_clusters"]["clusters"]:
                    out[c["name"]] = int(c.get("weight", 0))
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(dump)
    return out


@pytest.fixture
async def plane(tmp_path: Path, monkeypatch):
    if shutil.which("envoy") is None:
        pytest.fail("envoy is not on PATH (put .venv/bin first)")
    monkeypatch.setitem(mesh_data.TOPICS, VIRTUAL_NODE, "mesh/virtual-node")
    monkeypatch.setitem(mesh_data.TOPICS, VIRTUAL_SERVICE, "mesh/virtual-service")
    (b1, p1), (b2, p2) = await backend("v1"), await backend("v2")
    egress, admin, outbound = free_port(), free_port(), free_port()

    class Instances:
        change_topics = ("discovery/instance", "discovery/health")
        found = {(NS, "web"): [instance("t1", "127.0.0.1", p1, ECS_TASK_DEFINITION_REVISION="1"),
                               instance("t2", "127.0.0.1", p2, ECS_TASK_DEFINITION_REVISION="2")]}

        def instances(self, namespace, service):
            return self.found.get((namespace, service))

    connect = FakeConnect()
    # the virtual outbound listener on a port of its own (15001 may be another test's)
    connect.tasks = [Task(NODE, alias_addresses={"web.shop.local": "127.255.0.1"}, egress_port=outbound)]
    web = ConnectService(NS, "web", aliases=(Alias("web.shop.local", egress),))
    connect.namespace_services = lambda ns: [web] if ns == NS else []  # type: ignore[method-assign]
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    data = Data(store)
    cache = SnapshotCache()
    ctl: Controller
    ads = AdsServer(cache, on_node=lambda n: ctl.node_connected(n))
    ctl = Controller(data, cache, connect, Instances(), connected=ads.nodes)
    server = grpc.aio.server()
    add_to_server(server, ads)
    xds_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    run = asyncio.create_task(ctl.run())
    boot = tmp_path / "envoy.json"
    boot.write_text(json.dumps(bootstrap(NODE, "front", "127.0.0.1", xds_port, admin)))
    proc = await asyncio.create_subprocess_exec(
        "envoy", "-c", str(boot), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / "envoy.log").open("w"))
    try:
        yield ctl, ads, data, admin, egress, p2
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await server.stop(0)
        store.close()
        await b1.cleanup()
        await b2.cleanup()


async def test_an_app_mesh_weight_change_in_the_store_reaches_envoy(plane):
    ctl, ads, data, admin, egress, p2 = plane
    assert await ads.ready(NODE, 30), "Envoy did not ACK its first snapshot"
    assert weights(admin) == {"sc/shop.local/web": 1}  # Service Connect alone
    await canary(data)
    await eventually(lambda: weights(admin) == {"am/m/web-v1": 90, "am/m/web-v2": 10}, timeout=10)
    # revision 2's instance only (once the new cluster has warmed)
    await eventually(lambda: f"am/m/web-v2::127.0.0.1:{p2}::" in admin_get(admin, "/clusters"), timeout=10)
    if f"127.0.0.1:{egress}" in admin_get(admin, "/listeners"):  # the egress listener binds its port
        counts = await curl(egress, 100)
        assert counts.count("v1") + counts.count("v2") == 100 and counts.count("v2") <= 30

    before = ctl.cache.get_snapshot(NODE)
    start = time.monotonic()
    await data.update_resource(ROUTE, "m", "r", "split", route_spec(0, 100))
    await eventually(lambda: ctl.cache.get_snapshot(NODE) is not before, timeout=5)
    assert await ads.ready(NODE, 10)
    took = time.monotonic() - start
    after = ctl.cache.get_snapshot(NODE)
    assert {t for t in after.versions if after.versions[t] != before.versions[t]} == {RDS}
    assert weights(admin) == {"am/m/web-v2": 100}
    print(f"store write -> Envoy ACK of the new routes: {took * 1000:.1f} ms")
    assert took < 1.0
    if f"127.0.0.1:{egress}" in admin_get(admin, "/listeners"):
        assert set(await curl(egress, 20)) == {"v2"}

    # discovery churn: revision 2's instance goes unhealthy; Envoy's cluster loses it
    ctl.instances.found[(NS, "web")][1] = instance("t2", "127.0.0.1", p2, healthy=False,
                                                   ECS_TASK_DEFINITION_REVISION="2")
    async with data.store.transaction() as tx:
        tx.changed("discovery/health", "srv/t2")
    await eventually(lambda: f"am/m/web-v2::127.0.0.1:{p2}::" not in admin_get(admin, "/clusters"), timeout=5)
    status = ads.status()[NODE]
    assert status["last_nack"] is None
