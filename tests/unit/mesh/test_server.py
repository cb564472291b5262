"""The ADS transport driven through a fake request stream and context (no network)."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.rpc import status_pb2

from mesh.cache import SnapshotCache
from mesh.model import Endpoint, Node
from mesh.server import AdsServer
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, compute
from mesh.snapshot import ORDER as EVERY_TYPE
from tests.unit.mesh.fixtures import sample_config, sample_endpoints

ORDER = tuple(t for t in EVERY_TYPE if t != EVERY_TYPE[0])  # a plaintext snapshot's types (no SDS)


class Aborted(Exception):
    pass


class FakeContext:
    def __init__(self) -> None:
        self.code: grpc.StatusCode | None = None

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.code, self.details = code, details
        raise Aborted(details)


class Peer:
    """The Envoy side: put requests, read responses."""

    def __init__(self, server: AdsServer) -> None:
        self.requests: asyncio.Queue = asyncio.Queue()
        self.context = FakeContext()
        self.stream = server.StreamAggregatedResources(self._iter(), self.context)

    async def _iter(self):
        while (req := await self.requests.get()) is not None:
            yield req

    def send(self, type_url: str, version: str = "", nonce: str = "", names=(), node="task-a") -> None:
        self.requests.put_nowait(discovery_pb2.DiscoveryRequest(
            type_url=type_url, version_info=version, response_nonce=nonce, resource_names=list(names),
            node=base_pb2.Node(id=node)))

    async def recv(self, timeout: float = 1.0) -> discovery_pb2.DiscoveryResponse:
        return await asyncio.wait_for(anext(self.stream), timeout)


def snap(v1: int = 90, v2: int = 10):
    return compute(sample_config(v1, v2), sample_endpoints(), Node("task-a"))


async def test_a_stream_gets_the_cached_snapshot_in_order_then_waits():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    server = AdsServer(cache)
    peer = Peer(server)
    for t in (LISTENER, CLUSTER, ROUTE, ENDPOINT):
        peer.send(t)
    seen = []
    while len(seen) < 4:
        seen.append((await peer.recv()).type_url)
    # each request is answered as it arrives; within one push the order is make-before-break
    assert sorted(seen, key=ORDER.index) == list(ORDER)
    with pytest.raises(TimeoutError):
        await peer.recv(0.05)


async def test_a_new_snapshot_is_pushed_to_the_waiting_stream():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    peer = Peer(AdsServer(cache))
    peer.send(CLUSTER)
    peer.send(ROUTE)
    first = {}
    for _ in range(2):
        r = await peer.recv()
        first[r.type_url] = r
    for t, r in first.items():
        peer.send(t, r.version_info, r.nonce)
    cache.set_snapshot("task-a", snap(50, 50))
    pushed = await peer.recv()
    assert pushed.type_url == ROUTE and pushed.version_info == snap(50, 50).versions[ROUTE]


async def test_a_push_of_several_types_goes_clusters_first():
    cache = SnapshotCache()
    peer = Peer(AdsServer(cache))
    for t in reversed(ORDER):
        peer.send(t)
    await asyncio.sleep(0.01)
    cache.set_snapshot("task-a", snap())
    assert [(await peer.recv()).type_url for _ in ORDER] == list(ORDER)


async def test_a_request_without_node_id_is_refused_with_invalid_argument():
    peer = Peer(AdsServer(SnapshotCache()))
    peer.send(CLUSTER, node="")
    with pytest.raises(Aborted):
        await peer.recv()
    assert peer.context.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_an_unknown_type_is_refused_and_the_stream_forgotten():
    server = AdsServer(SnapshotCache())
    peer = Peer(server)
    peer.send("type.googleapis.com/nothing")
    with pytest.raises(Aborted):
        await peer.recv()
    assert server.streams == set()


async def test_the_stream_ends_when_the_peer_closes_and_its_status_goes():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    server = AdsServer(cache)
    peer = Peer(server)
    peer.send(ENDPOINT)
    await peer.recv()
    assert "task-a" in server.status()
    peer.requests.put_nowait(None)
    with pytest.raises(StopAsyncIteration):
        await peer.recv()
    assert server.status() == {}


async def test_a_closed_stream_leaves_no_watcher_behind():
    cache = SnapshotCache()
    server = AdsServer(cache)
    peer = Peer(server)
    peer.send(CLUSTER)
    drain = asyncio.create_task(anext(peer.stream, None))
    await asyncio.sleep(0.05)  # no snapshot: the stream waits on the cache
    assert not drain.done() and cache.watcher_count("task-a") == 1
    peer.requests.put_nowait(None)
    assert await asyncio.wait_for(drain, 1) is None
    assert cache.watcher_count("task-a") == 0 and server.streams == set()


async def test_a_nack_is_logged_and_kept_with_envoys_message(caplog):
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    server = AdsServer(cache)
    peer = Peer(server)
    peer.send(ROUTE)
    first = await peer.recv()
    peer.send(ROUTE, first.version_info, first.nonce)
    cache.set_snapshot("task-a", snap(50, 50))
    bad = await peer.recv()
    request = discovery_pb2.DiscoveryRequest(type_url=ROUTE, version_info=first.version_info,
                                             response_nonce=bad.nonce)
    request.error_detail.message = "route weights rejected"
    with caplog.at_level("WARNING", logger="dockyard.mesh"):
        peer.requests.put_nowait(request)
        with pytest.raises(TimeoutError):
            await peer.recv(0.05)
    assert [(n.version, n.message) for n in server.nacks] == [(bad.version_info, "route weights rejected")]
    assert caplog.records[-1].error == "route weights rejected"


async def test_the_delta_rpc_serves_only_what_changed_and_records_nacks():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    server = AdsServer(cache)
    requests: asyncio.Queue = asyncio.Queue()

    async def it():
        while (r := await requests.get()) is not None:
            yield r

    stream = server.DeltaAggregatedResources(it(), FakeContext())
    requests.put_nowait(discovery_pb2.DeltaDiscoveryRequest(type_url=ROUTE, node=base_pb2.Node(id="task-a"),
                                                            resource_names_subscribe=["egress_8080"]))
    first = await asyncio.wait_for(anext(stream), 1)
    assert [r.name for r in first.resources] == ["egress_8080"]
    requests.put_nowait(discovery_pb2.DeltaDiscoveryRequest(type_url=ROUTE, response_nonce=first.nonce))
    await asyncio.sleep(0.01)
    assert server.status()["task-a"]["acked"][ROUTE] == snap().versions[ROUTE]
    cache.set_snapshot("task-a", snap(50, 50))
    bad = await asyncio.wait_for(anext(stream), 1)
    nack = discovery_pb2.DeltaDiscoveryRequest(type_url=ROUTE, response_nonce=bad.nonce)
    nack.error_detail.message = "no"
    requests.put_nowait(nack)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), 0.05)
    assert [(n.version, n.message) for n in server.nacks] == [(snap(50, 50).versions[ROUTE], "no")]


async def _ack_all(peer: Peer, types=ORDER) -> None:
    got = {}
    while len(got) < len(types):
        r = await peer.recv()
        got[r.type_url] = r
    for t, r in got.items():
        peer.send(t, r.version_info, r.nonce)


async def test_ready_waits_for_an_ack_of_every_type_of_the_current_snapshot():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    named: list[str] = []
    server = AdsServer(cache, on_node=named.append)
    assert not await server.ready("task-a", 0.02)  # nobody connected
    peer = Peer(server)
    waiting = asyncio.create_task(server.ready("task-a", 2))
    for t in (CLUSTER, LISTENER, ENDPOINT):
        peer.send(t)
    got = {}
    while len(got) < 3:
        r = await peer.recv()
        got[r.type_url] = r
    for t, r in got.items():
        peer.send(t, r.version_info, r.nonce)
    await asyncio.sleep(0.02)
    assert not waiting.done()  # RDS not asked for nor ACKed yet
    peer.send(ROUTE)
    await _ack_all(peer, (ROUTE,))
    assert await asyncio.wait_for(waiting, 1) is True
    assert named == ["task-a"]
    # a new snapshot needs a new ACK
    cache.set_snapshot("task-a", snap(50, 50))
    assert not server.is_ready("task-a")
    await _ack_all(peer, (ROUTE,))
    assert await server.ready("task-a", 1)


async def test_ready_times_out_on_a_nack():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    nacks = []
    server = AdsServer(cache, on_nack=nacks.append)
    peer = Peer(server)
    for t in ORDER:
        peer.send(t)
    for _ in ORDER:
        r = await peer.recv()
        if r.type_url == ROUTE:
            req = discovery_pb2.DiscoveryRequest(type_url=ROUTE, response_nonce=r.nonce,
                                                 node=base_pb2.Node(id="task-a"))
            req.error_detail.message = "bad route"
            peer.requests.put_nowait(req)
        else:
            peer.send(r.type_url, r.version_info, r.nonce)
    assert not await server.ready("task-a", 0.1)
    assert [n.message for n in nacks] == ["bad route"]


async def test_an_empty_snapshot_is_ready_without_endpoints_or_routes():
    from mesh.snapshot import Snapshot

    cache = SnapshotCache()
    cache.set_snapshot("task-a", Snapshot.of())
    server = AdsServer(cache)
    peer = Peer(server)
    peer.send(CLUSTER)
    peer.send(LISTENER)
    await _ack_all(peer, (CLUSTER, LISTENER))
    assert await server.ready("task-a", 1)


async def test_on_request_sees_each_request_applied_to_the_stream_an_ack_included():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    seen: list[tuple[str, str]] = []
    server = AdsServer(cache, on_request=lambda s: seen.append(
        (s.node, s.types[ROUTE].acked_version if ROUTE in s.types else "")))
    peer = Peer(server)
    peer.send(ROUTE)
    first = await peer.recv()
    assert seen == [("task-a", "")]
    peer.send(ROUTE, first.version_info, first.nonce)
    with pytest.raises(TimeoutError):
        await peer.recv(0.05)
    assert seen == [("task-a", ""), ("task-a", snap().versions[ROUTE])]


def _with_instances(drop: str = "") -> dict:
    eps = {"web-v1": [Endpoint("10.0.0.1", 80, instance="t1"), Endpoint("10.0.0.2", 80, instance="t2"),
                      Endpoint("10.0.0.3", 80, healthy=False, instance="t3")]}
    return {n: [e for e in es if e.instance != drop] for n, es in eps.items()}


async def test_a_task_is_drained_once_every_sidecar_acked_endpoints_without_it():
    cache = SnapshotCache()
    first = compute(sample_config(100, 0), _with_instances(), Node("task-a"))
    assert first.members == {"t1", "t2"}  # the unhealthy t3 is nobody's endpoint
    cache.set_snapshot("task-a", first)
    server = AdsServer(cache)
    peer = Peer(server)
    peer.send(CLUSTER)
    cds = await peer.recv()
    peer.send(ENDPOINT, names=["web-v1", "web-v2"])
    eds = await peer.recv()
    assert server.holders("t2") == ["task-a"]  # sent, not ACKed yet
    peer.send(ENDPOINT, eds.version_info, eds.nonce, names=["web-v1", "web-v2"])
    peer.send(CLUSTER, cds.version_info, cds.nonce)
    assert await server.drained("t3", 1.0)  # never an endpoint
    assert server.holders("t2") == ["task-a"]  # ACKed, and it has t2
    # t2 leaves discovery: a snapshot without it is set, the drain waits for its ACK
    cache.set_snapshot("task-a", compute(sample_config(100, 0), _with_instances("t2"), Node("task-a")))
    assert not await server.drained("t2", 0.05)
    waiting = asyncio.create_task(server.drained("t2", 5.0))
    eds = await peer.recv()
    assert not waiting.done()
    peer.send(ENDPOINT, eds.version_info, eds.nonce, names=["web-v1", "web-v2"])
    assert await waiting
    assert server.holders("t1") == ["task-a"]
    # a NACKed EDS version keeps the old endpoints: the drain is not done, its bound ends it
    cache.set_snapshot("task-a", compute(sample_config(100, 0), _with_instances("t1"), Node("task-a")))
    eds = await peer.recv()
    peer.requests.put_nowait(discovery_pb2.DiscoveryRequest(
        type_url=ENDPOINT, version_info="old", response_nonce=eds.nonce, resource_names=["web-v1", "web-v2"],
        error_detail=status_pb2.Status(message="refused")))
    assert not await server.drained("t1", 0.2)
