"""Resilience on a real Envoy fed by ``mesh.snapshot.compute`` (one Envoy per xDS variant,
state-of-the-world and delta, for the module; each test pushes its own mesh onto one egress
listener), with real HTTP upstreams: retries, route timeouts, outlier detection, connection
and pending-request limits, and a gRPC service over HTTP/2 upstream."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import grpc
import pytest
import pytest_asyncio
from aiohttp import web

from mesh.model import (
    Client,
    Endpoint,
    HeaderMatch,
    Match,
    MeshConfig,
    Node,
    Outlier,
    Pool,
    QueryMatch,
    Retry,
    Route,
    Rule,
    Service,
    Target,
)
from mesh.snapshot import compute
from tests.support.envoy import NODE, Mesh, call, eventually, text, upstream
from tests.support.server import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")


class Env:
    def __init__(self, mesh: Mesh, port: int, session: aiohttp.ClientSession) -> None:
        self.mesh, self.port, self.session = mesh, port, session
        self.runners: list[web.AppRunner] = []

    async def serve(self, handler) -> Endpoint:
        runner, port = await upstream(handler)
        self.runners.append(runner)
        return Endpoint("127.0.0.1", port)

    async def push(self, services: tuple[Service, ...], rules: tuple[Rule, ...],
                   endpoints: dict[str, list[Endpoint]]) -> None:
        cfg = MeshConfig(services=services, routes=(Route("svc.local", self.port, rules=rules),),
                         clients=(Client(NODE, ("svc.local",)),))
        await self.mesh.push(compute(cfg, endpoints, Node(NODE)))

    async def get(self, path: str = "/", timeout: float = 10.0):
        return await call(self.session, self.port, "svc.local", path, timeout)


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=["sotw", "delta"])
async def env(request, tmp_path_factory):
    mesh = await Mesh(tmp_path_factory.mktemp("envoy"), delta=request.param == "delta").start()
    port = free_port()
    session = aiohttp.ClientSession()
    e = Env(mesh, port, session)
    try:
        ok = await e.serve(text("ok"))
        await e.push((Service("ok"),), (Rule((Target("ok", 1),)),), {"ok": [ok]})
        await mesh.listening(f"127.0.0.1:{port}")
        yield e
    finally:
        await session.close()
        await mesh.stop()
        for runner in e.runners:
            await runner.cleanup()


async def test_a_request_whose_first_try_gets_a_503_is_retried_and_succeeds(env):
    seen: set[str] = set()

    async def flaky(request: web.Request) -> web.Response:
        rid = request.headers["x-request-id"]  # Envoy's, the same on every try of one request
        if rid not in seen:
            seen.add(rid)
            return web.Response(status=503, text="first try")
        return web.Response(text="second try")

    eps = {"flaky": [await env.serve(flaky)]}
    await env.push((Service("flaky"),), (Rule((Target("flaky", 1),)),), eps)
    assert [(await env.get())[0] for _ in range(5)] == [503] * 5  # no retry policy: the 503 shows
    before = env.mesh.stat("cluster.flaky.upstream_rq_retry")
    await env.push((Service("flaky"),), (Rule((Target("flaky", 1),), retry=Retry(2, retry_on="5xx")),), eps)
    answers = [await env.get() for _ in range(20)]
    assert [(s, t) for s, t, _ in answers] == [(200, "second try")] * 20
    assert env.mesh.stat("cluster.flaky.upstream_rq_retry") - before == 20


async def test_a_slow_upstream_is_cut_at_the_route_timeout(env):
    async def slow(request: web.Request) -> web.Response:
        if request.path.startswith("/slow"):
            await asyncio.sleep(3)
        return web.Response(text="done")

    eps = {"slow": [await env.serve(slow)]}
    await env.push((Service("slow"),), (Rule((Target("slow", 1),), timeout=0.3),), eps)
    start = time.monotonic()
    status, body, _ = await env.get("/slow")
    took = time.monotonic() - start
    assert status == 504 and "timeout" in body and 0.25 <= took < 2, (status, body, took)
    assert (await env.get("/fast"))[:2] == (200, "done")
    assert env.mesh.stat("cluster.slow.upstream_rq_timeout") >= 1


async def test_outlier_detection_ejects_the_endpoint_answering_5xx(env):
    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="bad")

    bad, good = await env.serve(broken), await env.serve(text("good"))
    svc = Service("od", outlier=Outlier(max_server_errors=3, interval=0.5, base_ejection=60,
                                        max_ejection_percent=50))
    await env.push((svc,), (Rule((Target("od", 1),)),), {"od": [bad, good]})
    await eventually(lambda: env.mesh.get("/clusters").count("od::127.0.0.1:") >= 2)
    first = [(await env.get())[0] for _ in range(20)]
    assert first.count(500) >= 3  # the bad endpoint was reached until ejected
    assert env.mesh.stat("cluster.od.outlier_detection.ejections_enforced_total") >= 1
    flags = [line for line in env.mesh.get("/clusters").splitlines()
             if line.startswith(f"od::127.0.0.1:{bad.port}::health_flags")]
    assert flags and "failed_outlier_check" in flags[0], flags
    assert [(await env.get())[:2] for _ in range(30)] == [(200, "good")] * 30


async def test_connection_and_pending_limits_answer_503_overflow_and_are_counted(env):
    release = asyncio.Event()

    async def held(_: web.Request) -> web.Response:
        await release.wait()
        return web.Response(text="held")

    svc = Service("pool", pool=Pool(max_connections=1, max_pending_requests=1, max_requests=1))
    await env.push((svc,), (Rule((Target("pool", 1),)),), {"pool": [await env.serve(held)]})
    before = env.mesh.stat("cluster.pool.upstream_rq_pending_overflow")
    calls = [asyncio.create_task(env.get()) for _ in range(8)]
    await asyncio.sleep(1)
    release.set()
    answers = await asyncio.gather(*calls)
    overflow = [a for a in answers if a[0] == 503]
    assert len(overflow) >= 5 and any(a[:2] == (200, "held") for a in answers), [a[:2] for a in answers]
    assert all(a[2].get("x-envoy-overloaded") == "true" for a in overflow)
    assert env.mesh.stat("cluster.pool.upstream_rq_pending_overflow") - before == len(overflow)


async def test_a_grpc_service_is_called_over_http2_upstream(env):
    async def say(request: bytes, context) -> bytes:
        return b"hello " + request

    server = grpc.aio.server()
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "test.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)}),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        eps = {"rpc": [Endpoint("127.0.0.1", port)]}
        options = [("grpc.default_authority", "svc.local")]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{env.port}", options=options) as channel:
            rpc = channel.unary_unary("/test.Echo/Say")
            await env.push((Service("rpc", protocol="http"),), (Rule((Target("rpc", 1),), timeout=0.5),), eps)
            with pytest.raises(grpc.aio.AioRpcError):  # HTTP/1.1 upstream: a gRPC server cannot answer
                await rpc(b"h1", timeout=5)
            start = time.monotonic()  # a changed cluster: Envoy re-warms it, its EDS is answered again
            await env.push((Service("rpc", protocol="grpc"),), (Rule((Target("rpc", 1),)),), eps)
            assert time.monotonic() - start < 3
            assert await rpc(b"mesh", timeout=5) == b"hello mesh"
        assert env.mesh.stat("cluster.rpc.upstream_cx_http2_total") >= 1
    finally:
        await server.stop(0)


async def test_rules_match_on_path_regex_headers_method_and_query_in_order(env):
    eps = {"v1": [await env.serve(text("v1"))], "v2": [await env.serve(text("v2"))]}
    to_v2 = (Target("v2", 1),)
    rules = (
        Rule(to_v2, Match(path="/exact")),
        Rule(to_v2, Match(regex="/items/[0-9]+")),
        Rule(to_v2, Match(prefix="/h", headers=(HeaderMatch("x-canary", exact="yes"),
                                                HeaderMatch("x-user", range=(100, 200)),
                                                HeaderMatch("x-debug", present=False)))),
        Rule(to_v2, Match(prefix="/m", method="DELETE")),
        Rule(to_v2, Match(prefix="/q", query=(QueryMatch("v", "2"), QueryMatch("flag")))),
        Rule(to_v2, Match(prefix="/not", headers=(HeaderMatch("x-env", prefix="prod", invert=True),))),
        Rule((Target("v1", 1),)),
    )
    await env.push((Service("v1"), Service("v2")), rules, eps)

    async def who(path: str, method: str = "GET", **headers: str) -> str:
        async with env.session.request(method, f"http://127.0.0.1:{env.port}{path}",
                                       headers={"Host": "svc.local", **headers}) as r:
            assert r.status == 200
            return await r.text()

    assert await who("/exact") == "v2" and await who("/exact/more") == "v1"
    assert await who("/items/42") == "v2" and await who("/items/x") == "v1"
    assert await who("/h", **{"x-canary": "yes", "x-user": "150"}) == "v2"
    assert await who("/h", **{"x-canary": "yes", "x-user": "250"}) == "v1"
    assert await who("/h", **{"x-canary": "yes", "x-user": "150", "x-debug": "1"}) == "v1"
    assert await who("/m", "DELETE") == "v2" and await who("/m") == "v1"
    assert await who("/q?v=2&flag") == "v2" and await who("/q?v=2") == "v1"
    assert await who("/not", **{"x-env": "staging"}) == "v2"
    assert await who("/not", **{"x-env": "production"}) == "v1"
