"""A real Envoy (``envoy`` on PATH) fed over ADS by ``mesh.server``: it receives the clusters,
endpoints, listener and routes of its node, carries real traffic (curl) by weight, follows a
weight change, and NACKs a bad version while keeping its last good configuration."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from aiohttp import web
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2
from google.protobuf import duration_pb2

from mesh.cache import SnapshotCache
from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Service, Target
from mesh.server import AdsServer, add_to_server
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, Snapshot, compute
from tests.support.server import free_port

NODE = "task-a"


def bootstrap(xds_port: int, admin_port: int) -> dict:
    h2 = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}}}
    ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": NODE, "cluster": "test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}]},
            "cds_config": ads, "lds_config": ads},
        "static_resources": {"clusters": [{
            "name": "xds", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": h2,
            "load_assignment": {"cluster_name": "xds", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": xds_port}}}}]}]}}]},
    }


def config(egress: int, v1: int, v2: int) -> MeshConfig:
    return MeshConfig(services=(Service("web-v1"), Service("web-v2")),
                      routes=(Route("web.shop.local", egress, (Target("web-v1", v1), Target("web-v2", v2)),
                                    timeout=5),),
                      clients=(Client(NODE, ("web.shop.local",)),))


async def backend(text: str) -> tuple[web.AppRunner, int]:
    async def hello(_: web.Request) -> web.Response:
        return web.Response(text=text)
    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, port


def admin_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


async def eventually(check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await asyncio.to_thread(check)
            if got:
                return got
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(0.05)


async def curl(egress: int, n: int = 1) -> list[str]:
    url = f"http://127.0.0.1:{egress}/"
    args = [a for _ in range(n) for a in ("-H", "Host: web.shop.local", url, "-w", "\n")]
    proc = await asyncio.create_subprocess_exec("curl", "-sS", "--max-time", "5", *args,
                                                stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    return out.decode().split()


@pytest.fixture
async def mesh(tmp_path: Path):
    if shutil.which("envoy") is None:
        pytest.fail("envoy is not on PATH (put .venv/bin first)")
    cache = SnapshotCache()
    ads = AdsServer(cache)
    server = grpc.aio.server()
    add_to_server(server, ads)
    xds_port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    (v1, p1), (v2, p2) = await backend("v1"), await backend("v2")
    admin, egress = free_port(), free_port()
    eps = {"web-v1": [Endpoint("127.0.0.1", p1)], "web-v2": [Endpoint("127.0.0.1", p2)]}
    boot = tmp_path / "envoy.json"
    boot.write_text(json.dumps(bootstrap(xds_port, admin)))
    proc = await asyncio.create_subprocess_exec(
        "envoy", "-c", str(boot), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / "envoy.log").open("w"))
    try:
        yield cache, ads, eps, admin, egress, xds_port
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await server.stop(0)
        await v1.cleanup()
        await v2.cleanup()


def acked(ads: AdsServer, snap: Snapshot) -> bool:
    status = ads.status().get(NODE)
    return bool(status) and all(status["acked"].get(t) == snap.versions[t]
                                for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE))


async def test_envoy_receives_its_clusters_endpoints_and_routes_and_carries_weighted_traffic(mesh):
    cache, ads, eps, admin, egress, _ = mesh
    snap = compute(config(egress, 100, 0), eps, Node(NODE))
    cache.set_snapshot(NODE, snap)
    await eventually(lambda: acked(ads, snap))
    clusters = admin_get(admin, "/clusters")
    for name in ("web-v1", "web-v2"):
        port = eps[name][0].port
        assert f"{name}::127.0.0.1:{port}::" in clusters
    dump = json.loads(admin_get(admin, "/config_dump"))
    text = json.dumps(dump)
    assert "egress_" + str(egress) in text and "web.shop.local" in text
    await eventually(lambda: admin_get(admin, "/listeners").find(f"127.0.0.1:{egress}") >= 0)
    assert set(await curl(egress, 20)) == {"v1"}

    shifted = compute(config(egress, 0, 100), eps, Node(NODE))
    start = time.monotonic()
    cache.set_snapshot(NODE, shifted)
    await eventually(lambda: acked(ads, shifted), timeout=10)
    took = time.monotonic() - start
    assert set(await curl(egress, 20)) == {"v2"}
    print(f"weight change ACKed in {took * 1000:.1f} ms")

    half = compute(config(egress, 50, 50), eps, Node(NODE))
    cache.set_snapshot(NODE, half)
    await eventually(lambda: acked(ads, half), timeout=10)
    counts = await curl(egress, 200)
    assert 60 <= counts.count("v2") <= 140 and counts.count("v1") + counts.count("v2") == 200


async def test_a_nacked_version_is_recorded_and_envoy_keeps_the_last_good_configuration(mesh):
    cache, ads, eps, admin, egress, _ = mesh
    good = compute(config(egress, 100, 0), eps, Node(NODE))
    cache.set_snapshot(NODE, good)
    await eventually(lambda: acked(ads, good))
    await eventually(lambda: admin_get(admin, "/listeners").find(f"127.0.0.1:{egress}") >= 0)
    # A consistent snapshot Envoy must refuse: a cluster with a negative connect timeout.
    broken = cluster_pb2.Cluster()
    broken.CopyFrom(next(c for c in good.resources[CLUSTER] if c.name == "web-v2"))
    broken.connect_timeout.CopyFrom(duration_pb2.Duration(seconds=-1))
    bad = Snapshot.of([c for c in good.resources[CLUSTER] if c.name != "web-v2"] + [broken],
                      good.resources[ENDPOINT], good.resources[LISTENER], good.resources[ROUTE])
    assert bad.consistent()
    cache.set_snapshot(NODE, bad)
    nack = await eventually(lambda: next((n for n in ads.nacks if n.version == bad.versions[CLUSTER]), None))
    assert nack.node == NODE and nack.type_url == CLUSTER and nack.message
    assert ads.status()[NODE]["acked"][CLUSTER] == good.versions[CLUSTER]
    assert ads.status()[NODE]["last_nack"]["version"] == bad.versions[CLUSTER]
    assert set(await curl(egress, 10)) == {"v1"}
    await asyncio.sleep(0.5)
    assert sum(1 for n in ads.nacks if n.version == bad.versions[CLUSTER]) == 1  # never re-sent
    # a later good version is taken again
    fixed = compute(config(egress, 0, 100), eps, Node(NODE))
    cache.set_snapshot(NODE, fixed)
    await eventually(lambda: acked(ads, fixed), timeout=10)
    assert set(await curl(egress, 10)) == {"v2"}


async def test_garbage_on_the_xds_port_does_not_disturb_envoy(mesh):
    cache, ads, eps, _, egress, xds_port = mesh
    good = compute(config(egress, 100, 0), eps, Node(NODE))
    cache.set_snapshot(NODE, good)
    await eventually(lambda: acked(ads, good))
    xds = next(iter(ads.streams))  # Envoy's stream, to compare later
    target = f"127.0.0.1:{xds_port}"
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        nameless = stub.StreamAggregatedResources()
        await nameless.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await nameless.read()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        delta = stub.DeltaAggregatedResources()  # delta, without node id
        await delta.write(discovery_pb2.DeltaDiscoveryRequest(type_url=CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await delta.read()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        silent = stub.StreamAggregatedResources()  # subscribes as Envoy's node, never ACKs
        await silent.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=base_pb2.Node(id=NODE)))
        assert (await silent.read()).version_info == good.versions[CLUSTER]
        shifted = compute(config(egress, 0, 100), eps, Node(NODE))
        cache.set_snapshot(NODE, shifted)
        await eventually(lambda: xds.types[ROUTE].acked_version == shifted.versions[ROUTE], timeout=10)
        assert set(await curl(egress, 10)) == {"v2"}
        silent.cancel()


async def test_replacing_a_service_under_load_fails_no_request(mesh):
    """A smoke test under load: Envoy's gap between our CDS and RDS answers is well under a
    millisecond, so this does not catch a wrong order by itself (it passed with the removal
    deferral disabled); tests/unit/mesh/test_stream.py proves the order."""
    cache, ads, eps, admin, egress, _ = mesh
    only = {"v1": MeshConfig(services=(Service("web-v1"),),
                             routes=(Route("web.shop.local", egress, (Target("web-v1", 1),)),),
                             clients=(Client(NODE, ("web.shop.local",)),)),
            "v2": MeshConfig(services=(Service("web-v2"),),
                             routes=(Route("web.shop.local", egress, (Target("web-v2", 1),)),),
                             clients=(Client(NODE, ("web.shop.local",)),))}
    first = compute(only["v1"], eps, Node(NODE))
    cache.set_snapshot(NODE, first)
    await eventually(lambda: acked(ads, first))
    await eventually(lambda: admin_get(admin, "/listeners").find(f"127.0.0.1:{egress}") >= 0)
    stop = asyncio.Event()
    answers: list[str] = []

    async def load() -> None:
        while not stop.is_set():
            answers.extend(await curl(egress, 20))

    loader = asyncio.create_task(load())
    await asyncio.sleep(0.3)
    for step in ("v2", "v1", "v2"):
        snap = compute(only[step], eps, Node(NODE))
        cache.set_snapshot(NODE, snap)
        await eventually(lambda snap=snap: acked(ads, snap), timeout=10)
        await asyncio.sleep(0.3)
    stop.set()
    await loader
    assert set(answers) <= {"v1", "v2"}, [a for a in answers if a not in ("v1", "v2")][:5]
    assert answers[-1] == "v2" and len(answers) >= 100
    assert "web-v1::" not in admin_get(admin, "/clusters")  # removed once the routes left it
