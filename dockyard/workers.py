"""Control workers: processes that share the control port (SO_REUSEPORT).

With ``control_workers = N`` (N > 1) the main process starts N workers, which own the public
control port, and itself listens only on an internal loopback port. Each worker runs on
uvloop (it serves no files, so uvloop's missing ``sendfile`` does not matter), opens the same
store, installs every part in the ``worker`` role and answers the operations the parts marked
read-only (``ops.add(..., readonly=True)``) from its own state, which follows the store
(``Store.follow`` wakes it on every commit, from any process). Everything else, writes and
every other route, is forwarded unchanged to the main process on an internal loopback port,
where it is verified and handled as usual: background work (health checks, DNS, the runner,
xDS) only ever runs in the main process.

A worker exits when the main process asks it to (SIGTERM) and when the main process dies
(``PR_SET_PDEATHSIG``), so a worker is never orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import os
import signal
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from dockyard import logs
from dockyard.config import Config

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["Forwarder", "check_port_free", "main", "start_workers"]

log = logging.getLogger("dockyard.workers")
CONFIG_ENV = "DOCKYARD_WORKER_CONFIG"
UPSTREAM_ENV = "DOCKYARD_WORKER_UPSTREAM"
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade"}


class Forwarder:
    """Sends a request, as received, to the main process and streams its answer back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, request: web.Request, body: bytes | None = None) -> web.StreamResponse:
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        if body is None:
            body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        headers["Host"] = request.headers.get("Host", "")
        async with self.session.request(
            request.method, self.upstream + request.raw_path, headers=headers, data=body,
            allow_redirects=False,
        ) as upstream:
            out = web.StreamResponse(
                status=upstream.status,
                headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP},
            )
            if upstream.content_length is not None:
                out.content_length = upstream.content_length
            await out.prepare(request)
            async for chunk in upstream.content.iter_any():
                await out.write(chunk)
            await out.write_eof()
            return out

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


@asynccontextmanager
async def start_workers(platform: Platform, upstream_port: int) -> AsyncIterator[None]:
    """Start ``control_workers - 1`` worker processes; stop them on exit."""
    env = {
        **os.environ,
        CONFIG_ENV: json.dumps(asdict(platform.config)),
        UPSTREAM_ENV: f"http://127.0.0.1:{upstream_port}",
    }
    procs: list[asyncio.subprocess.Process] = []
    try:
        for _ in range(platform.config.control_workers):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-c", "from dockyard.workers import main; main()",
                env=env, stdout=asyncio.subprocess.PIPE,
            )
            procs.append(proc)
        for proc in procs:
            assert proc.stdout is not None
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            if not line.startswith(b"ready"):
                raise OSError(f"control worker {proc.pid} failed to start")
        yield
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                await asyncio.wait_for(proc.wait(), timeout=10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def check_port_free(host: str, port: int) -> None:
    """Raise the usual OSError (address already in use) if ``port`` cannot be shared."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        s.bind((host, port))


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


async def _serve(config: Config, upstream: str) -> None:
    from dockyard.platform import Platform, load_parts
    from dockyard.store import Store

    store = Store(str(config.db_path))
    forward = Forwarder(upstream)
    try:
        platform = Platform(config, store, role="worker")
        for part in load_parts():
            part.install(platform)
        platform.ops.forward = forward
        app = web.Application(client_max_size=platform.control._client_max_size)
        app.router.add_post("/", platform.ops.dispatch)
        app.router.add_get("/healthz", platform.healthz)
        app.router.add_get("/metrics", platform.metrics)
        app.router.add_route("*", "/{tail:.*}", forward)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with AsyncExitStack() as stack:
            follower = asyncio.create_task(store.follow())
            stack.callback(follower.cancel)
            for ctx in platform.worker_contexts:
                await stack.enter_async_context(asynccontextmanager(ctx)(platform))
            runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await runner.setup()
            stack.push_async_callback(runner.cleanup)
            await web.TCPSite(runner, config.host, config.control_port, reuse_port=True).start()
            gc.freeze()  # what start-up allocated is never garbage; keeps collections short
            print("ready", flush=True)
            await stop.wait()
    finally:
        await forward.close()
        store.close()


def main() -> None:
    """Entry point of a worker process (started by :func:`start_workers`)."""
    _die_with_parent()
    config = Config(**json.loads(os.environ[CONFIG_ENV]))
    logs.setup(config.log_level)
    import uvloop

    uvloop.run(_serve(config, os.environ[UPSTREAM_ENV]))
