"""A real Envoy (``envoy`` on PATH) fed over ADS by ``mesh.server`` for the mesh data-path tests,
small aiohttp upstreams, and a throwaway network namespace.

``Mesh.start()`` serves an ``AdsServer`` over a ``SnapshotCache`` on ``xds_host`` and starts one
Envoy (node ``NODE``, state-of-the-world ADS, or incremental with ``delta``), optionally inside
a network namespace (``prefix``: the command that enters it). ``Mesh.push(snapshot)`` sets
the node's snapshot and waits until Envoy has ACKed every type of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import aiohttp
import grpc
import pytest
from aiohttp import web

from mesh.cache import SnapshotCache
from mesh.server import AdsServer, add_to_server
from mesh.snapshot import ORDER, SECRET, Snapshot
from mesh.telemetry.traces_envoy import collector_cluster
from tests.support.server import free_port

NODE = "task-a"


def bootstrap(xds_host: str, xds_port: int, admin_host: str, admin_port: int) -> dict:
    h2 = {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
        "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        "explicit_http_config": {"http2_protocol_options": {}}}}
    ads = {"ads": {}, "resource_api_version": "V3"}
    return {
        "node": {"id": NODE, "cluster": "test"},
        "admin": {"address": {"socket_address": {"address": admin_host, "port_value": admin_port}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3",
                           "grpc_services": [{"envoy_grpc": {"cluster_name": "xds"}}]},
            "cds_config": ads, "lds_config": ads},
        "static_resources": {"clusters": [{
            "name": "xds", "type": "STATIC", "connect_timeout": "1s",
            "typed_extension_protocol_options": h2,
            "load_assignment": {"cluster_name": "xds", "endpoints": [{"lb_endpoints": [{"endpoint": {
                "address": {"socket_address": {"address": xds_host, "port_value": xds_port}}}}]}]}}]},
    }


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> object:
    """Poll ``check`` (run in a thread) until it returns something true; OSError counts as not yet."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = await asyncio.to_thread(check)
            if got:
                return got
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        await asyncio.sleep(0.05)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def upstream(handler: Handler, host: str = "127.0.0.1") -> tuple[web.AppRunner, int]:
    """An HTTP server on ``host`` answering every path with ``handler``; returns it and its port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, host, port).start()
    return runner, port


def text(body: str) -> Handler:
    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=body)
    return answer


class Mesh:
    def __init__(self, tmp: Path, xds_host: str = "127.0.0.1", admin_host: str = "127.0.0.1",
                 prefix: Sequence[str] = (), delta: bool = False,
                 collector: tuple[str, int] | None = None) -> None:
        self.tmp, self.xds_host, self.admin_host, self.prefix = tmp, xds_host, admin_host, list(prefix)
        self.delta = delta
        self.collector = collector  # the trace collector's cluster in the bootstrap (mesh.telemetry)
        self.cache = SnapshotCache()
        self.ads = AdsServer(self.cache)
        self.admin = free_port()
        self._server: grpc.aio.Server | None = None
        self._proc: asyncio.subprocess.Process | None = None

    async def start(self) -> Mesh:
        if shutil.which("envoy") is None:
            pytest.fail("envoy is not on PATH (put .venv/bin first)")
        self._server = grpc.aio.server()
        add_to_server(self._server, self.ads)
        xds_port = self._server.add_insecure_port(f"{self.xds_host}:0")
        await self._server.start()
        boot = self.tmp / "envoy.json"
        config = bootstrap(self.xds_host, xds_port, self.admin_host, self.admin)
        if self.delta:
            config["dynamic_resources"]["ads_config"]["api_type"] = "DELTA_GRPC"
        if self.collector is not None:
            config["static_resources"]["clusters"].append(collector_cluster(*self.collector))
        boot.write_text(json.dumps(config))
        self._proc = await asyncio.create_subprocess_exec(
            *self.prefix, shutil.which("envoy"), "-c", str(boot), "--disable-hot-restart",
            "--concurrency", "1", "-l", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=(self.tmp / "envoy.log").open("w"))
        return self

    async def stop(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
        if self._server is not None:
            await self._server.stop(0)

    def acked(self, snap: Snapshot) -> bool:
        status = self.ads.status().get(NODE)
        return bool(status) and all(status["acked"].get(t) == snap.versions[t] for t in ORDER
                                   if t != SECRET or snap.resources[t])

    async def push(self, snap: Snapshot, timeout: float = 30.0) -> None:
        """Set ``snap`` and wait for Envoy's ACK of every type; a NACK of it fails at once."""
        self.cache.set_snapshot(NODE, snap)

        def done() -> bool:
            nack = next((n for n in self.ads.nacks if n.version == snap.versions.get(n.type_url)), None)
            if nack is not None:
                raise AssertionError(f"Envoy NACKed {nack.type_url}: {nack.message}")
            return self.acked(snap)
        await eventually(done, timeout)

    def get(self, path: str) -> str:
        """GET on Envoy's admin interface."""
        with urllib.request.urlopen(f"http://{self.admin_host}:{self.admin}{path}", timeout=5) as r:
            return r.read().decode()

    def stat(self, name: str) -> int:
        """One counter or gauge from ``/stats`` (0 when Envoy has not created it yet)."""
        for line in self.get(f"/stats?filter=^{name}$").splitlines():
            key, _, value = line.partition(": ")
            if key == name:
                return int(value)
        return 0

    async def listening(self, address: str) -> None:
        """Wait until Envoy's ``/listeners`` shows ``address`` (``ip:port``)."""
        await eventually(lambda: address in self.get("/listeners"))


class Netns:
    """A network namespace with ``lo`` up and a veth pair to the host: ``host_ip`` on the host's
    side, ``ns_ip`` inside. ``exec`` is the command prefix that runs a program inside."""

    def __init__(self) -> None:
        n = os.getpid() % 200 + 20
        self.name = f"dyk-test-{os.getpid()}"
        self.host_if, self.ns_if = f"dykh{os.getpid()}"[:15], f"dykn{os.getpid()}"[:15]
        self.host_ip, self.ns_ip = f"10.231.{n}.1", f"10.231.{n}.2"
        self.exec = ["ip", "netns", "exec", self.name]

    def run(self, *args: str, inside: bool = True) -> subprocess.CompletedProcess:
        cmd = [*self.exec, *args] if inside else list(args)
        return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=30)

    def create(self) -> Netns:
        self.run("ip", "netns", "add", self.name, inside=False)
        self.run("ip", "link", "set", "lo", "up")
        self.run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if, inside=False)
        self.run("ip", "link", "set", self.ns_if, "netns", self.name, inside=False)
        self.run("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if, inside=False)
        self.run("ip", "link", "set", self.host_if, "up", inside=False)
        self.run("ip", "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        self.run("ip", "link", "set", self.ns_if, "up")
        return self

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True, timeout=30)
        subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, timeout=30)


async def call(session: aiohttp.ClientSession, port: int, host: str, path: str = "/",
               timeout: float = 10.0) -> tuple[int, str, Mapping[str, str]]:
    """One GET through Envoy's listener on ``127.0.0.1:port`` for virtual host ``host``."""
    async with session.get(f"http://127.0.0.1:{port}{path}", headers={"Host": host},
                           timeout=aiohttp.ClientTimeout(total=timeout)) as r:
        return r.status, await r.text(), r.headers
