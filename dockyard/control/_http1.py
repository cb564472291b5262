"""A lean HTTP/1.1 server: an asyncio ``Protocol`` around ``httptools`` (llhttp), for the
control workers (``dockyard.control.workers``).

The control workers answer small JSON requests one after another on keep-alive connections,
where aiohttp's request and response objects, router and stream machinery cost most of their
time. This server does only what they need, and nothing about AWS:

- HTTP/1.0 and 1.1, keep-alive as the request asks (``Connection``, the version); pipelining:
  a connection's requests are answered one at a time, in the order they came; reading pauses
  while more than ``_PIPELINE_MAX`` wait, and a request arriving while ``_PIPELINE_LIMIT``
  wait (one read can hold thousands of small ones) is refused with 503 and the connection
  closes after the answers before it.
- Request bodies by ``Content-Length`` or chunked (llhttp decodes them), whole, in memory, at
  most ``max_body`` bytes. A larger one is answered 413 as soon as it is known (a declared
  length at once), is not buffered, and the connection closes once the body has been read
  and discarded (or after ``_LINGER`` seconds), so the client gets to read the 413.
  ``Expect: 100-continue`` is answered when the connection is idle.
- Framing is refused, never guessed (request smuggling): llhttp refuses ``Content-Length``
  with ``Transfer-Encoding``, a repeated or non-numeric ``Content-Length``, obsolete line
  folding, bare LF or CR, whitespace before a colon, bad chunk sizes; this server also
  refuses a ``Transfer-Encoding`` other than exactly ``chunked``, any in HTTP/1.0, an HTTP/1.1
  request without exactly one ``Host``, and versions other than 1.0 and 1.1. Each gets 400
  and the connection closes.
- Limits: a target over ``_MAX_TARGET`` bytes gets 414; a header line over ``_MAX_FIELD``,
  more than ``_MAX_HEADERS`` headers or a head over ``_MAX_HEAD`` bytes 431 (counted on the
  raw bytes too, since httptools buffers a header until it ends); chunk framing (sizes,
  extensions, trailers) over ``_MAX_FRAMING`` bytes plus the body's own size 413. An
  ``Upgrade`` request gets its answer; the connection then closes.
- Slow clients (swept every ``Server.tick`` seconds): a request head must arrive whole within
  ``header_timeout`` seconds of its first byte (a new connection's first within as long of
  the accept), a body must make progress every ``body_timeout`` seconds, and a connection
  idle after an answer closes after ``keepalive_timeout``, and one whose client reads none of
  an answer for ``body_timeout`` (writing paused that long) is closed too. A
  client's half-close gets the answers to what it sent whole, then the connection closes.
- At most ``max_connections`` connections: one more gets 503 at once and is closed.

The application is one coroutine, ``handler(request, connection)``, run in a Task, or at
once from the event loop's callback when ``eager(request)`` says it may be (see
:meth:`Connection._start`). It answers through the connection: :meth:`Connection.respond`
(a whole body) or :meth:`Connection.start`, :meth:`Connection.write` and
:meth:`Connection.finish` (a streamed one). Error answers the server makes itself (400, 413,
431, 500 when the handler fails) come from ``error(status, message)``, which returns the
content type and body.

Why this module is longer than 500 lines: it is one state machine. The ``Protocol`` and its
``Connection`` s share each connection's parser, pipeline queue, timers and paused-writing
state, and the rules above (framing, limits, timeouts, pipelining) are each a few lines in
the llhttp callbacks and the write path that have to see all of that state at once. Split,
the pieces would reach into one another's private attributes; kept whole, it is private to
``dockyard.control``, has one small public surface (``Server``, ``Connection``, ``Request``)
and is tested as one (``tests/unit/dockyard/test_http1_hardening.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from email.utils import formatdate
from http import HTTPStatus
from typing import Any, Protocol

import httptools

__all__ = ["Connection", "Request", "Server"]

log = logging.getLogger(__name__)

_PIPELINE_MAX = 16  # requests waiting on one connection before reading pauses
_PIPELINE_LIMIT = 64  # requests waiting on one connection before the next is refused
_MAX_HEAD = 64 * 1024  # bytes of request line and headers
_MAX_TARGET = 8 * 1024  # bytes of the request target (as aiohttp's max_line_size)
_MAX_FIELD = 8 * 1024  # bytes of one header's name and value (as aiohttp's max_field_size)
_MAX_HEADERS = 100  # header lines in one request
_MAX_FRAMING = 64 * 1024  # bytes of chunk framing beyond the body's own size
_IDLE, _HEAD, _BODY = 0, 1, 2  # where a connection's reading is
_LINGER = 10.0  # seconds a refused request's body may take to arrive before the connection closes
_REASONS = {s.value: s.phrase for s in HTTPStatus}
_NO_BODY = {204, 304}

Handler = Callable[["Request", "Connection"], Awaitable[None]]
ErrorBody = Callable[[int, str], tuple[str, bytes]]


class Balance(Protocol):
    """Where a server that shares its port with others (SO_REUSEPORT) learns whether it holds
    more than its share of the keep-alive connections (see ``Server``)."""

    def publish(self, count: int) -> None:
        """This server now holds ``count`` connections (not counting those on their way out)."""

    def over_share(self, count: int) -> bool:
        """Whether ``count`` connections are more than this server's share."""


class Request:
    """One request, read whole. ``headers`` is keyed by lower-case names (a repeated header
    keeps its last value); ``raw_headers`` keeps every header as sent."""

    __slots__ = ("body", "headers", "keep_alive", "method", "path", "query", "raw_headers", "target",
                 "version")

    def __init__(
        self, method: str, target: str, raw_headers: list[tuple[str, str]], headers: dict[str, str],
        body: bytes, version: str, keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target  # path and query, as sent
        self.path, _, self.query = target.partition("?")
        self.raw_headers = raw_headers
        self.headers = headers
        self.body = body
        self.version = version
        self.keep_alive = keep_alive


class _Refusal:
    """A queued answer the server makes itself, after which the connection closes."""

    __slots__ = ("message", "status")

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message


class _Refuse(Exception):
    """Raised in a parser callback: stop parsing, answer ``status``, close."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Server:
    """Listens on a port and answers each request with ``handler``.

    With a ``balance``, a server holding more than its share of the connections answers the
    next request on an otherwise idle one with ``Connection: close`` and closes it; the client
    reconnects and the kernel places the new connection afresh. SO_REUSEPORT places
    connections by a hash of their addresses, which for a few dozen long-lived ones is often
    uneven (22 and 42 of 64 happened), and the worker holding more then answers each of them
    less often."""

    def __init__(
        self, handler: Handler, error: ErrorBody, max_body: int, keepalive_timeout: float = 75.0,
        eager: Callable[[Request], bool] = lambda request: False, balance: Balance | None = None,
        header_timeout: float = 10.0, body_timeout: float = 30.0, max_connections: int = 10_000,
    ) -> None:
        self.handler = handler
        self.eager = eager
        self.balance = balance
        self.leaving = 0  # connections closing to rebalance
        self._asked = 0
        self.error = error
        self.max_body = max_body
        self.keepalive_timeout = keepalive_timeout
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.max_connections = max_connections
        self.tick = min(1.0, header_timeout / 4, body_timeout / 4, keepalive_timeout / 4)
        self.refused_connections = 0
        self.connections: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task | None = None
        self._date = b""
        self._date_at = 0

    def count_changed(self) -> None:
        if self.balance is not None:
            self.balance.publish(len(self.connections) - self.leaving)

    def should_shed(self) -> bool:
        """Whether to close a connection after its answer, to even out the workers' shares."""
        self._asked += 1
        if self.balance is None or self._asked & 7:  # every 8th answer is often enough
            return False
        if not self.balance.over_share(len(self.connections) - self.leaving):
            return False
        self.leaving += 1
        self.count_changed()
        return True

    def date(self) -> bytes:
        """The ``Date`` header line, formatted once a second."""
        now = int(time.time())
        if now != self._date_at:
            self._date_at = now
            self._date = b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._date

    async def start(self, host: str, port: int, reuse_port: bool = False) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: Connection(self), host, port, reuse_port=reuse_port, backlog=1024
        )
        self._sweeper = asyncio.create_task(self._sweep())

    async def close(self) -> None:
        """Stop listening and close every connection (requests in progress are cancelled)."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self._server is not None:
            self._server.close()
        for conn in list(self.connections):
            conn.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.tick)
            now = loop.time()
            for conn in list(self.connections):
                reason = conn.expired(now)
                if reason:
                    log.debug("closing a slow or idle connection", extra={"reason": reason})
                    conn.close(abort=reason == "write timeout")


class Connection(asyncio.Protocol):
    """One client connection: parses what arrives, answers requests in order."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._loop = asyncio.get_running_loop()
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[Request | _Refusal] = deque()
        self._busy = False  # answering (the queue is being worked through)
        self._task: asyncio.Task | None = None  # the answering, once it had to wait
        self._url: list[bytes] = []
        self._raw: list[tuple[bytes, bytes]] = []  # headers as they come
        self._headers: list[tuple[str, str]] = []
        self._lower: dict[str, str] = {}  # the same, by lower-case name
        self._head_size = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._refused = False  # the message being read is refused (too large): discard its body
        self._discard = False  # parse nothing more: the connection closes after its answers
        self._closing = False  # close once the answer being written is out
        self._reading_paused = False
        self._shed = False  # closing after this answer to rebalance
        self._writable: asyncio.Future | None = None  # set while the transport asks us to wait
        self._linger: asyncio.TimerHandle | None = None
        # the answer in progress
        self._head_only = False
        self._keep_alive = True
        self._version = "1.1"
        self._chunked = False
        self._started = False
        self.last_read = self._loop.time()
        self._state = _IDLE
        self._served = False  # a request was read whole on this connection
        self._head_since = self.last_read  # the first byte of the head being read (or the accept)
        self._answered_at = self.last_read
        self._headers_seen = 0
        self._hosts = 0
        self._version_read = "1.1"
        self._fed = 0  # raw bytes fed in the current phase (head, or body)
        self._refusal_queued = False
        self._write_paused_at = 0.0
        self.sent = 0  # bytes written on this connection, heads and framing included (access log)

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        server = self._server
        if len(server.connections) >= server.max_connections:
            server.refused_connections += 1
            if server.refused_connections % 1000 == 1:
                log.warning("connection limit reached: refusing connections",
                            extra={"limit": server.max_connections, "refused": server.refused_connections})
            self._transport = None
            self._discard = True
            message = f"Too many connections (at most {server.max_connections}); try again later."
            content_type, body = server.error(503, message)
            transport.write(  # type: ignore[attr-defined]
                f"HTTP/1.1 503 Service Unavailable\r\nContent-Type: {content_type}\r\nContent-Length: "
                f"{len(body)}\r\nConnection: close\r\nRetry-After: 1\r\n\r\n".encode("latin-1") + body
            )
            transport.close()
            return
        server.connections.add(self)
        self._server.count_changed()

    def connection_lost(self, exc: Exception | None) -> None:
        if self not in self._server.connections:
            return  # refused at connection_made
        self._server.connections.discard(self)
        if self._shed:
            self._server.leaving -= 1
        self._server.count_changed()
        self._transport = None
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
        if self._linger is not None:
            self._linger.cancel()
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.last_read = self._loop.time()
        if self._discard and not self._refused:
            return
        try:
            # httptools keeps a header's bytes until the header ends, and llhttp reads chunk
            # extensions without end: bound what one phase may feed, raw, before its end.
            state = self._state
            self._fed += len(data)
            if state != _BODY and self._fed > _MAX_HEAD:
                room = len(data) - (self._fed - _MAX_HEAD)
                self._parser.feed_data(data[:room])
                if self._state != _BODY and not self._discard:
                    raise _Refuse(431, f"Request line and headers exceed {_MAX_HEAD} bytes.")
                data = data[room:]
            self._parser.feed_data(data)
            if self._state == _BODY and self._fed > self._body_size + _MAX_FRAMING and not self._discard:
                self._refuse(413, f"Chunk framing (sizes, extensions, trailers) exceeds {_MAX_FRAMING} "
                                  f"bytes.")
        except _Refuse as e:
            self._refuse(e.status, e.message)
        except httptools.HttpParserUpgrade:
            # Nothing here speaks another protocol after an Upgrade: answer the request as a
            # plain one (on_message_complete queued it), read nothing more, close after it.
            self._stop_reading()
        except httptools.HttpParserCallbackError as e:
            if isinstance(e.__context__, _Refuse):
                self._refuse(e.__context__.status, e.__context__.message)
            else:
                log.error("HTTP parser callback failed", exc_info=e.__context__)
                self._refuse(400, "Malformed HTTP request.")
        except httptools.HttpParserError as e:
            self._refuse(400, f"Malformed HTTP request: {e}.")

    def eof_received(self) -> bool:
        """The client sent all it will (a half-close): answer what came whole, then close."""
        if self.idle:
            return False  # the transport closes
        self._stop_reading()
        return True

    def expired(self, now: float) -> str:
        """Why this connection should be closed now (a timeout passed), or ''."""
        server = self._server
        if self._writable is not None and not self._writable.done():
            # the client does not read what it asked for
            return "write timeout" if now - self._write_paused_at > server.body_timeout else ""
        if self._reading_paused or self._linger is not None:
            return ""  # not the client's doing / closing soon anyway
        if self._state == _HEAD:
            return "header timeout" if now - self._head_since > server.header_timeout else ""
        if self._state == _BODY:
            return "body timeout" if now - self.last_read > server.body_timeout else ""
        if not self.idle:
            return ""
        if not self._served:
            return "header timeout" if now - self._head_since > server.header_timeout else ""
        since = max(self.last_read, self._answered_at)
        return "idle timeout" if now - since > server.keepalive_timeout else ""

    def pause_writing(self) -> None:
        if self._writable is None or self._writable.done():
            self._writable = self._loop.create_future()
            self._write_paused_at = self._loop.time()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    # -- httptools callbacks ------------------------------------------------------------
    # Once ``_discard`` is set, what follows the message being read (pipelined after a
    # refused one) is parsed only to be dropped.
    def on_message_begin(self) -> None:
        self._state = _HEAD
        if self._served:
            self._head_since = self.last_read
        self._headers_seen = 0
        self._hosts = 0
        self._url = []
        self._raw = []
        self._head_size = 0
        self._body = []
        self._body_size = 0

    def on_url(self, url: bytes) -> None:
        if self._discard:
            return
        self._head_size += len(url)
        if self._head_size > _MAX_TARGET:
            raise _Refuse(414, f"Request target exceeds {_MAX_TARGET} bytes.")
        self._url.append(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._discard:
            return
        if self._state == _BODY:
            return  # a trailer: read, counted as framing, ignored
        size = len(name) + len(value) + 4
        self._head_size += size
        self._headers_seen += 1
        if size > _MAX_FIELD:
            raise _Refuse(431, f"A header line exceeds {_MAX_FIELD} bytes.")
        if self._headers_seen > _MAX_HEADERS:
            raise _Refuse(431, f"More than {_MAX_HEADERS} header lines.")
        if self._head_size > _MAX_HEAD:
            raise _Refuse(431, f"Request line and headers exceed {_MAX_HEAD} bytes.")
        if len(name) == 4 and name.lower() == b"host":
            self._hosts += 1
        self._raw.append((name, value))

    def on_headers_complete(self) -> None:
        if self._discard:
            return
        self._state = _BODY
        self._fed = 0
        self._headers = headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._raw]
        self._lower = lower = {k.lower(): v for k, v in headers}
        hosts = self._hosts
        self._version_read = version = self._parser.get_http_version()
        if version not in ("1.1", "1.0"):
            raise _Refuse(400, f"HTTP version {version[:10]!r} is not served (1.0 and 1.1 are).")
        if hosts != 1 and (version == "1.1" or hosts):
            raise _Refuse(400, "A request must carry exactly one Host header.")
        coding = lower.get("transfer-encoding")
        if coding is not None and (version == "1.0" or coding.lower() != "chunked"):
            raise _Refuse(400, "Transfer-Encoding other than chunked (or in HTTP/1.0) is not accepted.")
        length = lower.get("content-length")
        if length is not None and int(length) > self._server.max_body:
            self._refuse_body(f"Request body of {int(length)} bytes exceeds the {self._server.max_body} "
                              f"byte limit.")
            return
        expect = lower.get("expect")
        if expect and expect.lower() == "100-continue" and self.idle and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._discard:
            return
        self._body_size += len(body)
        if self._body_size > self._server.max_body:
            self._body = []
            self._refuse_body(f"Request body exceeds the {self._server.max_body} byte limit.")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._state = _IDLE
        self._served = True
        self._fed = 0
        if self._refused:
            # The refusal is queued (or sent) already; the body is read: nothing more to wait for.
            self._refused = False
            if self._closing and self.idle:
                self.close()
            return
        if self._discard:
            return
        target = b"".join(self._url).decode("latin-1")
        if not target.startswith("/"):
            self._refuse(400, f"Request target must be a path (origin-form), not {target[:100]!r}.")
            return
        parser = self._parser
        request = Request(
            parser.get_method().decode("ascii"),
            target,
            self._headers,
            self._lower,
            b"".join(self._body) if len(self._body) != 1 else self._body[0],
            self._version_read,
            parser.should_keep_alive(),
        )
        self._body = []
        if len(self._queue) >= _PIPELINE_LIMIT:
            self._refuse(503, f"More than {_PIPELINE_LIMIT} pipelined requests wait on this connection; "
                              f"send the rest again on a new connection.")
            return
        self._enqueue(request)

    # -- answering ----------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """No request is being answered or waiting."""
        return not self._busy and not self._queue

    def close(self, abort: bool = False) -> None:
        """Close the connection once what is written is sent, or at once (``abort``)."""
        if self._transport is not None:
            if abort:
                self._transport.abort()
            else:
                self._transport.close()

    def respond(
        self, status: int, body: bytes, content_type: str, headers: Iterable[tuple[str, str]] = ()
    ) -> None:
        """Send a whole answer (only the head for a HEAD request)."""
        head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n"]
        head.extend(f"{k}: {v}\r\n" for k, v in headers)
        head.append(self._connection_header())
        out = "".join(head).encode("latin-1") + self._server.date() + b"\r\n"
        self._started = True
        if self._transport is not None:
            out = out if self._head_only else out + body
            self.sent += len(out)
            self._transport.write(out)

    def start(self, status: int, headers: Iterable[tuple[str, str]], length: int | None) -> None:
        """Send the head of a streamed answer; ``length`` None means unknown (chunked for
        HTTP/1.1, else the connection closes after the body). ``headers`` are sent as given:
        add ``Date`` yourself if you want one."""
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}\r\n"]
        lines.extend(f"{k}: {v}\r\n" for k, v in headers)
        self._chunked = False
        if length is not None:
            lines.append(f"Content-Length: {length}\r\n")
        elif not (self._head_only or status in _NO_BODY or status < 200):
            if self._version == "1.1":
                self._chunked = True
                lines.append("Transfer-Encoding: chunked\r\n")
            else:
                self._keep_alive = False
        lines.append(self._connection_header())
        lines.append("\r\n")
        self._started = True
        if self._transport is not None:
            head = "".join(lines).encode("latin-1")
            self.sent += len(head)
            self._transport.write(head)

    async def write(self, data: bytes) -> None:
        """Send part of a streamed body; waits while the client is slow to read."""
        if self._head_only or not data or self._transport is None:
            return
        if self._chunked:
            size = f"{len(data):x}\r\n".encode()
            self.sent += len(size) + len(data) + 2
            self._transport.writelines([size, data, b"\r\n"])
        else:
            self.sent += len(data)
            self._transport.write(data)
        await self._drain()

    def finish(self) -> None:
        """End a streamed body."""
        if self._chunked and not self._head_only and self._transport is not None:
            self.sent += 5
            self._transport.write(b"0\r\n\r\n")

    def _connection_header(self) -> str:
        if self._closing or not self._keep_alive:
            return "Connection: close\r\n"
        return "Connection: keep-alive\r\n" if self._version == "1.0" else ""

    async def _drain(self) -> None:
        if self._writable is not None and not self._writable.done():
            await self._writable

    def _enqueue(self, item: Request | _Refusal) -> None:
        self._queue.append(item)
        if len(self._queue) > _PIPELINE_MAX and not self._reading_paused and self._transport is not None:
            self._reading_paused = True
            self._transport.pause_reading()
        if not self._busy:
            self._busy = True
            self._start(self._run())

    def _stop_reading(self) -> None:
        self._discard = True
        if self.idle:
            self.close()
        elif not self._closing:
            self._closing = True  # the answers in progress say so
            self._queue.append(_Refusal(0, ""))  # a marker: close once what is queued is answered

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` after what is queued, then close; parse nothing more."""
        self._discard = True
        if self._refusal_queued:
            return
        self._refusal_queued = True
        self._enqueue(_Refusal(status, message))

    def _refuse_body(self, message: str) -> None:
        """The message being read is too large: answer 413 in its turn, discard its body, close
        once it has been read (so the client, still sending, can read the answer)."""
        self._refused = True
        self._discard = True
        self._refusal_queued = True
        self._enqueue(_Refusal(413, message))

    async def _run(self) -> None:
        try:
            while self._queue and self._transport is not None:
                item = self._queue.popleft()
                if self._reading_paused and len(self._queue) <= _PIPELINE_MAX // 2:
                    self._reading_paused = False
                    self._head_since = self.last_read = self._loop.time()  # the pause was ours
                    self._transport.resume_reading()
                if isinstance(item, _Refusal):
                    self._answer_refusal(item)
                    return
                if self._task is None and not self._server.eager(item):
                    await asyncio.sleep(0)  # from here on in a Task (see _start)
                await self._answer(item)
                if self._closing or not self._keep_alive:
                    self.close()
                    return
                await self._drain()
        finally:
            self._busy = False
            self._task = None
            self._answered_at = self._loop.time()

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` (``_run``) at once, as far as it gets without waiting, and make it a
        Task only when it has to wait: most answers never wait, and a Task per request costs
        more than the rest of answering one (uvloop on Python 3.11, which has no eager tasks).
        Only requests ``eager`` accepts are answered outside a Task: their handler must not
        need ``asyncio.current_task()`` (``asyncio.timeout``) before its first wait. The
        coroutine runs in a context of its own, as in a Task."""
        ctx = contextvars.copy_context()
        try:
            waiting = ctx.run(coro.send, None)
        except StopIteration:
            return
        self._task = ctx.run(self._loop.create_task, _resume(coro, waiting))

    def _answer_refusal(self, refusal: _Refusal) -> None:
        self._closing = True
        if refusal.status:
            self._head_only, self._keep_alive, self._version = False, False, "1.1"
            content_type, body = self._server.error(refusal.status, refusal.message)
            self.respond(refusal.status, body, content_type)
        if self._refused and self._transport is not None:
            # The refused body is still arriving: read it (discarding) so that closing does
            # not reset the connection under the client before it reads the answer.
            self._linger = self._loop.call_later(_LINGER, self.close)
        else:
            self.close()

    async def _answer(self, request: Request) -> None:
        self._head_only = request.method == "HEAD"
        self._keep_alive = request.keep_alive
        self._version = request.version
        self._chunked = False
        self._started = False
        if self._keep_alive and not self._shed and not self._queue and self._server.should_shed():
            self._shed = True
            self._keep_alive = False
        try:
            await self._server.handler(request, self)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("HTTP handler failed", extra={"method": request.method, "path": request.path})
            if self._started:
                self._keep_alive = False
            else:
                self._keep_alive = False
                content_type, body = self._server.error(500, "The request processing has failed.")
                with contextlib.suppress(Exception):
                    self.respond(500, body, content_type)
            return
        if not self._started:
            log.error("HTTP handler sent no answer", extra={"method": request.method, "path": request.path})
            self._keep_alive = False


async def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Carry on a coroutine that was stepped by hand (:meth:`Connection._start`) and yielded
    ``waiting``: a future it awaits, or None (a bare yield). A Task does the same stepping."""
    while True:
        try:
            if waiting is None:
                await asyncio.sleep(0)
            else:
                waiting._asyncio_future_blocking = False  # taken over, as a Task does
                await waiting
        except BaseException as e:
            if waiting is None or not waiting.done():
                # This Task was cancelled while the future went on: the coroutine gets it.
                try:
                    waiting = coro.throw(e)
                except StopIteration:
                    return
                continue
            # Otherwise the future failed: the coroutine reads that itself as it resumes.
        try:
            waiting = coro.send(None)
        except StopIteration:
            return
