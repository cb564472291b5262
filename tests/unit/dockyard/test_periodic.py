"""dockyard.periodic.every: repeated, survives a failing step, stops with its block."""

import asyncio
import logging

from dockyard.periodic import every


async def test_a_step_runs_again_after_one_that_failed_and_stops_with_the_block(caplog):
    calls = []

    async def step():
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR):
        async with every(0.01, step, name="t", what="the test step"):
            while len(calls) < 3:
                await asyncio.sleep(0.005)
    seen = len(calls)
    await asyncio.sleep(0.05)
    assert len(calls) == seen  # nothing runs once the block has ended
    assert any("the test step failed" in r.getMessage() for r in caplog.records)


async def test_nothing_runs_before_the_first_wait():
    calls = []

    async def step():
        calls.append(1)

    async with every(60, step, name="t", what="x"):
        await asyncio.sleep(0.02)
    assert calls == []
