"""The tracer the snapshots carry, on a real Envoy (no Docker): with the collector cluster in its
bootstrap the sidecar ACKs it, sends Zipkin v2 JSON that the collector takes, and propagates B3
headers to the upstream; without that cluster (a sidecar started before tracing) it NACKs the
listener, which is why the controller leaves the tracer out for such a node."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Rule, Service, Target
from mesh.snapshot import LISTENER, compute
from mesh.telemetry.traces import TraceStore
from mesh.telemetry.traces_api import Collector
from mesh.telemetry.traces_envoy import Tracing
from tests.support.envoy import NODE, Mesh, call, eventually, upstream
from tests.support.server import free_port


def config(port: int) -> MeshConfig:
    return MeshConfig(services=(Service("web"),), routes=(Route("web.shop.local", port, rules=(
        Rule((Target("web", 1),)),)),), clients=(Client(NODE, ("web.shop.local",)),))


async def test_a_sidecar_with_the_collector_cluster_traces_and_propagates_b3(tmp_path):
    collector = Collector(TraceStore(), 1 << 20)
    app = web.Application()
    collector.add_routes(app.router)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    cport = free_port()
    await web.TCPSite(runner, "127.0.0.1", cport).start()
    seen: list[dict[str, str]] = []

    async def app_handler(request: web.Request) -> web.Response:
        seen.append({k.lower(): v for k, v in request.headers.items()})
        return web.Response(text="web-v1")

    up, up_port = await upstream(app_handler)
    mesh = await Mesh(tmp_path, collector=("127.0.0.1", cport)).start()
    port = free_port()
    try:
        snap = compute(config(port), {"web": [Endpoint("127.0.0.1", up_port)]}, Node(NODE), tracing=Tracing())
        await mesh.push(snap)
        await mesh.listening(f"127.0.0.1:{port}")
        async with aiohttp.ClientSession() as session:
            for _ in range(5):  # Envoy sends once it holds 5 spans
                status, body, _ = await call(session, port, "web.shop.local")
                assert (status, body) == (200, "web-v1")
        headers = seen[-1]
        assert len(headers["x-b3-traceid"]) == 32 and len(headers["x-b3-spanid"]) == 16
        assert headers["x-b3-sampled"] == "1"
        await eventually(lambda: collector.store.span_count >= 5, timeout=30)
        ids = {h["x-b3-traceid"] for h in seen}
        for trace_id in ids:
            (span,) = collector.store.trace(trace_id)
            assert span["kind"] == "CLIENT" and span["localEndpoint"]["serviceName"] == "test"
            assert span["tags"]["http.status_code"] == "200"
            assert span["id"] in {h["x-b3-spanid"] for h in seen}
        assert collector.refused == 0
    finally:
        await mesh.stop()
        await up.cleanup()
        await runner.cleanup()


async def test_a_sidecar_without_the_collector_cluster_nacks_the_tracer(tmp_path):
    mesh = await Mesh(tmp_path).start()
    port = free_port()
    try:
        snap = compute(config(port), {"web": [Endpoint("127.0.0.1", 9)]}, Node(NODE), tracing=Tracing())
        mesh.cache.set_snapshot(NODE, snap)

        def nacked() -> str:
            return next((n.message for n in mesh.ads.nacks if n.type_url == LISTENER), "")

        message = await eventually(nacked, timeout=30)
        assert "dockyard_traces" in message
        plain = compute(config(port), {"web": [Endpoint("127.0.0.1", 9)]}, Node(NODE))
        await mesh.push(plain)  # the same without the tracer: ACKed
    finally:
        await mesh.stop()
