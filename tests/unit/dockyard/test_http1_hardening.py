"""The control workers' HTTP/1.1 transport (``dockyard.control._http1``) against hostile and
slow clients, over real sockets in-process: request smuggling (framing is refused, never
guessed), header, target and body limits, slow-client timeouts, pipelining and connection
limits. Each refusal must come before the handler sees anything."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import pytest

from dockyard.control import _http1
from dockyard.control._http1 import Connection, Request, Server

MAX_BODY = 1024 * 1024


class App:
    """Echoes what it was asked; ``gate`` holds answers back (a slow handler)."""

    def __init__(self) -> None:
        self.seen: list[Request] = []
        self.gate: asyncio.Event | None = None

    async def __call__(self, request: Request, conn: Connection) -> None:
        self.seen.append(request)
        if self.gate is not None:
            await self.gate.wait()
        body = json.dumps({"path": request.path, "length": len(request.body),
                           "target": request.headers.get("x-target")}).encode()
        if request.path == "/big":
            body = b"x" * (64 * MAX_BODY)
        conn.respond(200, body, "application/json")


def error(status: int, message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"status": status, "message": message}).encode()


@pytest.fixture
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[App, Server, int]]:
    options = getattr(request, "param", {})
    app = App()
    server = Server(app, error, max_body=MAX_BODY, **options)
    await server.start("127.0.0.1", 0)
    assert server._server is not None
    port = server._server.sockets[0].getsockname()[1]
    try:
        yield app, server, port
    finally:
        await server.close()


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(*await asyncio.open_connection("127.0.0.1", port, limit=4 * MAX_BODY))

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read(self, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
        async with asyncio.timeout(timeout):
            line = await self.reader.readline()
            assert line, "closed without an answer"
            status = int(line.split()[1])
            headers = {}
            while (line := await self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
            return status, headers, body

    async def closed(self, timeout: float = 5.0) -> bool:
        """Whether the server closes the connection (within ``timeout``), reading past
        anything else it sends."""
        try:
            async with asyncio.timeout(timeout):
                while await self.reader.read(65536):
                    pass
                return True
        except TimeoutError:
            return False
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.writer.close()


GET = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
CHUNKED = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"

SMUGGLING = {
    # conflicting framing: refused, neither header is believed
    "length-then-chunked": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "chunked-then-length": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                           b"Content-Length: 5\r\n\r\n0\r\n\r\n",
    "two-equal-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
    "two-lengths": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    "length-list": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2, 2\r\n\r\n{}",
    "length-plus": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
    "length-negative": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    "length-empty": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: \r\n\r\n",
    "length-overflow": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999999\r\n\r\n",
    # transfer codings other than chunked, alone or around it
    "te-gzip": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}",
    "te-identity": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n{}",
    "te-gzip-chunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "te-chunked-gzip": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n{}",
    "te-xchunked": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n{}",
    "te-twice": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "te-in-http-1.0": b"POST / HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "space-before-colon": b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
    # line endings and folding
    "obs-fold-space": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n",
    "obs-fold-tab": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n\tc\r\n\r\n",
    "bare-lf": b"GET / HTTP/1.1\nHost: x\n\n",
    "bare-lf-in-headers": b"GET / HTTP/1.1\r\nHost: x\nX-A: b\r\n\r\n",
    "bare-lf-at-end": b"GET / HTTP/1.1\r\nHost: x\r\n\n",
    "bare-cr": b"GET / HTTP/1.1\rHost: x\r\n\r\n",
    "leading-space-on-first-header": b"GET / HTTP/1.1\r\n Host: x\r\n\r\n",
    # chunk framing
    "chunk-size-overflow": CHUNKED + b"FFFFFFFFFFFFFFFFFFFFFF\r\n",
    "chunk-size-not-hex": CHUNKED + b"zz\r\nab\r\n0\r\n\r\n",
    "chunk-size-0x": CHUNKED + b"0x2\r\nab\r\n0\r\n\r\n",
    "chunk-size-negative": CHUNKED + b"-2\r\nab\r\n0\r\n\r\n",
    "chunk-size-space": CHUNKED + b"2 \r\nab\r\n0\r\n\r\n",
    "chunk-bare-lf": CHUNKED + b"2\nab\n0\n\n",
    "chunk-data-longer-than-size": CHUNKED + b"2\r\nabcd\r\n0\r\n\r\n",
    # header bytes and the rest of the head
    "nul-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "control-in-value": b"GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n",
    "space-in-name": b"GET / HTTP/1.1\r\nHost: x\r\nX A: b\r\n\r\n",
    "no-host": b"GET / HTTP/1.1\r\n\r\n",
    "two-hosts": b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "http-0.9": b"GET /\r\n\r\n",
    "http-9.9": b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    "absolute-form": b"GET http://elsewhere/ HTTP/1.1\r\nHost: x\r\n\r\n",
    "lower-case-method": b"get / HTTP/1.1\r\nHost: x\r\n\r\n",
    "space-in-target": b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n",
}


@pytest.mark.parametrize("data", SMUGGLING.values(), ids=SMUGGLING.keys())
async def test_ambiguous_or_malformed_framing_gets_400_and_a_close_and_reaches_no_handler(served, data):
    app, _, port = served
    c = await Client.open(port)
    try:
        # A second request rides behind: it must not be answered either (no desync).
        await c.send(data + b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, _ = await c.read()
        assert (status, headers["connection"]) == (400, "close")
        assert await c.closed()
    finally:
        c.close()
    assert app.seen == []


async def test_a_request_after_a_well_framed_chunked_one_is_read_as_its_own(served):
    _app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(CHUNKED + b"2;ext=1\r\nab\r\n0\r\nX-Target: trailer\r\n\r\n"
                     + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
        # trailers are read and ignored
        assert json.loads((await c.read())[2]) == {"path": "/", "length": 2, "target": None}
        assert json.loads((await c.read())[2])["path"] == "/next"
    finally:
        c.close()


async def test_chunk_extensions_without_end_are_cut_off_with_413(served):
    app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(CHUNKED + b"2;" + b"a" * 200_000)  # never ends: llhttp alone would read on
        status, _, body = await c.read()
        assert status == 413 and b"framing" in body
        assert await c.closed()
    finally:
        c.close()
    assert app.seen == []


async def test_chunk_framing_as_large_as_the_body_is_fine(served):
    _app, _, port = served
    c = await Client.open(port)
    try:
        chunk = b"10;e=" + b"x" * 11 + b"\r\n" + b"a" * 16 + b"\r\n"
        await c.send(CHUNKED + chunk * 8000 + b"0\r\n\r\n")
        status, _, body = await c.read()
        assert (status, json.loads(body)["length"]) == (200, 128_000)
    finally:
        c.close()


@pytest.mark.parametrize("data, status", [
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 7000) for i in range(10))
     + b"\r\n", 431),
], ids=["target-over-8-KiB", "header-over-8-KiB", "101-headers", "head-over-64-KiB"])
async def test_heads_over_the_limits_are_refused(served, data, status):
    app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(data)
        assert (await c.read())[0] == status
        assert await c.closed()
    finally:
        c.close()
    assert app.seen == []


async def test_heads_just_within_the_limits_are_served(served):
    _app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(b"GET /" + b"a" * 8000 + b" HTTP/1.1\r\nHost: x\r\n"
                     + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 540) for i in range(99)) + b"\r\n")
        assert (await c.read())[0] == 200
    finally:
        c.close()


async def test_a_header_that_never_ends_is_refused_before_it_is_buffered(served):
    """httptools keeps a header value until the header ends; the raw bytes are counted."""
    _app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: ")
        for _ in range(10):
            await c.send(b"a" * 8000)  # 80 KB: over 64 KiB without a line end
        assert (await c.read())[0] == 431
        assert await c.closed()
    finally:
        c.close()


async def test_bodies_over_the_limit_get_413_declared_or_chunked_and_the_limit_itself_is_served(served):
    app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % MAX_BODY + b"a" * MAX_BODY)
        status, _, body = await c.read()
        assert (status, json.loads(body)["length"]) == (200, MAX_BODY)
        await c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_BODY + 1))
        assert (await c.read())[0] == 413  # at once, before the body
    finally:
        c.close()
    c = await Client.open(port)
    try:
        await c.send(CHUNKED + b"%x\r\n" % (MAX_BODY + 1) + b"a" * (MAX_BODY + 1) + b"\r\n0\r\n\r\n")
        assert (await c.read())[0] == 413
        assert await c.closed()
    finally:
        c.close()
    assert len(app.seen) == 1


FAST = {"header_timeout": 0.4, "body_timeout": 0.4, "keepalive_timeout": 1.2}


async def closes_after(c: Client, limit: float = 5.0) -> float:
    start = time.monotonic()
    assert await c.closed(limit), "still open"
    return time.monotonic() - start


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_a_head_sent_a_byte_at_a_time_is_cut_off_by_the_header_timeout(served):
    app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")
        start = time.monotonic()
        with pytest.raises((ConnectionError, BrokenPipeError)):
            for _ in range(40):  # slowloris: progress, but never a whole head
                await c.send(b"X")
                await asyncio.sleep(0.05)
        assert 0.3 < time.monotonic() - start < 1.2
    finally:
        c.close()
    assert app.seen == []


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_a_connection_that_sends_nothing_is_closed_by_the_header_timeout(served):
    _, server, port = served
    c = await Client.open(port)
    try:
        assert 0.3 < await closes_after(c) < 1.0
    finally:
        c.close()
    await asyncio.sleep(0.05)
    assert not server.connections


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_a_stalled_body_is_cut_off_and_a_slow_but_moving_one_is_not(served):
    _app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab")
        assert 0.3 < await closes_after(c) < 1.0
    finally:
        c.close()
    c = await Client.open(port)
    try:
        await c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        for _ in range(10):  # 1.5 s in all, a byte every 0.15 s
            await asyncio.sleep(0.15)
            await c.send(b"a")
        status, _, body = await c.read()
        assert (status, json.loads(body)["length"]) == (200, 10)
    finally:
        c.close()


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_an_idle_keep_alive_connection_closes_after_the_keepalive_timeout_not_before(served):
    _app, _, port = served
    c = await Client.open(port)
    try:
        await c.send(GET)
        assert (await c.read())[0] == 200
        assert 1.1 < await closes_after(c) < 2.0
    finally:
        c.close()


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_a_client_that_reads_none_of_its_answer_is_cut_off_by_the_body_timeout(served):
    _, server, port = served
    c = await Client.open(port)
    try:
        await c.send(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")  # 64 MiB, more than socket buffers hold
        start = time.monotonic()
        while server.connections and time.monotonic() - start < 5:
            await asyncio.sleep(0.05)
        assert not server.connections
        assert 0.3 < time.monotonic() - start < 2.0
    finally:
        c.close()


@pytest.mark.parametrize("served", [FAST], indirect=True)
async def test_an_answer_that_takes_longer_than_every_timeout_is_not_cut(served):
    app, _, port = served
    app.gate = asyncio.Event()
    c = await Client.open(port)
    try:
        await c.send(GET)
        await asyncio.sleep(1.5)
        app.gate.set()
        assert (await c.read())[0] == 200
    finally:
        c.close()


async def test_pipelined_requests_beyond_the_limit_get_503_after_the_answers_before_them(served):
    app, _, port = served
    app.gate = asyncio.Event()
    c = await Client.open(port)
    try:
        await c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(200)))  # one write
        await asyncio.sleep(0.2)
        app.gate.set()
        answers = []
        while len(answers) < 200:
            try:
                answers.append(await c.read())
            except (AssertionError, asyncio.IncompleteReadError):
                break
        statuses = [a[0] for a in answers]
        limit = _http1._PIPELINE_LIMIT
        assert statuses == [200] * (limit + 1) + [503]  # one answering, ``limit`` waiting
        assert [json.loads(a[2])["path"] for a in answers[:-1]] == [f"/{i}" for i in range(limit + 1)]
        assert await c.closed()
    finally:
        c.close()
    assert len(app.seen) == limit + 1


async def test_pipelined_requests_within_the_limit_are_all_answered_in_order(served):
    app, _, port = served
    app.gate = asyncio.Event()
    c = await Client.open(port)
    try:
        await c.send(b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(50)))
        await asyncio.sleep(0.1)
        app.gate.set()
        paths = [json.loads((await c.read())[2])["path"] for _ in range(50)]
        assert paths == [f"/{i}" for i in range(50)]
    finally:
        c.close()


@pytest.mark.parametrize("served", [{"max_connections": 3}], indirect=True)
async def test_connections_over_the_cap_are_refused_with_503_and_served_again_below_it(served):
    _app, server, port = served
    held = [await Client.open(port) for _ in range(3)]
    try:
        for c in held:
            await c.send(GET)
            assert (await c.read())[0] == 200
        extra = await Client.open(port)
        status, headers, body = await extra.read()
        assert (status, headers["connection"]) == (503, "close") and b"Too many connections" in body
        assert await extra.closed()
        extra.close()
        held.pop().close()
        await asyncio.sleep(0.1)
        again = await Client.open(port)
        await again.send(GET)
        assert (await again.read())[0] == 200
        again.close()
    finally:
        for c in held:
            c.close()
    assert server.refused_connections == 1


@pytest.mark.parametrize("served", [{"header_timeout": 1.5, "body_timeout": 1.5, "keepalive_timeout": 1.5}],
                         indirect=True)
async def test_real_clients_are_served_among_idle_and_half_sent_connections_which_close_on_time(served):
    _, server, port = served
    held = []
    for n in range(1000):  # 500 silent, 500 with half a head
        c = await Client.open(port)
        if n % 2:
            await c.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Half: ")
        held.append(c)
    opened = time.monotonic()
    latencies = []
    for _ in range(5):
        c = await Client.open(port)
        start = time.monotonic()
        await c.send(GET)
        assert (await c.read())[0] == 200
        latencies.append(time.monotonic() - start)
        c.close()
    assert sorted(latencies)[2] < 0.1, latencies
    await asyncio.sleep(max(0.0, opened + 1.5 + 2 * server.tick + 0.5 - time.monotonic()))
    assert len(server.connections) == 0
    still_open = [c for c in held if not await c.closed(0.01)]
    assert not still_open, len(still_open)
    for c in held:
        c.close()
