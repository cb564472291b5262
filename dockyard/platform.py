"""The all-in-one assembly behind ``dockyard up``.

A :class:`Platform` owns the config, the state store, the control API's operation table and
the listeners. Each part (``registry``, ``discovery``, ``runner``, ``mesh``) exposes
``MIGRATIONS`` and an ``install``; ``install`` registers operations and routes and
appends start/stop hooks to ``platform.contexts`` (async generators in the style of
aiohttp's ``cleanup_ctx``: code before ``yield`` starts, code after it stops, run in reverse
order on shutdown). :func:`assemble` is the one place that installs the parts and wires what
one part offers into the seams another declares (``runner.seams``): discovery's instance
registrar, task resolver and namespace lookup, the registry's pull credential and the mesh's
CloudWatch alarms (what rolls a deployment back) into the runner;
the runner's secret store into the registry (``registry.seams.SecretLookup``, pull-through rules);
discovery's instances and the runner's Service Connect view into the mesh (``mesh.seams``);
the mesh's xDS server into the edge (``edge.seams.Xds``); the edge's target groups into the
runner (``runner.seams.TargetGroups``, services' ``loadBalancers``).
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

from dockyard import accesslog, endpoints, keys, limits, listeners, lock, logs, probes
from dockyard.aws.errors import (
    CODES,
    AwsError,
    InvalidParameterException,
    RequestEntityTooLargeException,
    SerializationException,
)
from dockyard.aws.protocol import (
    CLOUDMAP,
    ECS,
    MAX_BODY,
    InternalFailure,
    Operations,
    json_response,
    unavailable,
)
from dockyard.config import Config, ConfigError
from dockyard.control.workers import check_port_free, error_body, start_workers
from dockyard.iam import records as iam_records
from dockyard.iam import sessions
from dockyard.iam.authorize import Authorizer
from dockyard.state import open_state
from dockyard.store import RETRY_AFTER, Migration, Store, StoreUnavailable

__all__ = ["PARTS", "Platform", "assemble", "load_parts", "open_store", "run"]

log = logging.getLogger("dockyard")

# Imported by name so that a part's import errors name the part.
PARTS = ["registry.part", "discovery.part", "runner.part", "mesh.part", "edge.part"]

Context = Callable[["Platform"], AsyncIterator[None]]


def load_parts() -> list[ModuleType]:
    return [importlib.import_module(name) for name in PARTS]


def assemble(platform: Platform) -> None:
    """Install every part on ``platform`` and connect their seams."""
    from discovery import part as discovery_part
    from edge import part as edge_part
    from mesh import part as mesh_part
    from registry import part as registry_part
    from runner import part as runner_part

    reg = registry_part.install(platform, secrets=runner_part.secret_lookup(platform.store))
    disc = discovery_part.install(platform)
    # The mesh goes before the runner: the runner's tasks need the mesh's sidecars (and its
    # xDS port served first); the runner's Service Connect view is handed back to the mesh.
    mesh = mesh_part.install(platform, instances=disc.mesh_instances)
    # The edge's Envoy takes its configuration from the mesh's xDS server (edge.seams.Xds); the
    # runner registers services' tasks in its target groups (runner.seams.TargetGroups).
    edge = edge_part.install(platform, xds=mesh)
    edge.metrics = mesh.metric_sink()  # its ALB metrics into CloudWatch's store (edge.seams.MetricSink)
    run = runner_part.install(platform, instances=disc.instances, pull_auth=reg.pull_auth,
                              task_dns=disc.task_dns, namespaces=disc.namespace_service_ids,
                              namespace_info=disc.namespace, sidecars=mesh.sidecars,
                              metrics=mesh.metric_points(),
                              alarms=mesh.telemetry.alarms if mesh.telemetry else None,
                              revision_metrics=mesh.revisions, target_groups=edge.targets,
                              listener_rules=edge.targets)
    if run.ecr_events is not None:  # ECR's events onto the EventBridge bus (registry.seams.EventSink)
        reg.send_events_to(run.ecr_events)
    mesh.connect = run.connect  # the runner's Service Connect view (mesh.seams.ConnectView)
    mesh.usage = run.usage  # its tasks' CPU and memory (mesh.seams.UsageView)
    # Requests of the modelled operations are checked against AWS's models before their
    # handlers run, answered with each service's own error (Cloud Map's is discovery's).
    platform.ops.validate(CLOUDMAP, CODES["InvalidInput"])
    platform.ops.validate(ECS, InvalidParameterException)


def all_migrations(parts: list[ModuleType]) -> list[Migration]:
    out = [*keys.MIGRATIONS, *iam_records.MIGRATIONS]
    for part in parts:
        out.extend(getattr(part, "MIGRATIONS", []))
    return out


def open_store(config: Config) -> Store:
    """Open the data dir's store with every part's migrations applied."""
    Path(config.data_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    return _open_state(config, all_migrations(load_parts()))


def _open_state(config: Config, migrations: list[Migration]) -> Store:
    """The config's state store, migrated; a state_url that is malformed, unreachable or
    refused raises ConfigError naming it, before anything listens."""
    try:
        return open_state(config.state_target, migrations, key_file=config.key_path)
    except (ValueError, StoreUnavailable) as e:
        raise ConfigError(str(e)) from None


def _web_answer(answer: probes.Answer) -> web.Response:
    status, content_type, body, headers = answer
    return web.Response(status=status, body=body, headers={"Content-Type": content_type, **dict(headers)})


@web.middleware
async def _request_id(request: web.Request, handler: Callable) -> web.StreamResponse:
    rid = request.headers.get("X-Request-Id") or logs.new_request_id()
    logs.request_id.set(rid)
    request["request_id"] = rid
    response = await handler(request)
    response.headers.setdefault("X-Request-Id", rid)
    return response


@web.middleware
async def _control_errors(request: web.Request, handler: Callable) -> web.StreamResponse:
    """The control app's last resort: whatever escapes a route becomes the AWS error envelope
    (aiohttp's own 4xx keep their status), a broken body SerializationException, a client gone
    re-raised (the listener logs it at debug), anything else 500 InternalFailure with one
    ERROR line and no traceback (dockyard.listeners)."""
    allow = ""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error: AwsError = (RequestEntityTooLargeException if exc.status == 413 else SerializationException)(
            exc.reason
        )
        status, allow = exc.status, exc.headers.get("Allow", "")
    except web.RequestPayloadError as exc:
        error, status = SerializationException(f"The request body could not be read: {exc}."), 400
        allow = ""
    except AwsError as exc:  # raised outside the dispatcher's own mapping
        error, status = exc, exc.status
    except StoreUnavailable as exc:
        error = unavailable(request.path, exc)
        status, allow = error.status, ""
    except Exception as exc:
        if listeners.is_client_gone(exc, request):
            raise
        listeners.log_unexpected(log, "control request failed", exc, path=request.path)
        error, status = InternalFailure("The request processing has failed."), 500
    response = json_response(error.body(), status=status, request_id=request.get("request_id", ""))
    if allow:
        response.headers["Allow"] = allow  # a 405 keeps the methods the route takes
    if status == 503:
        response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


_ERROR_BODIES: dict[str, listeners.ErrorBody] = {"registry": listeners.oci_error_body, "control": error_body}


class Platform:
    """One process's view of Dockyard: ``role`` is ``main`` (everything) or ``worker`` (a
    control worker: read-only operations and ``worker_contexts`` only; see
    dockyard.control.workers)."""

    worker_entry = "dockyard.control_worker"
    """The module a control worker runs (``python -m``); it builds the worker's platform."""

    def __init__(self, config: Config, store: Store, role: str = "main") -> None:
        self.config = config
        self.store = store
        self.role = role
        self.worker_contexts: list[Context] = []
        self.session_key = sessions.load_key(config.data_dir)  # task roles' credentials
        self.ops = Operations(
            sessions.with_sessions(keys.SecretCache(store), self.session_key), region=config.region
        )
        self.ops.authorize = Authorizer(store, config, self.session_key)  # policies (dockyard.iam)
        self.control = web.Application(
            middlewares=[_request_id, accesslog.control_middleware, _control_errors],
            client_max_size=MAX_BODY + 1,
        )
        self.registry = web.Application(middlewares=[_request_id], client_max_size=4 * 1024 * 1024 + 1)
        self.contexts: list[Context] = []
        self.endpoints: list[tuple[str, str]] = []
        self.started = time.time()
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
        """What ``/healthz`` answers with credentials, after a store read (dockyard.probes:
        anyone else gets only ``status``)."""
        self.store.query_one("SELECT 1")
        return probes.process_detail("ok", self.role, self.store.revision)

    async def healthz(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        answer = probes.healthz(
            self.ops, self.config.metrics_key, request.method, request.raw_path.split("?", 1)[0],
            request.query_string, headers, self.health,
        )
        return _web_answer(answer)

    async def metrics(self, request: web.Request) -> web.Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        return _web_answer(probes.metrics(self.config.metrics_key, headers))

    def listener_limits(self) -> listeners.Limits:
        """The bounds of each aiohttp listener, from the ``http_*`` settings."""
        cfg = self.config
        cap = cfg.http_max_connections or listeners.connection_cap(limits.open_file_limit())
        return listeners.Limits(
            header_timeout=cfg.http_header_timeout, body_timeout=cfg.http_body_timeout,
            keepalive_timeout=cfg.http_keepalive_timeout, max_connections=cap,
        )

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
            # Every AWS protocol (JSON, RPC v2 CBOR, Query, REST-JSON) behind the one dispatch,
            # after the routes of the platform and the parts, which go first.
            self.ops.install(self.control.router)
            host = self.config.host
            workers = self.config.control_workers > 1
            # one access line per request (dockyard.accesslog); with control workers, what they
            # forward is logged here and what they answer themselves in the worker
            access = accesslog.logger_for(self.config.access_log)
            for name, app, port, tls in (
                ("registry", self.registry, self.config.registry_port, self.tls),
                ("control", self.control, self.config.control_port, None),
            ):
                runner = listeners.GuardedRunner(
                    app, name=name, limits=self.listener_limits(), error_body=_ERROR_BODIES[name],
                    access_log=access, access_log_class=accesslog.AccessLogger, handle_signals=False,
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
                    workers_cm = start_workers(self.config, upstream, self.worker_entry)
                    await stack.enter_async_context(workers_cm)
                else:
                    reuse = name == "registry" and self.config.registry_workers > 1
                    # a deep accept queue: a burst of connections waits there, not in SYN retries
                    site = web.TCPSite(runner, host, port, ssl_context=tls, reuse_port=reuse, backlog=1024)
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
        store = _open_state(config, all_migrations(parts))
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
