"""The aiohttp listeners (the registry port, the control port without workers) with bounds on
slow and idle clients, a connection cap, and logs that neither shout nor leak.

aiohttp closes an idle keep-alive connection after ``keepalive_timeout`` but has no bound on a
request head or body that never ends, no connection cap, and logs every malformed request
(its bytes included, ``Authorization`` too) and every client disconnect with a traceback at
ERROR. :class:`GuardedRunner` is a ``web.AppRunner`` whose connections are
:class:`_Handler`\\ s, aiohttp's own ``RequestHandler`` with:

- **Header timeout**: a request head (request line and headers) must arrive whole within
  ``header_timeout`` seconds of its first byte; a new connection's first within as long of the
  accept (or ``keepalive_timeout`` if shorter: aiohttp's idle timer runs from the accept too).
  Past it, a connection that sent part of a head gets 408 and is closed; one that sent nothing
  is closed.
- **Idle keep-alive timeout**: after an answer, a connection that sends nothing for
  ``keepalive_timeout`` seconds is closed (aiohttp's own timer, given that value).
- **Body progress timeout**: while a handler reads a request body, a client that sends none
  of it for ``body_timeout`` seconds is disconnected (time while reading is paused because the
  handler is behind does not count); so is one that reads none of an answer for as long
  (writing paused that long).
- **Connection cap**: at most ``max_connections`` connections on the port; one more gets
  ``503`` with ``Retry-After: 1`` and the protocol's error body at once, and is closed. The
  refusals are logged at most once per 10 s (:class:`dockyard.limits.Throttle`), with a count.
- **Quiet, redacted errors**: a request aiohttp cannot parse gets 400 (or its 4xx) with the
  protocol's error body (``error_body``, never the request's bytes) and one info line naming
  the error's class; a client that goes away mid-request is one debug line; anything else
  that escapes the app is one ERROR line without the traceback (that goes to DEBUG). Every line
  passes through :mod:`dockyard.logs`, which redacts credentials.

The three timeouts are checked by one sweep per runner every ``Limits.tick`` seconds (at most
0.25 s, so a deadline is met within a tick, and connections that came together leave in small
groups; a sweep of 3,000 connections costs about 3 ms), not by a timer per connection; it closes expired
connections 16 at a time with 2 ms for the event loop between, so that thousands expiring
together do not hold up the others (3,000 take about 0.3 s more).

This relies on aiohttp 3.14's ``RequestHandler`` internals (``_waiter``, ``_messages``,
``_current_request``, ``_handle_request``); ``tests/unit/dockyard/test_listeners.py`` pins
the behaviour over real sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from dockyard.limits import Throttle

__all__ = [
    "ErrorBody", "GuardedRunner", "Limits", "connection_cap", "is_client_gone", "log_unexpected",
    "oci_error_body", "plain_error_body",
]

log = logging.getLogger("dockyard.http")

_CLOSE_BATCH = 16  # connections the sweep closes at once, then it lets the loop run for a moment
_CLOSE_PAUSE = 0.002

ErrorBody = Callable[[int, str], tuple[str, bytes]]
"""``(status, message) -> (content type, body)``: a listener's own answers in its protocol's shape."""


@dataclass(frozen=True)
class Limits:
    """Bounds of one listener (see the module docstring)."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keepalive_timeout: float = 75.0
    max_connections: int = 10_000

    @property
    def tick(self) -> float:
        shortest = min(self.header_timeout, self.body_timeout, self.keepalive_timeout)
        return max(0.01, min(0.25, shortest / 4))


def connection_cap(open_files: int, listeners: int = 2) -> int:
    """Connections one of ``listeners`` ports may hold given the process's open-file limit:
    room is kept for the store, the Docker socket, the DNS sockets and the process's own files."""
    return max(64, min(10_000, (open_files - 512) // max(1, listeners)))


def plain_error_body(status: int, message: str) -> tuple[str, bytes]:
    """A text answer, for a listener without a protocol of its own."""
    return "text/plain; charset=utf-8", f"{status} {message}\n".encode()


_OCI_CODES = {400: "UNSUPPORTED", 408: "UNAVAILABLE", 413: "SIZE_INVALID", 503: "UNAVAILABLE"}


def oci_error_body(status: int, message: str) -> tuple[str, bytes]:
    """The registry's shape: OCI error JSON (``UNAVAILABLE`` as Distribution names a 503)."""
    code = _OCI_CODES.get(status, "UNKNOWN" if status >= 500 else "UNSUPPORTED")
    return "application/json", json.dumps({"errors": [{"code": code, "message": message}]}).encode()


def log_unexpected(logger: logging.Logger, message: str, exc: BaseException, **extra: Any) -> None:
    """A last resort's log of an exception nobody expected: one ERROR line with its class, its
    message (200 characters) and where it was raised; the traceback only at DEBUG."""
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame is not None else ""
    logger.error(message, extra={**extra, "error": type(exc).__name__, "detail": str(exc)[:200], "at": where})
    logger.debug("traceback of the above", exc_info=exc)


def is_client_gone(exc: BaseException | None, request: web.BaseRequest | None = None) -> bool:
    """Whether ``exc`` says the client went away (or its connection is already closed)."""
    if isinstance(exc, ConnectionError | asyncio.IncompleteReadError):
        return True
    transport = request.transport if request is not None else None
    return request is not None and (transport is None or transport.is_closing())


def _head(status: int, content_type: str, body: bytes, extra: str = "") -> bytes:
    reason = HTTPStatus(status).phrase
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        f"Connection: close\r\n{extra}\r\n"
    ).encode("latin-1") + body


class _Handler(RequestHandler):
    """One connection: aiohttp's handler plus the bounds of the module docstring."""

    def __init__(self, manager: _Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._guard = manager
        self._accepted = False
        self._head_since: float | None = None  # the first byte of a head being read (or the accept)
        self._head_bytes = False  # part of a head has arrived
        self._progress_at = 0.0  # the last byte read, or reading resumed
        self._write_paused_at: float | None = None

    # -- connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        guard = self._guard
        if guard.active >= guard.limits.max_connections:
            guard.refused += 1
            if guard.throttle.allow():
                log.warning("connection limit reached: refusing connections", extra={
                    "listener": guard.name, "limit": guard.limits.max_connections, "refused": guard.refused,
                })
            content_type, body = guard.error_body(
                503, f"Too many connections (at most {guard.limits.max_connections}); try again later."
            )
            with contextlib.suppress(Exception):
                transport.write(_head(503, content_type, body, "Retry-After: 1\r\n"))  # type: ignore[attr-defined]
            transport.close()
            self._manager = None  # connection_lost then does nothing
            return
        self._accepted = True
        guard.active += 1
        guard.handlers.add(self)
        now = self._loop.time()
        self._head_since = self._progress_at = now
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._accepted:
            self._accepted = False
            self._guard.active -= 1
            self._guard.handlers.discard(self)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data:
            self._progress_at = self._loop.time()
        super().data_received(data)
        if self._messages or self._current_request is not None or self._request_in_progress:
            self._head_since = None  # a head arrived whole, or this is a body
            self._head_bytes = False
        elif data:
            self._head_bytes = True
            if self._head_since is None:
                self._head_since = self._progress_at

    def resume_reading(self, resume_parser: bool = True) -> None:
        self._progress_at = self._loop.time()  # paused time is the handler's, not the client's
        super().resume_reading(resume_parser)

    def pause_writing(self) -> None:
        self._write_paused_at = self._loop.time()
        super().pause_writing()

    def resume_writing(self) -> None:
        self._write_paused_at = None
        super().resume_writing()

    async def _handle_request(self, request: Any, start_time: Any, request_handler: Any) -> Any:
        self._head_since = None
        self._head_bytes = False
        return await super()._handle_request(request, start_time, request_handler)

    # -- the sweep -----------------------------------------------------------------------
    def expired(self, now: float) -> str:
        """Why this connection should close now (empty: it need not)."""
        limits = self._guard.limits
        waiting = self._waiter is not None and not self._waiter.done() and not self._messages
        if self._head_since is not None and waiting and now - self._head_since > limits.header_timeout:
            return "header timeout"
        request = self._current_request
        if (
            request is not None and not request.content.is_eof() and not self._reading_paused
            and not self._buffer_paused and now - self._progress_at > limits.body_timeout
        ):
            return "body timeout"
        if self._write_paused_at is not None and now - self._write_paused_at > limits.body_timeout:
            return "write timeout"
        return ""

    def expire(self, reason: str) -> None:
        log.info("closing a slow connection", extra={"listener": self._guard.name, "reason": reason})
        transport = self.transport
        if reason == "header timeout" and transport is not None and self._head_bytes:
            content_type, body = self._guard.error_body(408, "The request head did not arrive in time.")
            with contextlib.suppress(Exception):
                transport.write(_head(408, content_type, body))
        if reason == "write timeout" and transport is not None:
            transport.abort()
        self.force_close()

    # -- errors and logs -----------------------------------------------------------------
    def handle_error(
        self, request: Any, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status >= 500 and is_client_gone(exc, request):
            log.debug("client went away", extra={"listener": self._guard.name, "error": type(exc).__name__})
        elif status < 500:
            log.info("malformed HTTP request", extra={
                "listener": self._guard.name, "status": status, "error": type(exc).__name__ if exc else "",
            })
        else:
            self.log_exception("request failed", exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("The response is sent already; no error answer can follow.")
        text = "Malformed HTTP request." if status < 500 else "The request processing has failed."
        if status == 504:
            text = "The request timed out."
        content_type, body = self._guard.error_body(status, text)
        resp = web.Response(status=status, body=body, headers={"Content-Type": content_type})
        resp.force_close()
        return resp

    def log_exception(self, *args: Any, **kw: Any) -> None:
        exc = kw.get("exc_info")
        if isinstance(exc, BaseException):
            name = self._guard.name
            if is_client_gone(exc):
                log.debug("client went away", extra={"listener": name, "error": type(exc).__name__})
                return
            if isinstance(exc, RequestPayloadError | HttpProcessingError):  # reading the rest of a bad body
                log.info("malformed HTTP request body", extra={"listener": name, "error": type(exc).__name__})
                return
            log_unexpected(log, str(args[0]) if args else "unhandled exception", exc, listener=name)
            return
        log.error(str(args[0]) if args else "unhandled exception", extra={"listener": self._guard.name})


class _Server(web.Server):
    """aiohttp's Server making :class:`_Handler` connections, with the sweep that expires them."""

    def __init__(self, made: web.Server, name: str, limits: Limits, error_body: ErrorBody) -> None:
        super().__init__(
            made.request_handler, request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation, loop=made._loop, **made._kwargs,
        )
        self.name = name
        self.limits = limits
        self.error_body = error_body
        self.active = 0
        self.refused = 0
        self.throttle = Throttle(10.0)
        self.handlers: set[_Handler] = set()
        self._sweeper: asyncio.Task | None = None

    def __call__(self) -> _Handler:
        if self._sweeper is None:
            self._sweeper = self._loop.create_task(self._sweep())
        return _Handler(self, loop=self._loop, **self._kwargs)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self.limits.tick)
            now = self._loop.time()
            expired = [(h, reason) for h in list(self.handlers) if (reason := h.expired(now))]
            for i, (handler, reason) in enumerate(expired):
                handler.expire(reason)
                if i % _CLOSE_BATCH == _CLOSE_BATCH - 1:
                    # thousands expiring together (a flood's deadline) would hold the loop for
                    # a second: let other connections' events in between batches
                    await asyncio.sleep(_CLOSE_PAUSE)

    async def shutdown(self, timeout: float | None = None) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
        await super().shutdown(timeout)


class GuardedRunner(web.AppRunner):
    """A ``web.AppRunner`` whose connections have the bounds of ``limits`` (module docstring);
    ``name`` names the listener in the log, ``error_body`` shapes the listener's own answers."""

    def __init__(
        self, app: web.Application, *, name: str, limits: Limits, error_body: ErrorBody = plain_error_body,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self.name = name
        self.limits = limits
        self.error_body = error_body

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _Server(made, self.name, self.limits, self.error_body)

    @property
    def connections(self) -> int:
        """Connections the listener holds now."""
        server = self.server
        return server.active if isinstance(server, _Server) else 0
