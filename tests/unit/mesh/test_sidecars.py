"""``mesh.sidecars.Sidecars``: the runner's seam to a task's sidecar."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import grpc
import pytest
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from mesh.cache import SnapshotCache
from mesh.server import AdsServer
from mesh.sidecar import Build
from mesh.sidecars import ADMIN_PORT, Sidecars
from mesh.snapshot import CLUSTER, Snapshot


def fake_build(tmp_path: Path) -> Build:
    binary = tmp_path / "envoy"
    binary.write_bytes(b"\x7fELF fake")
    return Build(binary, "ab" * 32, "1.40.0", ())


def test_image_tar_and_changes_come_from_the_build(tmp_path: Path):
    s = Sidecars(AdsServer(SnapshotCache()), "127.0.0.1", build=fake_build(tmp_path))
    assert s.image == "dockyard/envoy:1.40.0"
    assert s.import_changes()[0] == 'ENTRYPOINT ["/usr/local/bin/envoy"]'
    with s.image_tar() as f, tarfile.open(fileobj=f) as tar:
        assert tar.getmember("usr/local/bin/envoy").size == len(b"\x7fELF fake")


def test_the_bootstrap_names_the_task_and_keeps_admin_on_loopback(tmp_path: Path):
    s = Sidecars(AdsServer(SnapshotCache()), "127.0.0.1", 18000, build=fake_build(tmp_path))
    boot = s.bootstrap("arn:task/1", "web", ("172.17.0.1", 18000))
    assert boot["node"]["id"] == "arn:task/1"
    assert boot["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": ADMIN_PORT}


async def test_xds_is_served_on_the_gateway_once_and_speaks_ads():
    cache = SnapshotCache()
    cache.set_snapshot("task-g", Snapshot.of())
    s = Sidecars(AdsServer(cache), "127.0.0.1", 0)
    with pytest.raises(RuntimeError):
        await s.xds_address("127.0.0.2")  # not served yet
    from tests.support.server import free_port

    s.port = free_port()
    try:
        first = await s.xds_address("127.0.0.2")
        assert first == await s.xds_address("127.0.0.2") == ("127.0.0.2", s.port)
        assert list(s._servers) == ["127.0.0.2"]
        assert await s.xds_address("127.0.0.1") == ("127.0.0.1", s.port)  # the main listener's own
        async with grpc.aio.insecure_channel(f"127.0.0.2:{s.port}") as channel:
            call = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel).StreamAggregatedResources()
            req = discovery_pb2.DiscoveryRequest(type_url=CLUSTER)
            req.node.id = "task-g"
            await call.write(req)
            got = await asyncio.wait_for(call.read(), 5)
            assert got.type_url == CLUSTER
            call.cancel()
        with pytest.raises(OSError):
            await s.xds_address("192.0.2.1")  # an address this host does not have
    finally:
        await s.stop()


async def test_the_gateways_served_are_kept_and_served_again_by_a_new_process(tmp_path: Path):
    from tests.support.server import free_port

    kept = tmp_path / "gateways.json"
    port = free_port()
    first = Sidecars(AdsServer(SnapshotCache()), "127.0.0.1", port, gateways=kept)
    try:
        await first.xds_address("127.0.0.3")
        assert first.kept() == ["127.0.0.3"]
    finally:
        await first.stop()  # as if the process died
    kept.write_text('["127.0.0.3", "192.0.2.1"]')  # and a gateway this host no longer has
    again = Sidecars(AdsServer(SnapshotCache()), "127.0.0.1", port, gateways=kept)
    try:
        await again.restore()
        assert list(again._servers) == ["127.0.0.3"] and again.kept() == ["127.0.0.3"]
    finally:
        await again.stop()
    kept.write_text("not json")
    assert Sidecars(AdsServer(SnapshotCache()), "127.0.0.1", port, gateways=kept).kept() == []


def test_the_import_carries_the_tools_label_of_the_extra_files(tmp_path: Path):
    build = fake_build(tmp_path)
    tools = Build(build.binary, build.digest, build.version, (), "t00l5")
    assert tools.changes[-1].endswith(" dockyard.envoy.tools=t00l5")
    assert "tools" not in build.changes[-1]


async def test_a_gateway_elsewhere_gets_the_routable_address_xds_listens_on():
    s = Sidecars(AdsServer(SnapshotCache()), "10.9.8.7", 18000)
    assert await s.xds_address("192.0.2.1") == ("10.9.8.7", 18000)  # nothing started
    assert s._servers == {}
    for host in ("0.0.0.0", "127.0.0.1", "localhost"):
        with pytest.raises(OSError):
            await Sidecars(AdsServer(SnapshotCache()), host, 18000).xds_address("192.0.2.1")
