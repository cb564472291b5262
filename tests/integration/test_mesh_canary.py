"""Canary routing with real traffic through a real Envoy fed by ``mesh.snapshot.compute``:
10,000 requests over a 90/10 route put 10% +- 1.5 points on v2, and shifting 90/10 -> 50/50
-> 0/100 under continuous load (each shift a ``SnapshotCache.set_snapshot``) fails no request."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
import pytest_asyncio

from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Service, Target
from mesh.snapshot import Snapshot, compute
from tests.support.envoy import NODE, Mesh, text, upstream
from tests.support.server import free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")
HOST = "web.shop.local"
WORKERS = 32


class Canary:
    def __init__(self, mesh: Mesh, port: int, endpoints: dict) -> None:
        self.mesh, self.port, self.endpoints = mesh, port, endpoints

    def snapshot(self, v1: int, v2: int) -> Snapshot:
        cfg = MeshConfig(services=(Service("web-v1"), Service("web-v2")),
                         routes=(Route(HOST, self.port, (Target("web-v1", v1), Target("web-v2", v2))),),
                         clients=(Client(NODE, (HOST,)),))
        return compute(cfg, self.endpoints, Node(NODE))

    async def shift(self, v1: int, v2: int) -> float:
        """Push the weights; the milliseconds from set_snapshot to Envoy's ACK."""
        start = time.monotonic()
        await self.mesh.push(self.snapshot(v1, v2))
        return (time.monotonic() - start) * 1000


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def canary(tmp_path_factory):
    mesh = await Mesh(tmp_path_factory.mktemp("envoy")).start()
    runners = [await upstream(text("v1")), await upstream(text("v2"))]
    eps = {"web-v1": [Endpoint("127.0.0.1", runners[0][1])], "web-v2": [Endpoint("127.0.0.1", runners[1][1])]}
    c = Canary(mesh, free_port(), eps)
    try:
        await c.shift(90, 10)
        await mesh.listening(f"127.0.0.1:{c.port}")
        yield c
    finally:
        await mesh.stop()
        for runner, _ in runners:
            await runner.cleanup()


async def load(port: int, answers: list[tuple[float, str]], failures: list[str], *,
               total: int | None = None, stop: asyncio.Event | None = None) -> None:
    """WORKERS keep-alive clients through Envoy: ``total`` requests, or until ``stop``; each
    answer is (time, body), anything else a failure."""
    url, headers = f"http://127.0.0.1:{port}/", {"Host": HOST}
    left = [total]

    def more() -> bool:
        if stop is not None:
            return not stop.is_set()
        left[0] -= 1
        return left[0] >= 0

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=WORKERS)) as session:
        async def worker() -> None:
            while more():
                try:
                    async with session.get(url, headers=headers) as r:
                        body = await r.text()
                        if r.status == 200:
                            answers.append((time.monotonic(), body))
                        else:
                            failures.append(f"{r.status} {body[:80]}")
                except (TimeoutError, aiohttp.ClientError) as e:
                    failures.append(repr(e))
        await asyncio.gather(*(worker() for _ in range(WORKERS)))


async def test_ten_thousand_requests_over_a_90_10_route_put_10_percent_on_v2(canary):
    await canary.shift(90, 10)
    answers: list[tuple[float, str]] = []
    failures: list[str] = []
    start = time.monotonic()
    await load(canary.port, answers, failures, total=10_000)
    took = time.monotonic() - start
    bodies = [b for _, b in answers]
    share = bodies.count("v2") / len(bodies) * 100
    print(f"10,000 requests in {took:.1f} s, v2 {share:.2f}%")
    assert failures == [] and len(bodies) == 10_000 and set(bodies) == {"v1", "v2"}
    assert 8.5 <= share <= 11.5, share


async def test_shifting_90_10_to_50_50_to_0_100_under_load_fails_no_request(canary):
    await canary.shift(90, 10)
    answers: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = asyncio.Event()
    loader = asyncio.create_task(load(canary.port, answers, failures, stop=stop))
    acks, marks = [], [time.monotonic()]
    for v1, v2 in ((50, 50), (0, 100)):
        await asyncio.sleep(1.5)
        acks.append(await canary.shift(v1, v2))
        marks.append(time.monotonic())
    await asyncio.sleep(1.0)
    stop.set()
    await loader
    print(f"{len(answers)} requests, weight changes ACKed in {', '.join(f'{a:.1f}' for a in acks)} ms")
    assert failures == [], failures[:5]
    assert len(answers) >= 1000

    def share_v2(start: float, end: float) -> float:
        window = [b for t, b in answers if start + 0.1 < t < end]
        return window.count("v2") / len(window)
    assert share_v2(marks[0], marks[1]) <= 0.2
    assert 0.35 <= share_v2(marks[1], marks[2]) <= 0.65
    after = [b for t, b in answers if t > marks[2] + 0.1]
    assert after and set(after) == {"v2"}
