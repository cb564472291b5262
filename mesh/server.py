"""The ADS transport over ``grpc.aio``, state-of-the-world and delta: it only ships versions.

Each stream reads requests into an ``AdsStream`` (``mesh.stream``, state-of-the-world) or a
``DeltaStream`` (``mesh.delta``, incremental), sends what it says, then
waits for either another request or a new snapshot of its node in the ``SnapshotCache``.
The server never computes configuration. A peer that breaks the protocol (no node id, an
unknown type URL) gets ``INVALID_ARGUMENT`` on its own stream; other streams go on.
NACKs are logged (``dockyard.mesh``), kept in ``nacks`` (newest last, bounded) and in the
per-node status, whichever flavour the stream speaks, and handed to ``on_nack`` (the mesh
part records them in the store). ``on_node`` is told each node id as its stream names it
(the controller gives a node it does not know an empty snapshot). ``ready(node, timeout)``
waits until a stream of that node has ACKed every type of the node's current snapshot.
``drained(member, timeout)`` waits until no connected node may still route to the discovery
instance ``member`` (a task id): each one's snapshot leaves it out of its ``members`` and its
sidecar ACKed that snapshot's EDS version (the drain of a stopping task, :func:`holding`).

``on_request``, when given, is called with the stream after each request of its peer has been
applied to it (an ACK, a NACK, a new subscription), before anything is sent in answer: an
observer (a benchmark, a readiness gate) sees ACKs as they arrive instead of polling
``status()``. It runs on the event loop and must return quickly and not raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable

import grpc
from envoy.service.discovery.v3 import ads_pb2_grpc, discovery_pb2

from mesh.cache import SnapshotCache
from mesh.delta import DeltaStream
from mesh.snapshot import ENDPOINT, ORDER, ROUTE, SECRET, Snapshot
from mesh.stream import AdsStream, Nack, ProtocolError

log = logging.getLogger("dockyard.mesh")


def acked(stream: AdsStream | DeltaStream, snapshot: Snapshot | None) -> bool:
    """Whether ``stream`` ACKed every type of ``snapshot`` at its version. A type Envoy never
    asks for because the snapshot has none of it (EDS without clusters, RDS without
    listeners, SDS without TLS) has nothing to wait for."""
    if snapshot is None:
        return False
    for type_url in ORDER:
        st = stream.types.get(type_url)
        if st is None and type_url in (ENDPOINT, ROUTE, SECRET) and not snapshot.resources[type_url]:
            continue
        if st is None or st.acked_version != snapshot.versions[type_url]:
            return False
    return True


def holding(stream: AdsStream | DeltaStream, snapshot: Snapshot | None, member: str) -> bool:
    """Whether the sidecar on ``stream`` may still route to ``member``: its snapshot has it
    among its endpoints' instances, or it has not ACKed the snapshot's EDS version yet (what it
    holds is an older one, which may have it). A sidecar that never asked for endpoints holds
    none; one without a snapshot holds what it was last sent (treated as holding)."""
    st = stream.types.get(ENDPOINT)
    if st is None:
        return False
    if snapshot is None:
        return bool(st.acked_version)
    return member in snapshot.members or st.acked_version != snapshot.versions[ENDPOINT]


class AdsServer(ads_pb2_grpc.AggregatedDiscoveryServiceServicer):
    def __init__(self, cache: SnapshotCache, max_nacks: int = 1000,
                 on_request: Callable[[AdsStream | DeltaStream], None] | None = None,
                 on_nack: Callable[[Nack], None] | None = None,
                 on_node: Callable[[str], None] | None = None) -> None:
        self.cache = cache
        self.on_request = on_request
        self.nacks: deque[Nack] = deque(maxlen=max_nacks)
        self.streams: set[AdsStream | DeltaStream] = set()
        self.on_nack = on_nack
        self.on_node = on_node
        self._ack_waiters: dict[str, set[asyncio.Future[None]]] = {}
        self._drain_waiters: set[asyncio.Future[None]] = set()
        self._labels: dict[AdsStream | DeltaStream, frozenset[str]] = {}  # node metadata keys
        self.handlers: list[grpc.GenericRpcHandler] = []  # served beside ADS (add_to_server)

    def _record_nack(self, nack: Nack) -> None:
        self.nacks.append(nack)
        log.warning("xds nack", extra={"node": nack.node, "type_url": nack.type_url,
                                       "version": nack.version, "error": nack.message})
        if self.on_nack is not None:
            self.on_nack(nack)

    def node_labels(self, node: str) -> frozenset[str] | None:
        """The keys of ``node.metadata`` its connected stream's first request carried (what its
        bootstrap says it has, e.g. ``dockyard.traces``); None when it is not connected."""
        return next((labels for s, labels in list(self._labels.items()) if s.node == node), None)

    def nodes(self) -> set[str]:
        """The node ids of the streams connected now."""
        return {s.node for s in self.streams if s.node}

    def is_ready(self, node: str) -> bool:
        """Whether a stream of ``node`` ACKed every type of its current snapshot."""
        snapshot = self.cache.get_snapshot(node)
        return any(s.node == node and acked(s, snapshot) for s in list(self.streams))

    async def ready(self, node: str, timeout: float) -> bool:
        """True once a stream of ``node`` has ACKed every type of the node's current snapshot
        (see :func:`acked`); False when ``timeout`` seconds pass first."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.is_ready(node):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            waiters = self._ack_waiters.setdefault(node, set())
            waiters.add(fut)
            try:
                await asyncio.wait_for(fut, remaining)
            except TimeoutError:
                return self.is_ready(node)
            finally:
                waiters.discard(fut)
                if not waiters:
                    self._ack_waiters.pop(node, None)
        return True

    def _wake_acks(self, node: str) -> None:
        for fut in [*self._ack_waiters.get(node, ()), *self._drain_waiters]:
            if not fut.done():
                fut.set_result(None)

    def holders(self, member: str) -> list[str]:
        """The connected nodes that may still route to ``member`` (:func:`holding`)."""
        return sorted({s.node for s in list(self.streams)
                       if s.node and holding(s, self.cache.get_snapshot(s.node), member)})

    async def drained(self, member: str, timeout: float, poll: float = 0.1) -> bool:
        """True once no connected node may route to ``member`` (:meth:`holders` is empty);
        False when ``timeout`` seconds pass first. Woken by every request (an ACK) of any
        stream, and every ``poll`` seconds (a snapshot set, a stream gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.holders(member):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            fut: asyncio.Future[None] = loop.create_future()
            self._drain_waiters.add(fut)
            try:
                await asyncio.wait_for(fut, min(poll, remaining))
            except TimeoutError:
                pass
            finally:
                self._drain_waiters.discard(fut)
        return True

    def status(self) -> dict[str, dict]:
        """Per connected node: the versions it ACKed and its last NACK, by type URL."""
        out: dict[str, dict] = {}
        for s in self.streams:
            if s.node:
                out[s.node] = {"acked": {t: st.acked_version for t, st in s.types.items()},
                               "last_nack": next((vars(n) for n in reversed(self.nacks) if n.node == s.node),
                                                 None)}
        return out

    async def StreamAggregatedResources(  # gRPC's name
        self, request_iterator: AsyncIterator[discovery_pb2.DiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DiscoveryResponse]:
        async for resp in self._serve(AdsStream(self._record_nack), request_iterator, context):
            yield resp

    async def DeltaAggregatedResources(  # gRPC's name
        self, request_iterator: AsyncIterator[discovery_pb2.DeltaDiscoveryRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[discovery_pb2.DeltaDiscoveryResponse]:
        async for resp in self._serve(DeltaStream(self._record_nack), request_iterator, context):
            yield resp

    async def _serve(self, stream: AdsStream | DeltaStream, request_iterator: AsyncIterator,
                     context: grpc.aio.ServicerContext) -> AsyncIterator:
        wake = asyncio.Event()

        async def receive() -> None:
            async for req in request_iterator:
                named = stream.node
                stream.on_request(req)
                if stream.node and not named:
                    self._labels[stream] = frozenset(req.node.metadata.fields)
                    if self.on_node is not None:
                        self.on_node(stream.node)
                if self.on_request is not None:
                    self.on_request(stream)
                wake.set()
                if stream.node:
                    self._wake_acks(stream.node)

        reader = asyncio.create_task(receive())
        self.streams.add(stream)
        pending: set[asyncio.Task] = set()
        try:
            while True:
                snapshot = self.cache.get_snapshot(stream.node) if stream.node else None
                for resp in stream.responses(snapshot):
                    yield resp
                if reader.done():
                    break
                waker = asyncio.create_task(wake.wait())
                pending = {waker, reader}
                if stream.node and stream.types:
                    pending.add(asyncio.create_task(self.cache.watch(stream.node, stream.known(snapshot))))
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                wake.clear()
                for task in pending - {reader}:
                    task.cancel()
            exc = reader.exception()
            if isinstance(exc, ProtocolError):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            elif exc is not None:
                raise exc
        finally:
            self.streams.discard(stream)
            self._labels.pop(stream, None)
            for task in pending | {reader}:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader


def add_to_server(server: grpc.aio.Server, ads: AdsServer) -> None:
    """ADS and the services served beside it (``ads.handlers``: the metrics service)."""
    ads_pb2_grpc.add_AggregatedDiscoveryServiceServicer_to_server(ads, server)
    if ads.handlers:
        server.add_generic_rpc_handlers(tuple(ads.handlers))
