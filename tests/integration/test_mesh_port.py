"""The xDS port of a running ``dockyard up`` speaks ADS (state of the world) with real gRPC."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

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
        # a node with no snapshot yet is kept waiting, not refused
        waiting = stub.StreamAggregatedResources()
        await waiting.write(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=base_pb2.Node(id="task-x")))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(waiting.read(), 0.5)
        waiting.cancel()
