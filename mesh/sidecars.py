"""The mesh's side of a meshed task's sidecar: the seam ``runner.seams.Sidecars``.

* ``image``, ``image_tar()``, ``import_changes()``: Dockyard's Envoy image
  (:mod:`mesh.sidecar`: built from the installed Envoy, FROM scratch, imported into each
  host's engine by the runner, never pulled);
* ``xds_address(gateway)``: where a sidecar in a task on a network whose gateway is
  ``gateway`` reaches the xDS server. When the xDS port listens on that address already (or on
  every address), nothing more is done; otherwise a second ``grpc.aio`` server over the same
  ``AdsServer`` is started on ``gateway:<xds port>``, once (like discovery's tasks' DNS on the
  bridge gateway). A gateway that is not an address of this machine (a container instance
  elsewhere) gets the address the xDS port listens on, when that is a routable one (the
  ``host`` setting); otherwise ``OSError`` says so. The gateways served are kept in the
  ``gateways`` file (JSON list), and ``restore()`` serves them again at start: a control plane
  restarted (even after SIGKILL) is reachable at once by the sidecars of the tasks it adopts,
  which keep their bootstrap's address;
* ``bootstrap(task_arn, service, xds)``: Envoy's bootstrap (:func:`mesh.bootstrap.bootstrap`),
  admin on ``127.0.0.1:15000`` (``runner.connect.ADMIN_PORT``); with ``traces`` set (tracing
  on: :mod:`mesh.telemetry.traces_api`), the collector's cluster too, and ``xds_address`` has
  the collector answer on the same address (a failure there is logged: no spans, the task runs);
* ``ready(task_arn, timeout)``: True once the node ACKed CDS, EDS, LDS and RDS at its current
  snapshot's versions (``AdsServer.ready``);
* ``drained(task_arn, timeout)``: True once no connected sidecar may still route to the task:
  every one's snapshot leaves out the task's endpoints (discovery instance id = the task id, the
  last part of its ARN) and it ACKed that EDS version (``AdsServer.drained``).

The image's :class:`mesh.sidecar.Build` is made on first use of ``image`` (it runs
``envoy --version`` and ``ldd``: blocking, a fraction of a second; call it from a thread at
start to keep that off the event loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import os
import socket
from pathlib import Path
from typing import IO, Any, Protocol

import grpc

from mesh import sidecar
from mesh.bootstrap import bootstrap
from mesh.server import AdsServer, add_to_server

__all__ = ["ADMIN_PORT", "Sidecars"]

log = logging.getLogger("dockyard.mesh")

ADMIN_PORT = 15000  # runner.connect.ADMIN_PORT: Envoy's admin, on loopback in the task only
_ANY = ("0.0.0.0", "::", "")


class TraceCollector(Protocol):
    """Where the sidecars send spans (:mod:`mesh.telemetry.traces_api`)."""

    def collector(self, address: str) -> tuple[str, int] | None: ...

    async def reach(self, address: str) -> None: ...


def _routable(host: str) -> bool:
    """Whether another machine could reach ``host`` (not a wildcard, not loopback)."""
    if host in _ANY or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: the operator's to make resolvable


def _is_local(address: str) -> bool:
    """Whether ``address`` is one of this machine's (it can be bound)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.bind((address, 0))
        except OSError:
            return False
    return True


class Sidecars:
    def __init__(
        self,
        ads: AdsServer,
        host: str,
        port: int = 0,
        delta: bool = False,
        build: sidecar.Build | None = None,
        gateways: Path | None = None,
        stats_flush_interval: float | None = None,
    ) -> None:
        self.ads = ads
        self.stats_flush_interval = stats_flush_interval  # None: the sidecars send no stats
        self.host = host  # what the xDS port listens on
        self.port = port  # its port, known once the platform serves it
        self.delta = delta
        self._build = build
        self.gateways = gateways  # where the gateways served are kept (None: nowhere)
        self._servers: dict[str, grpc.aio.Server] = {}
        self._lock = asyncio.Lock()
        self.traces: TraceCollector | None = None  # None: the sidecars send no spans

    @property
    def build(self) -> sidecar.Build:
        if self._build is None:
            self._build = sidecar.describe()
        return self._build

    @property
    def image(self) -> str:
        return self.build.tag

    def image_tar(self) -> IO[bytes]:
        return sidecar.rootfs_file(self.build)

    def import_changes(self) -> list[str]:
        return self.build.changes

    async def xds_address(self, gateway: str) -> tuple[str, int]:
        address = await self._xds_address(gateway)
        if self.traces is not None:
            try:
                await self.traces.reach(address[0])
            except OSError as e:
                log.warning("trace collector not served", extra={"address": address[0], "error": str(e)})
        return address

    async def _xds_address(self, gateway: str) -> tuple[str, int]:
        if not self.port:
            raise RuntimeError("the xDS port is not served yet")
        if not _is_local(gateway):
            if _routable(self.host):
                return self.host, self.port
            raise OSError(
                f"a sidecar behind {gateway} (not this machine) cannot reach xDS on {self.host or '*'}: "
                "set host to an address the container instances reach"
            )
        if self.host in _ANY or self.host == gateway:
            return gateway, self.port
        async with self._lock:
            if gateway not in self._servers:
                server = grpc.aio.server()
                add_to_server(server, self.ads)
                address = f"[{gateway}]:{self.port}" if ":" in gateway else f"{gateway}:{self.port}"
                try:
                    bound = server.add_insecure_port(address)
                except RuntimeError as e:  # grpc's way of saying the address cannot be bound
                    raise OSError(f"cannot serve xDS on {address}: {e}") from None
                await server.start()
                self._servers[gateway] = server
                self._keep()
                log.info("xds served", extra={"address": address, "port": bound})
        return gateway, self.port

    def _keep(self) -> None:
        if self.gateways is None:
            return
        tmp = self.gateways.with_suffix(".tmp")
        tmp.write_text(json.dumps(sorted(self._servers)))
        os.replace(tmp, self.gateways)

    def kept(self) -> list[str]:
        """The gateways served before (the ``gateways`` file); [] when none or unreadable."""
        if self.gateways is None:
            return []
        with contextlib.suppress(OSError, ValueError):
            kept = json.loads(self.gateways.read_text())
            if isinstance(kept, list):
                return [g for g in kept if isinstance(g, str)]
        return []

    async def restore(self) -> None:
        """Serve xDS again on every kept gateway that is still an address of this machine (its
        network may be gone: then it is forgotten)."""
        for gateway in self.kept():
            if not _is_local(gateway):
                continue
            try:
                await self.xds_address(gateway)
            except OSError as e:
                log.warning("xds not served again", extra={"gateway": gateway, "error": str(e)})
        self._keep()

    def bootstrap(self, task_arn: str, service: str, xds: tuple[str, int]) -> dict[str, Any]:
        collector = None if self.traces is None else self.traces.collector(xds[0])
        return bootstrap(task_arn, service, xds[0], xds[1], ADMIN_PORT, delta=self.delta, collector=collector,
                         stats_flush_interval=self.stats_flush_interval)

    async def ready(self, task_arn: str, timeout: float) -> bool:
        return await self.ads.ready(task_arn, timeout)

    async def drained(self, task_arn: str, timeout: float) -> bool:
        return await self.ads.drained(task_arn.rsplit("/", 1)[-1], timeout)

    async def stop(self) -> None:
        for server in self._servers.values():
            await server.stop(grace=1)
        self._servers.clear()
