"""A real Envoy (``envoy`` on PATH) over ADS incremental xDS (``api_type: DELTA_GRPC``): it
receives clusters, endpoints, listener and routes, follows a weight change, and we count what
is sent: one endpoint change sends one ClusterLoadAssignment; a restarted control plane with
the same snapshot re-sends nothing to the reconnecting Envoy."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import duration_pb2

from mesh.cache import SnapshotCache
from mesh.delta import DeltaStream
from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Service, Target
from mesh.server import AdsServer, add_to_server
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, Snapshot, compute
from mesh.snapshot import ORDER as EVERY_TYPE
from tests.integration.test_mesh_ads import (
    NODE,
    acked,
    admin_get,
    backend,
    bootstrap,
    config,
    curl,
    eventually,
)
from tests.support.server import free_port

ORDER = tuple(t for t in EVERY_TYPE if t != SECRET)  # a plaintext snapshot's types (no SDS)


async def start_server(cache: SnapshotCache, port: int) -> tuple[grpc.aio.Server, AdsServer]:
    ads = AdsServer(cache)
    server = grpc.aio.server()
    add_to_server(server, ads)
    assert server.add_insecure_port(f"127.0.0.1:{port}") == port
    await server.start()
    return server, ads


def delta_stream(ads: AdsServer) -> DeltaStream | None:
    return next((s for s in ads.streams if isinstance(s, DeltaStream) and s.node == NODE), None)


@pytest.fixture
async def delta_mesh(tmp_path: Path):
    if shutil.which("envoy") is None:
        pytest.fail("envoy is not on PATH (put .venv/bin first)")
    cache = SnapshotCache()
    xds_port = free_port()
    servers = {"grpc": None}
    servers["grpc"], ads = await start_server(cache, xds_port)
    (v1, p1), (v2, p2) = await backend("v1"), await backend("v2")
    extra = await backend("v1")
    admin, egress = free_port(), free_port()
    eps = {"web-v1": [Endpoint("127.0.0.1", p1)], "web-v2": [Endpoint("127.0.0.1", p2)]}
    boot = bootstrap(xds_port, admin)
    boot["dynamic_resources"]["ads_config"]["api_type"] = "DELTA_GRPC"
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(boot))
    proc = await asyncio.create_subprocess_exec(
        "envoy", "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=(tmp_path / "envoy.log").open("w"))
    try:
        yield cache, ads, eps, admin, egress, xds_port, servers, extra[1]
    finally:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        await servers["grpc"].stop(0)
        for runner in (v1, v2, extra[0]):
            await runner.cleanup()


async def test_delta_envoy_gets_its_config_then_only_what_changes_and_nothing_on_a_reconnect(delta_mesh):
    cache, ads, eps, admin, egress, xds_port, servers, extra_port = delta_mesh
    snap = compute(config(egress, 100, 0), eps, Node(NODE))
    cache.set_snapshot(NODE, snap)
    await eventually(lambda: acked(ads, snap))
    clusters = admin_get(admin, "/clusters")
    for name in ("web-v1", "web-v2"):
        assert f"{name}::127.0.0.1:{eps[name][0].port}::" in clusters
    await eventually(lambda: admin_get(admin, "/listeners").find(f"127.0.0.1:{egress}") >= 0)
    assert set(await curl(egress, 20)) == {"v1"}
    stream = delta_stream(ads)
    assert stream is not None and all(stream.resources_sent[t] >= 1 for t in ORDER)

    shifted = compute(config(egress, 0, 100), eps, Node(NODE))
    before = dict(stream.resources_sent)
    cache.set_snapshot(NODE, shifted)
    await eventually(lambda: acked(ads, shifted), timeout=10)
    assert set(await curl(egress, 20)) == {"v2"}
    assert {t: stream.resources_sent[t] - before[t] for t in ORDER} == {t: int(t == ROUTE) for t in ORDER}

    # one endpoint changes: only that one ClusterLoadAssignment is sent
    moved = {**eps, "web-v1": [Endpoint("127.0.0.1", extra_port)]}
    one = compute(config(egress, 0, 100), moved, Node(NODE))
    before, responses = dict(stream.resources_sent), stream.responses_sent
    cache.set_snapshot(NODE, one)
    await eventually(lambda: acked(ads, one), timeout=10)
    await eventually(lambda: f"web-v1::127.0.0.1:{extra_port}::" in admin_get(admin, "/clusters"))
    sent = {t: stream.resources_sent[t] - before[t] for t in ORDER}
    print(f"after one endpoint change: {sent}, responses {stream.responses_sent - responses}")
    assert sent == {t: int(t == ENDPOINT) for t in ORDER} and stream.responses_sent - responses == 1

    # the control plane stops and comes back with the same snapshot: Envoy reconnects with
    # initial_resource_versions equal to the current ones, and nothing is re-sent
    await servers["grpc"].stop(0)
    servers["grpc"], ads2 = await start_server(cache, xds_port)
    await eventually(lambda: acked(ads2, one), timeout=30)
    await asyncio.sleep(0.5)
    again = delta_stream(ads2)
    print(f"after reconnect: {again.resources_sent}, responses {again.responses_sent}")
    assert set(again.types) == set(ORDER)
    assert sum(again.resources_sent.values()) == 0
    assert set(await curl(egress, 10)) == {"v2"}
    # and it still follows changes after the reconnect
    back = compute(config(egress, 100, 0), moved, Node(NODE))
    cache.set_snapshot(NODE, back)
    await eventually(lambda: acked(ads2, back), timeout=10)
    assert {t: again.resources_sent[t] for t in ORDER} == {t: int(t == ROUTE) for t in ORDER}
    assert set(await curl(egress, 10)) == {"v1"}


async def test_delta_nack_is_recorded_once_and_a_replaced_cluster_is_removed(delta_mesh):
    cache, ads, eps, admin, egress, *_ = delta_mesh
    good = compute(config(egress, 100, 0), eps, Node(NODE))
    cache.set_snapshot(NODE, good)
    await eventually(lambda: acked(ads, good))
    await eventually(lambda: admin_get(admin, "/listeners").find(f"127.0.0.1:{egress}") >= 0)
    broken = cluster_pb2.Cluster()
    broken.CopyFrom(next(c for c in good.resources[CLUSTER] if c.name == "web-v2"))
    broken.connect_timeout.CopyFrom(duration_pb2.Duration(seconds=-1))
    bad = Snapshot.of([c for c in good.resources[CLUSTER] if c.name != "web-v2"] + [broken],
                      good.resources[ENDPOINT], good.resources[LISTENER], good.resources[ROUTE])
    cache.set_snapshot(NODE, bad)
    nack = await eventually(lambda: next((n for n in ads.nacks if n.version == bad.versions[CLUSTER]), None))
    assert nack.node == NODE and nack.type_url == CLUSTER and nack.message
    assert ads.status()[NODE]["acked"][CLUSTER] == good.versions[CLUSTER]
    assert set(await curl(egress, 10)) == {"v1"}
    await asyncio.sleep(0.5)
    assert sum(1 for n in ads.nacks if n.version == bad.versions[CLUSTER]) == 1  # never re-sent
    # web-v2 leaves the mesh: the route moves first, then the cluster is removed
    only = MeshConfig(services=(Service("web-v1"),),
                      routes=(Route("web.shop.local", egress, (Target("web-v1", 1),)),),
                      clients=(Client(NODE, ("web.shop.local",)),))
    last = compute(only, eps, Node(NODE))
    cache.set_snapshot(NODE, last)
    await eventually(lambda: acked(ads, last), timeout=10)
    await eventually(lambda: "web-v2::" not in admin_get(admin, "/clusters"))
    assert set(await curl(egress, 10)) == {"v1"}
