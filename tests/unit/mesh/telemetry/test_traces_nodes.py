"""Only sidecars whose bootstrap has the collector cluster get the tracer: the ADS server keeps
each connected node's metadata keys, and the controller leaves the tracer out for a node
without ``dockyard.traces`` (an adopted sidecar started before tracing would NACK it)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import struct_pb2

from dockyard.store import Store
from mesh.cache import SnapshotCache
from mesh.controller import Controller
from mesh.data import MIGRATIONS, Data
from mesh.debounce import Debounce
from mesh.server import AdsServer
from mesh.snapshot import CLUSTER, LISTENER
from mesh.telemetry.traces_envoy import NODE_LABEL, Tracing, traced
from tests.unit.mesh.test_controller import TASK, FakeConnect, FakeInstances
from tests.unit.mesh.test_server import FakeContext


def tracers(snapshot) -> list[bool]:
    out = []
    for listener in snapshot.resources[LISTENER]:
        for chain in listener.filter_chains:
            for f in chain.filters:
                if f.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                    m = hcm.HttpConnectionManager()
                    f.typed_config.Unpack(m)
                    out.append(m.HasField("tracing"))
    return out


def test_a_node_is_traced_when_its_bootstrap_says_so_or_before_it_connects():
    assert traced(None) and traced(frozenset({"dockyard.task", NODE_LABEL}))
    assert not traced(frozenset({"dockyard.task"}))


async def test_the_ads_server_keeps_the_metadata_keys_of_connected_nodes():
    server = AdsServer(SnapshotCache())
    requests: asyncio.Queue = asyncio.Queue()

    async def feed():
        while (req := await requests.get()) is not None:
            yield req

    stream = server.StreamAggregatedResources(feed(), FakeContext())
    metadata = struct_pb2.Struct()
    metadata.update({"dockyard.task": "arn:t", NODE_LABEL: True})
    requests.put_nowait(discovery_pb2.DiscoveryRequest(type_url=CLUSTER, node=base_pb2.Node(
        id="arn:t", metadata=metadata)))
    reading = asyncio.ensure_future(anext(stream))
    for _ in range(100):
        if server.node_labels("arn:t") is not None:
            break
        await asyncio.sleep(0.01)
    assert server.node_labels("arn:t") == frozenset({"dockyard.task", NODE_LABEL})
    assert server.node_labels("arn:other") is None
    reading.cancel()
    with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
        await reading
    await stream.aclose()
    assert server.node_labels("arn:t") is None  # gone with its stream


async def test_the_controller_leaves_the_tracer_out_for_a_node_without_the_label(tmp_path: Path):
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    old: set[str] = set()
    ctl = Controller(Data(store), SnapshotCache(), FakeConnect(), FakeInstances(),
                     debounce=Debounce(quiet=0.01, bound=0.1), tracing=Tracing(),
                     traced=lambda node: node not in old)
    try:
        ctl.push()
        with_tracer = ctl.cache.get_snapshot(TASK.task_arn)
        assert tracers(with_tracer) and all(tracers(with_tracer))
        old.add(TASK.task_arn)  # it connects: its bootstrap has no collector cluster
        ctl.node_connected(TASK.task_arn)
        without = ctl.cache.get_snapshot(TASK.task_arn)
        assert tracers(without) and not any(tracers(without))
        assert without.versions[LISTENER] != with_tracer.versions[LISTENER]
        assert without.versions[CLUSTER] == with_tracer.versions[CLUSTER]
    finally:
        store.close()
