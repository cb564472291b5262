"""The all-in-one assembly behind ``dockyard up``.

A :class:`Platform` owns the config, the state store, the control API's operation table and
the listeners. Each part (``registry``, ``discovery``, ``runner``, ``mesh``) exposes
``MIGRATIONS`` and an ``install``; ``install`` registers operations and routes and
appends start/stop hooks to ``platform.contexts`` (async generators in the style of
aiohttp's ``cleanup_ctx``: code before ``yield`` starts, code after it stops, run in reverse
order on shutdown). :func:`assemble` is the one place that installs the parts and wires what
one part offers into the seams another declares (``runner.seams``): discovery's instance
registrar and the registry's pull credential into the runner.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import signal
import ssl
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import ModuleType

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dockyard import accesslog, endpoints, keys, limits, lock, logs
from dockyard.aws.protocol import MAX_BODY, Operations
from dockyard.config import Config
from dockyard.control.workers import check_port_free, start_workers
from dockyard.iam import records as iam_records
from dockyard.iam import sessions
from dockyard.iam.authorize import Authorizer
from dockyard.store import Migration, Store

__all__ = ["PARTS", "Platform", "assemble", "load_parts", "open_store", "run"]

log = logging.getLogger("dockyard")

# Imported by name so that a part's import errors name the part.
PARTS = ["registry.part", "discovery.part", "runner.part", "mesh.part"]

Context = Callable[["Platform"], AsyncIterator[None]]


def load_parts() -> list[ModuleType]:
    return [importlib.import_module(name) for name in PARTS]


def assemble(platform: Platform) -> None:
    """Install every part on ``platform`` and connect their seams."""
    from discovery import part as discovery_part
    from mesh import part as mesh_part
    from registry import part as registry_part
    from runner import part as runner_part

    reg = registry_part.install(platform)
    disc = discovery_part.install(platform)
    runner_part.install(platform, instances=disc.instances, pull_auth=reg.pull_auth)
    mesh_part.install(platform)


def all_migrations(parts: list[ModuleType]) -> list[Migration]:
    out = [*keys.MIGRATIONS, *iam_records.MIGRATIONS]
    for part in parts:
        out.extend(getattr(part, "MIGRATIONS", []))
    return out


def open_store(config: Config) -> Store:
    """Open the data dir's store with every part's migrations applied."""
    Path(config.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    return Store.open(config.db_path, all_migrations(load_parts()))


@web.middleware
async def _request_id(request: web.Request, handler: Callable) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id") or logs.new_request_id()
    logs.request_id.set(rid)
    request["request_id"] = rid
    response = await handler(request)
    response.headers.setdefault("X-Request-Id", rid)
    return response


class Platform:
    """One process's view of Dockyard: ``role`` is ``main`` (everything) or ``worker`` (a
    control worker: read-only operations and ``worker_contexts`` only; see
    dockyard.control.workers)."""

    def __init__(self, config: Config, store: Store, role: str = "main") -> None:
        self.config = config
        self.store = store
        self.role = role
        self.worker_contexts: list[Context] = []
        self.session_key = sessions.load_key(config.data_dir)  # task roles' credentials
        self.ops = Operations(sessions.with_sessions(keys.SecretCache(store), self.session_key))
        self.ops.authorize = Authorizer(store, config, self.session_key)  # policies (dockyard.iam)
        self.control = web.Application(middlewares=[_request_id], client_max_size=MAX_BODY + 1)
        self.registry = web.Application(middlewares=[_request_id], client_max_size=4 * 1024 * 1024 + 1)
        self.contexts: list[Context] = []
        self.endpoints: list[tuple[str, str]] = []
        self.started = time.time()
        self.control.router.add_post("/", self.ops.dispatch)
        self.control.router.add_get("/healthz", self.healthz)
        self.control.router.add_get("/metrics", self.metrics)

    @property
    def tls(self) -> ssl.SSLContext | None:
        cfg = self.config
        cert, key = cfg.tls_cert, cfg.tls_key
        if not (cert and key) and cfg.tls_self_signed:
            from dockyard.tls import ensure_self_signed

            cert, key = ensure_self_signed(cfg.data_dir, cfg.host)
        if not (cert and key):
            return None
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        return ctx

    def health(self) -> dict[str, object]:
        """What ``/healthz`` answers, after a store read."""
        self.store.query_one("SELECT 1")
        return {"status": "ok", "revision": self.store.revision, "role": self.role, "pid": os.getpid()}

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response(self.health())

    async def metrics(self, request: web.Request) -> web.Response:
        resp = web.Response(body=generate_latest())
        resp.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return resp

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[None]:
        """Start every part and listener; stop them in reverse order on exit."""
        async with AsyncExitStack() as stack:
            # Other processes (the CLI; control workers forward their writes here) commit
            # rarely: a 50 ms poll is soon enough and costs little on the busy event loop.
            follower = asyncio.create_task(self.store.follow(interval=0.05))
            stack.callback(follower.cancel)
            for ctx in self.contexts:
                await stack.enter_async_context(asynccontextmanager(ctx)(self))
            host = self.config.host
            workers = self.config.control_workers > 1
            for name, app, port, tls in (
                ("registry", self.registry, self.config.registry_port, self.tls),
                ("control", self.control, self.config.control_port, None),
            ):
                # the registry's access log (dockyard.accesslog); the control API's is the AWS layer's
                access = accesslog.logger_for(self.config.access_log) if name == "registry" else None
                runner = web.AppRunner(
                    app, access_log=access, access_log_class=accesslog.AccessLogger, handle_signals=False
                )
                await runner.setup()
                stack.push_async_callback(runner.cleanup)
                if name == "control" and workers:
                    # The workers own the public control port; this process answers what
                    # they forward on a loopback port of its own.
                    check_port_free(host, port)
                    internal = web.TCPSite(runner, "127.0.0.1", 0)
                    await internal.start()
                    upstream = internal._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                    workers_cm = start_workers(self.config, upstream, "dockyard.control_worker")
                    await stack.enter_async_context(workers_cm)
                else:
                    reuse = name == "registry" and self.config.registry_workers > 1
                    site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_port=reuse)
                    await site.start()
                scheme = "https" if tls else "http"
                path = "/v2/" if name == "registry" else "/"
                self.endpoints.append((name, f"{scheme}://{self.config.address(port)}{path}"))
            yield


async def ensure_admin_key(config: Config, store: Store) -> Path | None:
    """On first start, create the admin key and write it (mode 0600) to the data dir."""
    if keys.list_keys(store):
        return None
    key = await keys.create(store, "admin")
    path = config.credentials_path
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(
            "[default]\n"
            f"aws_access_key_id = {key.access_key_id}\n"
            f"aws_secret_access_key = {key.secret}\n"
            f"region = {config.region}\n"
        )
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


async def run(config: Config) -> None:
    """``dockyard up``: serve until SIGINT or SIGTERM, then stop cleanly."""
    logs.setup(config.log_level)
    limits.raise_open_file_limit()
    limits.limit_resource_error_logs(asyncio.get_running_loop())
    parts = load_parts()
    Path(config.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    held = lock.acquire(config.data_dir)  # one server per data dir (raises DataDirInUse)
    try:
        store = Store.open(config.db_path, all_migrations(parts))
    except BaseException:
        held.release()
        raise
    try:
        platform = Platform(config, store)
        assemble(platform)
        created = await ensure_admin_key(config, store)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        # Blob writes, hashing and fsyncs wait on the disk far more than they hold the GIL:
        # enough threads that 64 concurrent uploads overlap their fsyncs.
        loop.set_default_executor(ThreadPoolExecutor(64, thread_name_prefix="dockyard-io"))
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with platform.serving():
            for name, url in platform.endpoints:
                print(f"dockyard: {name:<9} {url}", flush=True)
            endpoints.write(config.data_dir, platform.endpoints)  # for the CLI (dockyard.client)
            print(f"dockyard: data dir  {config.data_dir}", flush=True)
            if created:
                print(f"dockyard: admin credentials written to {created}", flush=True)
            if config.tls_self_signed and not config.tls_cert:
                from dockyard.tls import ensure_self_signed

                cert, _ = ensure_self_signed(config.data_dir, config.host)
                print(f"dockyard: self-signed registry certificate {cert} (trust it to use TLS)", flush=True)
            gc.freeze()  # what start-up allocated is never garbage; keeps collections short
            print("dockyard: ready", flush=True)
            log.info("started", extra={"data_dir": config.data_dir})
            await stop.wait()
            log.info("stopping")
    finally:
        endpoints.remove(config.data_dir)
        store.close()
        held.release()
    print("dockyard: stopped", flush=True)
