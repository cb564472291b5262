"""The collector's Zipkin v2 API in process (aiohttp's test server): ingestion and its refusals,
the reads, and the sidecars' own listener."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from mesh.telemetry.traces import TraceStore
from mesh.telemetry.traces_api import Collector
from tests.support.server import free_port
from tests.unit.mesh.telemetry.test_traces import T0, TRACE, body, span

LIMIT = 64 * 1024


@pytest.fixture
async def client() -> AsyncIterator[tuple[TestClient, Collector]]:
    collector = Collector(TraceStore(clock=lambda: T0 / 1e6 + 1), LIMIT)
    app = web.Application()
    collector.add_routes(app.router)
    async with TestClient(TestServer(app)) as c:
        yield c, collector


async def test_posted_spans_are_accepted_and_read_back(client):
    c, _ = client
    server = span(kind="SERVER", shared=True, localEndpoint={"serviceName": "web"})
    r = await c.post("/api/v2/spans", data=body(span(), server), headers={"Content-Type": "application/json"})
    assert r.status == 202
    assert await (await c.get("/api/v2/services")).json() == ["front", "web"]
    assert await (await c.get("/api/v2/spans", params={"serviceName": "web"})).json() == ["web.shop.local"]
    traces = await (await c.get("/api/v2/traces", params={"serviceName": "web"})).json()
    assert [len(t) for t in traces] == [2]
    assert await (await c.get(f"/api/v2/trace/{TRACE.upper()}")).json() == [span(), server]
    many = await (await c.get("/api/v2/traceMany", params={"traceIds": f"{TRACE},{'0' * 16}"})).json()
    assert len(many) == 1


async def test_a_gzipped_and_a_chunked_body_are_read(client):
    c, collector = client
    r = await c.post("/api/v2/spans", data=gzip.compress(body(span())),
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status == 202

    async def chunks():
        raw = body(span(id="1" * 16))
        for i in range(0, len(raw), 7):
            yield raw[i:i + 7]

    r = await c.post("/api/v2/spans", data=chunks(), headers={"Content-Type": "application/json"})
    assert r.status == 202 and collector.store.span_count == 2


@pytest.mark.parametrize("data, status, says", [
    (b"not json at all", 400, "not JSON"),
    (b'[{"traceId": "zz", "id": "1"}]', 400, "spans[0]"),
    (b'{"spans": []}', 400, "spans: "),
])
async def test_garbage_is_400_and_the_next_good_post_works(client, data, status, says):
    c, collector = client
    r = await c.post("/api/v2/spans", data=data, headers={"Content-Type": "application/json"})
    assert r.status == status and (await r.text()).startswith(says)
    assert collector.store.span_count == 0
    r = await c.post("/api/v2/spans", data=body(span()), headers={"Content-Type": "application/json"})
    assert r.status == 202 and collector.store.span_count == 1


async def test_a_body_over_the_limit_is_413_before_or_while_reading(client):
    c, collector = client
    big = body(*[span(id=f"{i:016x}", tags={"pad": "x" * 1000}) for i in range(100)])
    assert len(big) > LIMIT
    r = await c.post("/api/v2/spans", data=big, headers={"Content-Type": "application/json"})
    assert r.status == 413  # its Content-Length says so

    async def stream():
        for i in range(0, len(big), 4096):
            yield big[i:i + 4096]

    r = await c.post("/api/v2/spans", data=stream(), headers={"Content-Type": "application/json"})
    assert r.status == 413 and collector.refused == 2  # chunked: refused once past the limit
    # a zip bomb is counted decompressed
    r = await c.post("/api/v2/spans", data=gzip.compress(b" " * (LIMIT * 4) + b"[]"),
                     headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status == 413
    assert collector.store.span_count == 0
    r = await c.post("/api/v2/spans", data=body(span()), headers={"Content-Type": "application/json"})
    assert r.status == 202


async def test_other_encodings_are_415(client):
    c, _ = client
    r = await c.post("/api/v2/spans", data=b"\x0a\x01", headers={"Content-Type": "application/x-protobuf"})
    assert r.status == 415


@pytest.mark.parametrize("path, status", [
    ("/api/v2/trace/xyz", 400),
    (f"/api/v2/trace/{'a' * 32}", 404),
    ("/api/v2/spans", 400),  # serviceName is required
    ("/api/v2/remoteServices", 400),
    ("/api/v2/traces?limit=-3", 400),
    ("/api/v2/traces?minDuration=soon", 400),
    ("/api/v2/traceMany", 400),
    ("/api/v2/traceMany?traceIds=nothex", 400),
])
async def test_bad_reads_are_4xx(client, path, status):
    c, _ = client
    assert (await c.get(path)).status == status


async def test_the_sidecars_listener_takes_posts_only():
    port = free_port()
    collector = Collector(TraceStore(), LIMIT, host="127.0.0.1", port=lambda: port)
    await collector.reach("127.0.0.1")  # the control port listens there already: nothing
    assert collector.collector("127.0.0.1") == ("127.0.0.1", port)
    await collector.reach("127.0.0.2")
    await collector.reach("127.0.0.2")  # once
    try:
        async with aiohttp.ClientSession() as s:
            url = f"http://127.0.0.2:{port}/api/v2"
            async with s.post(f"{url}/spans", data=body(span()),
                              headers={"Content-Type": "application/json"}) as r:
                assert r.status == 202
            async with s.get(f"{url}/services") as r:
                assert r.status in (404, 405)
        assert collector.store.span_count == 1
    finally:
        await collector.stop()
    assert json.dumps(collector.store.stats())


async def test_the_collector_counts_on_metrics(client):
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    c, collector = client
    stored, refused = value("dockyard_trace_spans_total", outcome="stored"), value(
        "dockyard_trace_posts_refused_total", status="400")
    await c.post("/api/v2/spans", data=body(span(), span()), headers={"Content-Type": "application/json"})
    await c.post("/api/v2/spans", data=b"nope", headers={"Content-Type": "application/json"})
    assert value("dockyard_trace_spans_total", outcome="stored") == stored + 1
    assert value("dockyard_trace_posts_refused_total", status="400") == refused + 1
    assert value("dockyard_trace_store_spans") == collector.store.span_count == 1
