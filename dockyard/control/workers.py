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

Access log (``dockyard.accesslog``, the ``access_log`` setting): a worker writes the line of
every request it answers itself, a read-only operation, ``/healthz``, ``/metrics``, a refusal
of its transport (those have no method or path: the request was not read whole) or a 503 when
the main process cannot be reached; a forwarded request is logged once, by the main process.

A worker exits when the main process asks it to (SIGTERM) and when the main process dies
(``PR_SET_PDEATHSIG``), so a worker is never orphaned.

The seam with the assembly: this module imports no part and not ``dockyard.platform``. The
main process calls :func:`start_workers` with the name of the module a worker runs
(``dockyard.control_worker``), which builds the worker's platform and calls :func:`main`
with that factory (a :data:`Build`); a worker's platform is only what
:class:`WorkerPlatform` names.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import mmap
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, Protocol

import aiohttp
from yarl import URL

from dockyard import accesslog, limits, logs, probes
from dockyard.aws.errors import AwsError, RequestEntityTooLargeException, error_type
from dockyard.aws.protocol import MAX_BODY, Operations
from dockyard.config import Config
from dockyard.control._http1 import Connection, Request, Server
from dockyard.state import connect
from dockyard.store import RETRY_AFTER, Store

__all__ = ["Build", "ControlApp", "Forwarder", "WorkerPlatform", "check_port_free", "main", "start_workers"]

log = logging.getLogger(__name__)
CONFIG_ENV = "DOCKYARD_WORKER_CONFIG"
UPSTREAM_ENV = "DOCKYARD_WORKER_UPSTREAM"
BALANCE_ENV = "DOCKYARD_WORKER_BALANCE"  # path of the shared counts, and this worker's index
BALANCE_FILE = "control-workers.balance"
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "upgrade", "expect",
        "proxy-connection", "te", "trailer"}
AMZ_JSON = "application/x-amz-json-1.1"
# Headers aiohttp would add to a forwarded request that lacks them: it goes on as it came (a
# Content-Type the client did not send, and so did not sign, would fail its signature).
_AUTO = ("Content-Type", "User-Agent", "Accept", "Accept-Encoding")

# What the transport itself answers (the dispatcher's errors are in dockyard.aws.errors).
BadRequestException = error_type("BadRequestException")
RequestHeaderFieldsTooLargeException = error_type("RequestHeaderFieldsTooLargeException", 431)
RequestURITooLongException = error_type("RequestURITooLongException", 414)
ServiceUnavailableException = error_type("ServiceUnavailableException", 503)
InternalFailure = error_type("InternalFailure", 500)
_TRANSPORT_ERRORS: dict[int, type[AwsError]] = {
    400: BadRequestException,
    413: RequestEntityTooLargeException,
    414: RequestURITooLongException,
    431: RequestHeaderFieldsTooLargeException,
    500: InternalFailure,
    503: ServiceUnavailableException,
}


class WorkerPlatform(Protocol):
    """What a worker needs of its platform (``dockyard.platform.Platform`` in the ``worker``
    role fills it in)."""

    ops: Operations
    config: Config

    @property
    def worker_contexts(self) -> Sequence[Callable[[Any], AsyncIterator[None]]]:
        """Start/stop hooks run in the worker (async generators taking the platform)."""

    def health(self) -> dict[str, object]:
        """What ``/healthz`` answers with credentials (dockyard.probes)."""


Build = Callable[[Config, Store], WorkerPlatform]
"""Builds a worker's platform over its own store (``dockyard.control_worker.build``)."""


def error_body(status: int, message: str) -> tuple[str, bytes]:
    """The AWS JSON error envelope of an answer the transport makes itself."""
    error = _TRANSPORT_ERRORS.get(status, BadRequestException)(message)
    return AMZ_JSON, json.dumps(error.body(), separators=(",", ":")).encode()


class Forwarder:
    """Sends a request, as received, to the main process and streams its answer back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, request: Request, conn: Connection) -> bool:
        """Forward ``request``; False when the main process could not be reached (this worker
        answered 503 itself)."""
        if self.session is None:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=256), auto_decompress=False,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10),
            )
        headers = [(k, v) for k, v in request.raw_headers if k.lower() not in _HOP]
        headers.append(("Host", request.headers.get("host", "")))
        try:
            upstream = await self.session.request(
                request.method, URL(self.upstream + request.target, encoded=True), headers=headers,
                data=request.body, allow_redirects=False, skip_auto_headers=_AUTO,
            )
        except (aiohttp.ClientError, OSError) as e:
            log.error("control worker could not reach the main process", extra={"error": str(e)})
            content_type, body = error_body(503, "The service is unavailable; try again.")
            conn.respond(503, body, content_type)
            return False
        async with upstream:
            conn.start(
                upstream.status,
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in upstream.raw_headers
                 if k.decode("latin-1").lower() not in _HOP],
                upstream.content_length,
            )
            async for chunk in upstream.content.iter_any():
                await conn.write(chunk)
            conn.finish()
        return True

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


class SharedBalance:
    """The workers' connection counts in a shared file mapping (one 8-byte slot each), so that
    each can tell whether it holds more than its share (``_http1.Balance``): more than the mean
    plus one."""

    def __init__(self, path: str, index: int, workers: int) -> None:
        fd = os.open(path, os.O_RDWR)
        try:
            self._map = mmap.mmap(fd, 8 * workers)
        finally:
            os.close(fd)
        self._offset = 8 * index
        self._format = f"<{workers}q"
        self._workers = workers

    @staticmethod
    def create(path: str, workers: int) -> None:
        with open(path, "wb") as f:
            f.write(bytes(8 * workers))

    def publish(self, count: int) -> None:
        struct.pack_into("<q", self._map, self._offset, count)

    def over_share(self, count: int) -> bool:
        return count > sum(struct.unpack_from(self._format, self._map)) / self._workers + 1

    def close(self) -> None:
        self._map.close()


class ControlApp:
    """What a control worker answers on the control port: a read-only operation of any AWS
    protocol (JSON through the same ``Operations.answer`` the main process uses, RPC v2 CBOR,
    Query and REST-JSON through ``Operations.respond``), ``GET /healthz`` and ``GET /metrics``
    of this process; everything else goes to the main process unchanged."""

    def __init__(
        self, platform: WorkerPlatform, forward: Forwarder, access: logging.Logger | None = None
    ) -> None:
        self.platform = platform
        self.ops = platform.ops
        self.forward = forward
        self.access = access  # the access logger (None: off)

    def local(self, request: Request) -> bool:
        """Whether this process answers ``request`` itself (else the main process does)."""
        method, path, headers = request.method, request.path, request.headers
        target = headers.get("x-amz-target")
        if target is not None:  # AWS JSON, the hot path
            return method == "POST" and path == "/" and self.ops.readonly(target)
        if method in ("GET", "HEAD") and path in ("/healthz", "/metrics"):
            return True
        return self.ops.readonly(self.ops.target_of(method, path, request.query, headers, request.body))

    async def __call__(self, request: Request, conn: Connection) -> None:
        started, sent = time.perf_counter(), conn.sent
        if not self.local(request):
            if not await self.forward(request, conn):
                self._log(logs.new_request_id(), request, 503, conn.sent - sent, started)
            return
        method, path = request.method, request.path
        rid = self._request_id(request)
        logs.principal.set("")
        ids = (("x-amzn-RequestId", rid), ("X-Request-Id", rid))
        if "x-amz-target" in request.headers:
            status, body = await self.ops.answer(
                method, path, request.query, request.headers, request.body, rid
            )
            retry = (("Retry-After", str(RETRY_AFTER)),) if status == 503 else ()  # store unavailable
            conn.respond(status, body, AMZ_JSON, (*ids, *retry))
        elif path in ("/healthz", "/metrics") and method != "POST":
            key = self.platform.config.metrics_key
            if path == "/healthz":
                answer = probes.healthz(
                    self.ops, key, method, path, request.query, request.headers, self.platform.health
                )
            else:
                answer = probes.metrics(key, request.headers)
            status, ctype, body, extra = answer
            conn.respond(status, body, ctype, (*extra, ("X-Request-Id", rid)))
        else:
            out = await self.ops.respond(method, path, request.query, request.headers, request.body, rid)
            status = out.status
            conn.respond(out.status, out.body, out.content_type, (*out.headers.items(), *ids))
        self._log(rid, request, status, conn.sent - sent, started)

    def _log(self, rid: str, request: Request, status: int, size: int, started: float) -> None:
        if self.access is None:
            return
        operation = accesslog.operation_of(request.headers.get("x-amz-target", ""), request.path)
        accesslog.log_line(self.access, accesslog.line(
            rid, request.method, request.path, status, size, time.perf_counter() - started,
            logs.principal.get(), operation,
        ))

    def refused(self, status: int, message: str) -> tuple[str, bytes]:
        """The transport's own error answers (:func:`error_body`), each with its access line."""
        content_type, body = error_body(status, message)
        if self.access is not None:
            out = accesslog.line(logs.new_request_id(), "", "", status, len(body), 0)
            accesslog.log_line(self.access, out)
        return content_type, body

    @staticmethod
    def _request_id(request: Request) -> str:
        rid = request.headers.get("x-request-id")
        if rid:
            logs.request_id.set(rid)
            return rid
        return logs.new_request_id()


@asynccontextmanager
async def start_workers(config: Config, upstream_port: int, entry: str) -> AsyncIterator[None]:
    """Start ``config.control_workers`` worker processes, each running the module ``entry``
    (``python -m entry``; it calls :func:`main`), which forward to ``upstream_port`` on
    loopback; stop them on exit."""
    workers = config.control_workers
    balance = str(Path(config.data_dir) / BALANCE_FILE)
    SharedBalance.create(balance, workers)
    env = {
        **os.environ,
        CONFIG_ENV: json.dumps(asdict(config)),
        UPSTREAM_ENV: f"http://127.0.0.1:{upstream_port}",
    }
    procs: list[asyncio.subprocess.Process] = []
    try:
        for index in range(workers):
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", entry,
                env={**env, BALANCE_ENV: f"{balance}:{index}:{workers}"}, stdout=asyncio.subprocess.PIPE,
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


def connection_cap(open_files: int) -> int:
    """How many client connections a worker holds at most, given its open-file limit: room is
    kept for the store, the upstream connections and the process's own files."""
    return max(64, min(10_000, open_files - 512))


async def _serve(
    build: Build, config: Config, upstream: str, balance: SharedBalance, open_files: int
) -> None:
    limits.limit_resource_error_logs(asyncio.get_running_loop())
    store = connect(config.state_target, key_file=config.key_path)
    forward = Forwarder(upstream)
    try:
        platform = build(config, store)
        app = ControlApp(platform, forward, accesslog.logger_for(config.access_log))
        # What a worker answers itself reads memory and the store and never waits on a timeout:
        # it may run without a Task of its own (see dockyard.control._http1).
        # the same http_* bounds as the aiohttp listeners (dockyard.listeners)
        server = Server(
            app, app.refused, max_body=MAX_BODY, eager=app.local, balance=balance,
            header_timeout=config.http_header_timeout, body_timeout=config.http_body_timeout,
            keepalive_timeout=config.http_keepalive_timeout,
            max_connections=config.http_max_connections or connection_cap(open_files),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with AsyncExitStack() as stack:
            follower = asyncio.create_task(store.follow())
            stack.callback(follower.cancel)
            for ctx in platform.worker_contexts:
                await stack.enter_async_context(asynccontextmanager(ctx)(platform))
            await server.start(config.host, config.control_port, reuse_port=True)
            stack.push_async_callback(server.close)
            gc.freeze()  # what start-up allocated is never garbage; keeps collections short
            print("ready", flush=True)
            await stop.wait()
    finally:
        await forward.close()
        store.close()


def main(build: Build) -> None:
    """Run a worker process (started by :func:`start_workers`) serving the platform ``build``
    makes."""
    _die_with_parent()
    open_files = limits.raise_open_file_limit()
    config = Config(**json.loads(os.environ[CONFIG_ENV]))
    logs.setup(config.log_level)
    import uvloop

    path, index, workers = os.environ[BALANCE_ENV].rsplit(":", 2)
    balance = SharedBalance(path, int(index), int(workers))
    uvloop.run(_serve(build, config, os.environ[UPSTREAM_ENV], balance, open_files))
