"""A pre-warm's pull spares the task's (runner.agent.host.Host.pull), on the fake engine."""

from __future__ import annotations

import asyncio

from runner.agent.host import Host
from tests.unit.runner.fakedocker import FakeDocker

REGISTRY = "127.0.0.1:5000"


async def test_a_task_after_a_prewarm_does_not_pull_again_until_the_prewarm_is_stale():
    fake = FakeDocker(registry={f"{REGISTRY}/app:1"})
    host = Host("fake://local", fake.connection())
    try:
        await host.pull("app:1", REGISTRY, None, prewarm=True)
        assert await host.pull("app:1", REGISTRY, None, fresh=3600) == f"{REGISTRY}/app:1"
        assert [r for r, _ in fake.pulls] == [f"{REGISTRY}/app:1"]  # one pull: the pre-warm's
        await host.pull("app:1", REGISTRY, None, fresh=0)  # stale (or no window): pulls again
        assert len(fake.pulls) == 2
        await host.pull("app:1", REGISTRY, None)  # without a window a task always pulls (ECS's default)
        assert len(fake.pulls) == 3
    finally:
        await host.close()


async def test_a_task_waits_for_a_prewarm_under_way_instead_of_starting_its_own_pull():
    fake = FakeDocker(registry={f"{REGISTRY}/app:1"})
    host = Host("fake://local", fake.connection())
    gate = asyncio.Event()
    real = fake.pull

    def slow(ref: str, auth: object = None) -> None:
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result(5)
        real(ref, auth)  # type: ignore[arg-type]

    loop = asyncio.get_running_loop()
    fake.pull = slow  # type: ignore[method-assign]
    try:
        warm = asyncio.create_task(host.pull("app:1", REGISTRY, None, prewarm=True))
        await asyncio.sleep(0.05)
        task = asyncio.create_task(host.pull("app:1", REGISTRY, None, fresh=3600))
        await asyncio.sleep(0.05)
        assert not task.done()
        gate.set()
        await asyncio.gather(warm, task)
        assert len(fake.pulls) == 1
    finally:
        await host.close()
