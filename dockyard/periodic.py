"""Work repeated for as long as the platform runs: the loop a start/stop hook wraps around it.

``async with every(seconds, step, name="registry-gc", what="periodic gc"):`` starts a task that
waits ``seconds``, awaits ``step()``, and again, until the block ends; then the task is
cancelled and awaited. A step that raises is logged (``<what> failed``, with the traceback)
and the loop goes on: one bad pass never ends the work for the life of the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["every"]


@contextlib.asynccontextmanager
async def every(seconds: float, step: Callable[[], Awaitable[Any]], *, name: str, what: str,
                log: logging.Logger | None = None) -> AsyncIterator[None]:
    """Run ``step()`` every ``seconds`` (after each wait) while the block runs (module doc)."""
    logger = log or logging.getLogger("dockyard")

    async def loop() -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await step()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception(f"{what} failed")

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
