"""The mesh part: the xDS control plane, its controller, App Mesh's API and the sidecars' seam.

* The xDS port serves ``mesh.server.AdsServer`` (ADS, state of the world and delta) over a
  ``SnapshotCache`` that :class:`mesh.controller.Controller` keeps at the desired state
  (Service Connect through the ``connect`` view, App Mesh's resources, discovery's instances
  through the ``instances`` view), started as a platform context.
* :class:`mesh.sidecars.Sidecars` is what the runner needs of a task's sidecar
  (``runner.seams.Sidecars``).
* App Mesh's API (:mod:`mesh.appmesh`: meshes, virtual nodes and services, virtual routers,
  routes, virtual gateways and gateway routes, tags) is served on the control port, its state in the part's
  ``am_*`` tables (:mod:`mesh.data`), each write published as a ``mesh/...`` change.
* :mod:`mesh.telemetry.metrics`: the sidecars' stats (pushed on the xDS port), CloudWatch's
  metrics and alarms API on the control port, ``mesh.telemetry.alarms`` the alarms' seam.
* Each virtual gateway is an Envoy process on this host (:mod:`mesh.gateways`), its snapshot
  made by the controller (:mod:`mesh.gateway`), listening on ``edge_host`` (or ``host``).
* ``DockyardMesh.GetMeshStatus`` / ``ListMeshNacks`` (:mod:`mesh.status`) read the sidecars'
  state; every NACK is kept in the store (``am_nacks``).
* Traces (:mod:`mesh.telemetry.traces_part`): the sidecars' Zipkin tracer and Dockyard's own
  collector, Zipkin's v2 API on the control port (docs/traces.md).

:func:`install` returns the :class:`Mesh`; the assembly passes ``mesh.sidecars`` to the runner
and sets ``mesh.connect`` to the runner's view before the platform serves (the runner is
installed after the mesh, so the view comes later).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import Message

from mesh import appmesh
from mesh.bootstrap import bootstrap
from mesh.ca import Issuer, MeshCA
from mesh.cache import SnapshotCache
from mesh.controller import Controller
from mesh.data import MIGRATIONS, Data
from mesh.gateways import GatewayEnvoys
from mesh.revisions import RevisionMetrics
from mesh.seams import ConnectView, InstanceView, UsageView
from mesh.server import AdsServer, add_to_server
from mesh.sidecar import envoy_binary
from mesh.sidecars import Sidecars
from mesh.snapshot import Snapshot
from mesh.status import SERVICE, Status
from mesh.stream import Nack
from mesh.telemetry import metrics, traces_part
from mesh.telemetry.traces_envoy import traced

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "Mesh", "install"]

log = logging.getLogger("dockyard.mesh")
_KINDS = ("clusters", "endpoints", "listeners", "routes")


@dataclass
class Mesh:
    """The mesh's live objects inside one platform."""

    data: Data
    cache: SnapshotCache
    ads: AdsServer
    sidecars: Sidecars
    connect: ConnectView | None = None
    instances: InstanceView | None = None
    controller: Controller | None = None
    traces: traces_part.Traces | None = None
    telemetry: metrics.Telemetry | None = None
    revisions: RevisionMetrics | None = None  # per-revision answers (runner.seams.RevisionMetrics)
    usage: UsageView | None = None  # the runner's container readings (set by the assembly)
    gateways: GatewayEnvoys | None = None  # the virtual gateways' Envoys, while serving
    issuer: Issuer | None = None  # the mesh CA's certificates for the sidecars (docs/mtls.md)
    _writes: set[asyncio.Task] = field(default_factory=set)
    external: set[str] = field(default_factory=set)

    def metric_sink(self) -> metrics.MetricPut | None:
        """Where the edge records its load balancers' metrics (``edge.seams.MetricSink``)."""
        return metrics.MetricPut(self.telemetry.store) if self.telemetry is not None else None

    def metric_points(self) -> metrics.MetricPoints | None:
        """The metrics as the runner's autoscaling reads them (``runner.seams.MetricSource``)."""
        return metrics.MetricPoints(self.telemetry.store) if self.telemetry is not None else None

    def record_nack(self, nack: Nack) -> None:
        """Keep a NACK in the store (in the background: the stream does not wait)."""
        task = asyncio.get_running_loop().create_task(
            self.data.record_nack(nack.node, nack.type_url, nack.version, nack.message, time.time())
        )
        self._writes.add(task)
        task.add_done_callback(self._written)

    def _written(self, task: asyncio.Task) -> None:
        self._writes.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("mesh: nack not recorded", extra={"error": str(task.exception())})

    def publish(self, node: str, resources: Mapping[str, Sequence[Message]]) -> None:
        """Serve ``node`` (another part's Envoy: the edge) the snapshot of ``resources``
        (``clusters``, ``endpoints``, ``listeners``, ``routes``); the controller leaves the
        node alone from then on (``edge.seams.Xds``)."""
        self.external.add(node)
        if self.controller is not None:
            self.controller.external.add(node)
        self.cache.set_snapshot(node, Snapshot.of(**{k: resources.get(k, ()) for k in _KINDS}))

    def bootstrap(self, node: str, admin_port: int) -> dict[str, Any]:
        """The bootstrap of a host Envoy named ``node`` reaching this xDS server."""
        host = self.sidecars.host if self.sidecars.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return bootstrap(node, node, host, self.sidecars.port, admin_port,
                         delta=self.sidecars.delta)

    def envoy_binary(self) -> Path:
        return envoy_binary()

    def node_connected(self, node: str) -> None:
        if self.controller is not None:
            self.controller.node_connected(node)

    def meshed(self) -> list[str]:
        if self.controller is None:
            return []
        desired = self.controller.desired
        return [c.node for c in desired.config.clients] + [g.node for g in desired.gateways]


async def _serve(mesh: Mesh, platform: Platform) -> AsyncIterator[None]:
    server = grpc.aio.server()
    add_to_server(server, mesh.ads)
    addr = platform.config.address(platform.config.xds_port)
    port = server.add_insecure_port(addr)
    await server.start()
    mesh.sidecars.port = port
    await mesh.sidecars.restore()  # adopted tasks' sidecars reconnect where their bootstrap says
    platform.endpoints.append(("xds", f"grpc://{platform.config.address(port)}"))
    cfg = platform.config
    envoys = GatewayEnvoys(cfg.data_path / "mesh-gateways", mesh.bootstrap, envoy_binary)
    mesh.gateways = envoys
    mesh.controller = Controller(
        mesh.data, mesh.cache, mesh.connect, mesh.instances, connected=mesh.ads.nodes,
        tracing=None if mesh.traces is None else mesh.traces.tracing,
        traced=lambda node: traced(mesh.ads.node_labels(node)),
        gateway_host=cfg.edge_host or cfg.host, on_gateways=envoys.sync,
        issuer=mesh.issuer, trust_domain=platform.config.mesh_trust_domain,
    )
    mesh.controller.external |= mesh.external
    follow = asyncio.create_task(mesh.controller.run())
    try:
        yield
    finally:
        follow.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follow
        await envoys.stop()
        await mesh.sidecars.stop()
        if mesh.traces is not None:
            await mesh.traces.collector.stop()
        await server.stop(grace=1)
        if mesh._writes:
            await asyncio.gather(*mesh._writes, return_exceptions=True)


def install_appmesh(platform: Platform) -> None:
    """App Mesh's operations (a seam the protocol tests' stubs replace)."""
    appmesh.install(platform)


def install(
    platform: Platform, *, connect: ConnectView | None = None, instances: InstanceView | None = None
) -> Mesh:
    """Register App Mesh's API and the status operations; serve xDS and run the controller
    while the platform serves. ``connect`` (the runner's Service Connect view, settable on the
    returned :class:`Mesh` until then) and ``instances`` (discovery's) may be None: no meshed
    tasks, no endpoints."""
    install_appmesh(platform)
    data = Data(platform.store)
    cache = SnapshotCache()
    mesh: Mesh
    ads = AdsServer(cache, on_nack=lambda n: mesh.record_nack(n), on_node=lambda n: mesh.node_connected(n))
    sidecars = Sidecars(ads, platform.config.host, delta=platform.config.mesh_delta,
                        gateways=platform.config.data_path / "mesh-xds-gateways.json",
                        stats_flush_interval=platform.config.mesh_stats_flush_interval or None)
    mesh = Mesh(data, cache, ads, sidecars, connect=connect, instances=instances)
    config = platform.config
    ca = MeshCA.load_or_create(config.data_path / "mesh-ca", config.mesh_trust_domain)
    mesh.issuer = Issuer(ca, config.mesh_cert_lifetime)
    mesh.traces = traces_part.install(platform, sidecars)
    # the sidecars' stats, CloudWatch's metrics and alarms (docs/telemetry.md)
    mesh.telemetry = metrics.install(
        platform, ads, lambda: mesh.connect.meshed_tasks() if mesh.connect else [], lambda: mesh.usage)
    mesh.revisions = RevisionMetrics(lambda: mesh.telemetry.store if mesh.telemetry else None)
    status = Status(ads, data, mesh.meshed)
    for name, handler in status.operations().items():
        platform.ops.add(SERVICE, name, handler)  # not read-only: the main process holds the streams

    def serve(p: Platform) -> AsyncIterator[None]:
        return _serve(mesh, p)

    platform.contexts.append(serve)
    return mesh
