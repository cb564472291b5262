"""The trace collector's HTTP side: Zipkin's v2 API over a :class:`~mesh.telemetry.traces.TraceStore`.

Routes (added to the control app, so the base URL of a Zipkin client is the control URL):

* ``POST /api/v2/spans``: a JSON list of Zipkin v2 spans (what Envoy's Zipkin tracer sends with
  ``HTTP_JSON``: ``application/json``, chunked; gzip is undone by aiohttp before counting). The
  body is read in chunks and refused with 413 as soon as it passes ``max_body`` bytes (a
  ``Content-Length`` over it is refused before reading), so a large body never sits in memory;
  bad JSON or a span that is not Zipkin's is 400 with a one-line reason; Zipkin's proto3 and
  Thrift encodings are 415 (any other ``Content-Type`` is read as JSON, as ``curl -d`` sends a
  form type). Nothing of a refused
  body is kept. 202 on success, like Zipkin.
* ``GET /api/v2/services``, ``/api/v2/spans?serviceName=``, ``/api/v2/remoteServices?serviceName=``,
  ``/api/v2/traces?...``, ``/api/v2/trace/{traceId}``, ``/api/v2/traceMany?traceIds=``.

Errors are plain text, as Zipkin's own server answers them.

The sidecars reach the collector where they reach xDS: at the gateway of their task's network,
on the control port's number (:meth:`Collector.reach`: a listener there with ``POST
/api/v2/spans`` only, started once per address, when the control port does not listen there
already). Reads are not served to the tasks' networks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Gauge

from dockyard import listeners
from mesh.telemetry.traces import BadQuery, BadSpans, TraceStore, parse_spans, query_of

__all__ = ["Collector", "ExternalCollector", "read_limited"]

log = logging.getLogger("dockyard.mesh.traces")

BASE = "/api/v2"
_TRACE_ID = re.compile(r"^([0-9a-fA-F]{16}|[0-9a-fA-F]{32})$")
_ANY = ("0.0.0.0", "::", "")
# Zipkin's other encodings, not taken here; any other type is read as JSON (curl -d sends a form type)
_OTHER_ENCODINGS = ("application/x-protobuf", "application/protobuf", "application/x-thrift")


SPANS = Counter("dockyard_trace_spans", "Spans POSTed to the collector, by outcome (stored, duplicate, "
                "evicted: dropped later by a bound of the store)", ["outcome"])
REFUSED = Counter("dockyard_trace_posts_refused", "POST /api/v2/spans bodies refused, by HTTP status",
                  ["status"])
STORED = Gauge("dockyard_trace_store_spans", "Spans in the collector's store now")
STORED_BYTES = Gauge("dockyard_trace_store_bytes", "Bytes of span JSON in the collector's store now")


class TooLarge(Exception):
    """The body passed its limit."""


async def read_limited(request: web.BaseRequest, limit: int) -> bytes:
    """The request body, read in chunks; :class:`TooLarge` once it passes ``limit`` bytes (a
    ``Content-Length`` over it before anything is read)."""
    if request.content_length is not None and request.content_length > limit:
        raise TooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise TooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _text(status: int, message: str, close: bool = False) -> web.Response:
    response = web.Response(status=status, text=message + "\n")
    if close:
        response.force_close()  # the rest of the body is not read: the connection ends here
    return response


def _json(value: Any) -> web.Response:
    return web.Response(body=json.dumps(value, separators=(",", ":")).encode(),
                        content_type="application/json")


class Collector:
    """Dockyard's own Zipkin collector: the store, its routes, and the sidecars' listeners.

    ``port`` tells the control port's number (known once it listens), ``host`` what it
    listens on; ``limits`` bound the sidecars' listeners like the platform's own."""

    def __init__(self, store: TraceStore, max_body: int, host: str = "127.0.0.1",
                 port: Callable[[], int] = lambda: 0, limits: listeners.Limits | None = None) -> None:
        self.store = store
        self.max_body = max_body
        self.host = host
        self.port = port
        self.limits = limits or listeners.Limits()
        self.refused = 0  # bodies answered 4xx
        self._runners: dict[str, web.AppRunner] = {}
        self._lock = asyncio.Lock()
        STORED.set_function(lambda: store.span_count)
        STORED_BYTES.set_function(lambda: store.byte_count)

    # -- routes --------------------------------------------------------------------------
    def add_routes(self, router: web.UrlDispatcher, reads: bool = True) -> None:
        router.add_post(f"{BASE}/spans", self.post_spans)
        if not reads:
            return
        router.add_get(f"{BASE}/spans", self.get_span_names)
        router.add_get(f"{BASE}/services", self.get_services)
        router.add_get(f"{BASE}/remoteServices", self.get_remote_services)
        router.add_get(f"{BASE}/traces", self.get_traces)
        router.add_get(f"{BASE}/trace/{{trace_id}}", self.get_trace)
        router.add_get(f"{BASE}/traceMany", self.get_trace_many)

    def _refuse(self, status: int, message: str, close: bool = False) -> web.Response:
        self.refused += 1
        REFUSED.labels(str(status)).inc()
        return _text(status, message, close)

    async def post_spans(self, request: web.Request) -> web.StreamResponse:
        kind = (request.content_type or "").lower()
        if kind in _OTHER_ENCODINGS:
            return self._refuse(415, f"unsupported Content-Type {kind}: send application/json "
                                "(Zipkin v2 JSON)", close=True)
        try:
            body = await read_limited(request, self.max_body)
        except TooLarge:
            return self._refuse(413, f"the body is over {self.max_body} bytes", close=True)
        except web.RequestPayloadError as e:  # a broken chunked or gzip body
            return self._refuse(400, f"the body could not be read: {e}", close=True)
        try:
            spans = parse_spans(body)
        except BadSpans as e:
            return self._refuse(400, str(e))
        evicted = self.store.evicted
        stored = self.store.add(spans)
        SPANS.labels("stored").inc(stored)
        if stored < len(spans):
            SPANS.labels("duplicate").inc(len(spans) - stored)
        if self.store.evicted > evicted:
            SPANS.labels("evicted").inc(self.store.evicted - evicted)
        return web.Response(status=202)

    async def get_services(self, request: web.Request) -> web.Response:
        return _json(self.store.services())

    def _service(self, request: web.Request) -> str | None:
        service = request.query.get("serviceName", "")
        return service or None

    async def get_span_names(self, request: web.Request) -> web.Response:
        service = self._service(request)
        if service is None:
            return _text(400, "serviceName is required")
        return _json(self.store.span_names(service))

    async def get_remote_services(self, request: web.Request) -> web.Response:
        service = self._service(request)
        if service is None:
            return _text(400, "serviceName is required")
        return _json(self.store.remote_services(service))

    async def get_traces(self, request: web.Request) -> web.Response:
        try:
            query = query_of(request.query)
        except BadQuery as e:
            return _text(400, str(e))
        return _json(self.store.traces(query))

    async def get_trace(self, request: web.Request) -> web.Response:
        trace_id = request.match_info["trace_id"]
        if not _TRACE_ID.match(trace_id):
            return _text(400, f"{trace_id[:64]!r} is not a trace id (16 or 32 hex characters)")
        spans = self.store.trace(trace_id)
        if spans is None:
            return _text(404, f"trace {trace_id.lower()} not found")
        return _json(spans)

    async def get_trace_many(self, request: web.Request) -> web.Response:
        ids = [i for i in request.query.get("traceIds", "").split(",") if i]
        if not ids or len(ids) > 100 or not all(_TRACE_ID.match(i) for i in ids):
            return _text(400, "traceIds must be 1 to 100 comma-separated trace ids")
        return _json([spans for i in ids if (spans := self.store.trace(i)) is not None])

    # -- where the sidecars send -----------------------------------------------------------
    def collector(self, address: str) -> tuple[str, int] | None:
        """Where a sidecar that reaches xDS at ``address`` sends its spans (None before the
        control port's number is known)."""
        port = self.port()
        return (address, port) if port else None

    async def reach(self, address: str) -> None:
        """Make ``POST /api/v2/spans`` answer on ``address``:<control port> (idempotent): a
        listener of its own unless the control port already listens there."""
        if self.host in _ANY or address == self.host or not self.port():
            return
        async with self._lock:
            if address in self._runners:
                return
            app = web.Application()
            self.add_routes(app.router, reads=False)
            runner = listeners.GuardedRunner(app, name="traces", limits=self.limits, access_log=None,
                                             handle_signals=False)
            await runner.setup()
            try:
                await web.TCPSite(runner, address, self.port()).start()
            except OSError:
                await runner.cleanup()
                raise
            self._runners[address] = runner
            log.info("trace collector served", extra={"address": address, "port": self.port()})

    async def stop(self) -> None:
        for runner in self._runners.values():
            await runner.cleanup()
        self._runners.clear()


class ExternalCollector:
    """Spans go to a Zipkin (or Jaeger's Zipkin endpoint) elsewhere: every sidecar's
    bootstrap names ``host:port``; nothing is served here."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def collector(self, address: str) -> tuple[str, int] | None:
        return self.host, self.port

    async def reach(self, address: str) -> None:
        return None
