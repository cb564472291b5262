"""``dockyard.control._http1._resume``: a coroutine stepped by hand and handed to a Task carries on as
if it had been a Task from the start (results, exceptions, cancellation, bare yields). The
transport itself is tested over real sockets in tests/integration/test_control_workers_http.py."""

from __future__ import annotations

import asyncio

import pytest

from dockyard.control._http1 import _resume


def handed_over(coro):
    """Step ``coro`` by hand until it first waits, then give it to a Task, as Connection does."""
    waiting = coro.send(None)
    return asyncio.get_running_loop().create_task(_resume(coro, waiting))


async def test_a_coroutine_handed_over_gets_results_and_exceptions_of_what_it_awaits():
    loop = asyncio.get_running_loop()
    seen = []

    async def body():
        ok = loop.create_future()
        loop.call_soon(ok.set_result, 5)
        seen.append(await ok)
        await asyncio.sleep(0)  # a bare yield
        failing = loop.create_future()
        loop.call_soon(failing.set_exception, ValueError("boom"))
        try:
            await failing
        except ValueError as e:
            seen.append(str(e))
        await asyncio.sleep(0.001)
        seen.append(asyncio.current_task() is not None)
        async with asyncio.timeout(1):  # needs a Task: it has one now
            await asyncio.sleep(0)
        return "unused"

    await handed_over(body())
    assert seen == [5, "boom", True]


async def test_cancelling_the_task_cancels_the_coroutine_where_it_waits():
    cleaned = asyncio.Event()

    async def body():
        await asyncio.sleep(0)
        try:
            await asyncio.sleep(30)
        finally:
            cleaned.set()

    task = handed_over(body())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned.is_set()


async def test_an_exception_the_coroutine_raises_ends_the_task_with_it():
    async def body():
        await asyncio.sleep(0)
        raise KeyError("x")

    with pytest.raises(KeyError):
        await handed_over(body())
