"""The xDS port of a running ``dockyard up`` speaks ADS (state of the world) with real gRPC."""

from __future__ import annotations

import asyncio
import json

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from dockyard.client import ApiError, Client
from mesh.snapshot import CLUSTER
from tests.support.server import Dockyard


async def test_the_xds_port_serves_ads(dockyard: Dockyard):
    async with grpc.aio.insecure_channel(f"127.0.0.1:{dockyard.ports['xds']}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        nameless = stub.StreamAggregatedResources()
        await nameless.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await nameless.read()
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        delta = stub.DeltaAggregatedResources()  # incremental xDS: a stream without a node is refused too
        await delta.write(discovery_pb2.DeltaDiscoveryRequest(type_url=CLUSTER))
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(delta.read(), 10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        # a node that is not a meshed task gets an empty snapshot (nothing to route), not refused
        stranger = stub.StreamAggregatedResources()
        stranger_node = base_pb2.Node(id="task-x")
        await stranger.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=stranger_node))
        first = await asyncio.wait_for(stranger.read(), 10)
        assert first.type_url == CLUSTER and list(first.resources) == [] and first.version_info
        await stranger.write(discovery_pb2.DiscoveryRequest(
            type_url=CLUSTER, node=base_pb2.Node(id="task-x"), version_info=first.version_info,
            response_nonce=first.nonce))
        # dockyard mesh status (DockyardMesh.GetMeshStatus) shows it from the main process
        common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]
        deadline = asyncio.get_running_loop().time() + 10
        while True:
            proc = await asyncio.to_thread(dockyard.cli, "mesh", "status", "--json", *common)
            assert proc.returncode == 0, proc.stderr
            rows = {r["Node"]: r for r in json.loads(proc.stdout)}
            row = rows.get("task-x")
            if row and row["Acked"]["CDS"] == first.version_info:
                break
            assert asyncio.get_running_loop().time() < deadline, rows
            await asyncio.sleep(0.1)
        assert row["Connected"] and not row["Meshed"] and row["LastNack"] is None
        table = await asyncio.to_thread(dockyard.cli, "mesh", "status", *common)
        assert "task-x" in table.stdout and "CONNECTED" in table.stdout
        stranger.cancel()


async def test_the_status_comes_from_the_main_process_through_control_workers(fresh_dockyard: Dockyard):
    server = fresh_dockyard
    server.extra_args = ["--control-workers", "2"]
    server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.ports['xds']}") as channel:
        stub = ads_pb2_grpc.AggregatedDiscoveryServiceStub(channel)
        stream = stub.StreamAggregatedResources()
        await stream.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=base_pb2.Node(id="task-w")))
        await asyncio.wait_for(stream.read(), 10)
        common = ["--data-dir", str(server.data_dir), "--endpoint-url", server.control_url]
        for _ in range(6):  # each CLI run is a new connection, answered by either worker
            proc = await asyncio.to_thread(server.cli, "mesh", "status", "--json", *common)
            assert proc.returncode == 0, proc.stderr
            assert [r["Node"] for r in json.loads(proc.stdout)] == ["task-w"]
        client = Client(server.control_url, *server.credentials)
        assert await asyncio.to_thread(client.call, "DockyardMesh", "ListMeshNacks", {}) == {"Nacks": []}
        with pytest.raises(ApiError) as bad:
            await asyncio.to_thread(client.call, "DockyardMesh", "ListMeshNacks", {"MaxResults": 0})
        assert (bad.value.status, bad.value.code) == (400, "InvalidParameterException")
        stream.cancel()
