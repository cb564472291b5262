"""The virtual gateways' Envoys: one host process per virtual gateway (I/O).

As the edge runs its Envoy: a process on this host (not a task), bootstrapped with ADS to
Dockyard's own xDS server under the gateway's node id (``mesh/<mesh>/virtualGateway/<name>``),
its admin on a free loopback port, its files in ``<data_dir>/mesh-gateways/<mesh>.<name>/``
(``envoy.json``, ``admin-port``, ``envoy.pid``, ``envoy.log``). Its listener binds the gateway listener's
port on the host (from ``edge_ports``), so a client reaches it at ``<edge_host>:<port>``, and
it reaches the virtual nodes' endpoints where Cloud Map says (the host ports of ``bridge``
tasks, the addresses of ``awsvpc`` tasks, both routable from the host). A gateway's Envoy is
started when the gateway appears in a push and stopped (SIGTERM, then SIGKILL after 10 s)
when it is deleted and when the platform stops. One left running by a Dockyard that was
killed (its ``envoy.pid`` still an Envoy of that ``envoy.json``) is stopped before a new one
starts, which could not bind the port otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh.gateway import Gateway

__all__ = ["GatewayEnvoys"]

log = logging.getLogger("dockyard.mesh")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _stop_leftover(where: Path, timeout: float = 10) -> None:
    """SIGTERM (then SIGKILL) the Envoy an earlier Dockyard started from ``where``, if it runs."""
    try:
        pid = int((where / "envoy.pid").read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return
    if str(where / "envoy.json").encode() not in cmdline:
        return  # the pid is someone else's now
    os.kill(pid, signal.SIGTERM)
    for _ in range(int(timeout * 10)):
        if not Path(f"/proc/{pid}").exists():
            return
        await asyncio.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    log.info("mesh: leftover gateway envoy stopped", extra={"pid": pid})


@dataclass
class GatewayEnvoys:
    """Keeps one Envoy running per gateway named in the last :meth:`sync`."""

    run_dir: Path
    bootstrap: Callable[[str, int], dict[str, Any]]  # (node, admin port) → Envoy bootstrap
    binary: Callable[[], Path]
    procs: dict[str, asyncio.subprocess.Process] = field(default_factory=dict)
    _tasks: set[asyncio.Task] = field(default_factory=set)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def dir_of(self, node: str) -> Path:
        _, mesh, _, name = node.split("/", 3)
        return self.run_dir / f"{mesh}.{name}"

    def admin_port(self, node: str) -> int | None:
        path = self.dir_of(node) / "admin-port"
        return int(path.read_text()) if path.exists() else None

    def sync(self, gateways: Iterable[Gateway]) -> None:
        """Start the Envoys of new gateways and stop those of gone ones (in the background)."""
        wanted = {g.node for g in gateways}
        task = asyncio.get_running_loop().create_task(self._sync(wanted))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sync(self, wanted: set[str]) -> None:
        async with self._lock:
            for node in sorted(set(self.procs) - wanted):
                await self._stop(node)
            for node in sorted(wanted - set(self.procs)):
                try:
                    await self._start(node)
                except OSError as e:
                    log.error("mesh: gateway envoy not started", extra={"node": node, "error": str(e)})

    async def _start(self, node: str) -> None:
        where = self.dir_of(node)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        await _stop_leftover(where)
        admin = _free_port()
        (where / "envoy.json").write_text(json.dumps(self.bootstrap(node, admin)))
        (where / "admin-port").write_text(str(admin))
        with (where / "envoy.log").open("ab") as out:
            self.procs[node] = await asyncio.create_subprocess_exec(
                str(self.binary()), "-c", str(where / "envoy.json"), "--use-dynamic-base-id",
                "--log-level", "warning", "--drain-time-s", "2",
                stdout=out, stderr=out, start_new_session=True)
        (where / "envoy.pid").write_text(str(self.procs[node].pid))
        log.info("mesh: gateway envoy started", extra={"node": node, "pid": self.procs[node].pid,
                                                        "admin": admin})

    async def _stop(self, node: str) -> None:
        proc = self.procs.pop(node)
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.info("mesh: gateway envoy stopped", extra={"node": node})

    async def stop(self) -> None:
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        async with self._lock:
            for node in sorted(self.procs):
                await self._stop(node)
