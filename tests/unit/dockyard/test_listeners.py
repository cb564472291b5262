"""The aiohttp listeners' bounds over real sockets (dockyard.listeners): slow heads, stalled
bodies and idle connections are closed on time, the cap refuses with 503, and malformed
requests, disconnects and failures log one quiet line without the request's bytes."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from dockyard import listeners
from dockyard.logs import JsonFormatter

SECRET = "aHVudGVyMjpjb3JyZWN0LWhvcnNl"  # base64 of a password


async def _echo(request: web.Request) -> web.Response:
    return web.Response(body=await request.read())


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _boom(request: web.Request) -> web.Response:
    raise RuntimeError("secret internal detail")


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, listeners.GuardedRunner]]:
    app = web.Application()
    app.router.add_get("/", _ok)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/boom", _boom)
    limits = listeners.Limits(header_timeout=0.4, body_timeout=0.4, keepalive_timeout=0.8, max_connections=20)
    runner = listeners.GuardedRunner(app, name="test", limits=limits, error_body=listeners.oci_error_body)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield port, runner
    await runner.cleanup()


async def _open(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _closed_after(reader: asyncio.StreamReader, limit: float) -> tuple[float, bytes]:
    """Seconds until the server closes the connection, and what it sent before."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    return time.monotonic() - started, data


async def _get(port: int) -> bytes:
    reader, writer = await _open(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 2)
    writer.close()
    return data


async def test_a_head_that_never_ends_gets_408_after_the_header_timeout(server):
    port, _ = server
    reader, writer = await _open(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    for _ in range(2):  # trickling bytes does not extend it
        await asyncio.sleep(0.15)
        writer.write(b"a")
    took, data = await _closed_after(reader, 3)
    assert data.startswith(b"HTTP/1.1 408 ")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["errors"][0]["code"] == "UNAVAILABLE"
    assert took < 1.0


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(server):
    port, runner = server
    reader, _ = await _open(port)
    took, data = await _closed_after(reader, 3)
    assert data == b"" and 0.3 < took < 1.2
    await asyncio.sleep(0.05)
    assert runner.connections == 0


async def test_an_idle_keep_alive_connection_is_closed_after_the_keepalive_timeout(server):
    port, _ = server
    reader, writer = await _open(port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\nok"), 2)
    assert head.startswith(b"HTTP/1.1 200")
    took, rest = await _closed_after(reader, 3)
    assert rest == b""
    assert 0.6 < took < 2.0  # the keep-alive timeout (0.8 s), not the header one


async def test_a_body_that_stops_arriving_is_cut_off_after_the_body_timeout(server, caplog):
    port, _ = server
    reader, writer = await _open(port)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789")
    took, _ = await _closed_after(reader, 3)
    assert took < 1.5
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_a_connection_over_the_cap_gets_503_with_retry_after(server):
    port, runner = server
    held = [await _open(port) for _ in range(20)]
    await asyncio.sleep(0.05)
    assert runner.connections == 20
    reader, _ = await _open(port)
    data = await asyncio.wait_for(reader.read(), 2)
    assert data.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1" in data
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["errors"][0]["code"] == "UNAVAILABLE"
    for _, w in held:
        w.close()
    await asyncio.sleep(0.1)
    assert (await _get(port)).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("raw", [
    f"GET / HTTP/1.1\nHost: x\nAuthorization: Basic {SECRET}\n\n".encode(),  # bare LF
    f"GET / HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {SECRET}\r\n X\r\n\r\n".encode(),  # obs-fold
    f"GET /\x00 HTTP/1.1\r\nAuthorization: Basic {SECRET}\r\n\r\n".encode(),
    f"POST /echo HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {SECRET}\r\nTransfer-Encoding: chunked\r\n\r\n"
    "zz\r\n".encode(),
])
async def test_a_malformed_request_is_answered_400_and_logged_without_its_bytes(server, caplog, raw):
    caplog.set_level(logging.DEBUG)
    port, _ = server
    reader, writer = await _open(port)
    writer.write(raw)
    data = await asyncio.wait_for(reader.read(), 2)
    assert data.split(b" ", 2)[1] == b"400"
    assert SECRET.encode() not in data
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [line for line in lines if SECRET in line], lines
    assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.INFO]


async def test_clients_that_go_away_mid_request_log_no_error(server, caplog):
    port, _ = server
    for _ in range(20):
        _, writer = await _open(port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000)
        await writer.drain()
        writer.transport.abort()
    await asyncio.sleep(0.2)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (await _get(port)).startswith(b"HTTP/1.1 200")


async def test_a_failing_handler_is_one_error_line_without_a_traceback(server, caplog):
    port, _ = server
    reader, writer = await _open(port)
    writer.write(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    data = await asyncio.wait_for(reader.read(), 2)
    assert data.startswith(b"HTTP/1.1 500 ")
    assert b"secret internal detail" not in data
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert errors[0].error == "RuntimeError"  # type: ignore[attr-defined]


async def test_real_clients_are_served_while_the_port_holds_idle_and_half_sent_connections(server):
    port, runner = server
    held = [await _open(port) for _ in range(9)]
    for _, w in held[:5]:
        w.write(b"GET / HTTP/1.1\r\nHo")
    for _ in range(5):
        started = time.monotonic()
        assert (await _get(port)).startswith(b"HTTP/1.1 200")
        assert time.monotonic() - started < 0.1
    await asyncio.sleep(1.0)
    assert runner.connections == 0


def test_the_connection_cap_follows_the_open_file_limit():
    assert listeners.connection_cap(20_000) == 9_744
    assert listeners.connection_cap(1_024) == 256
    assert listeners.connection_cap(100) == 64
    assert listeners.connection_cap(10**7) == 10_000
