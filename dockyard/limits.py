"""Process limits for the servers: the open-file limit, and what the event loop logs when a
listener runs out of them.

Every connection holds a file descriptor; the soft ``RLIMIT_NOFILE`` (often 1,024) is what
runs out first. :func:`raise_open_file_limit` lifts it to the hard limit at start. When it
still runs out, asyncio logs a traceback for every failed ``accept()`` (5,000 in 3 s were
seen): :func:`limit_resource_error_logs` lets one through per ``interval`` and counts the rest.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

__all__ = ["ResourceErrorLog", "Throttle", "limit_resource_error_logs", "open_file_limit",
           "raise_open_file_limit"]

log = logging.getLogger(__name__)


def open_file_limit() -> int:
    """This process's soft open-file limit now."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_open_file_limit() -> int:
    """Raise this process's soft open-file limit to its hard limit; return the soft limit now
    in force (unchanged if it cannot be raised)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as e:
            log.warning("could not raise the open-file limit",
                        extra={"soft": soft, "hard": hard, "error": str(e)})
    return soft


class Throttle:
    """Lets one event through per ``interval`` seconds: :meth:`allow` says whether this one
    goes, and ``suppressed`` counts those held back since the last that went."""

    def __init__(self, interval: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self.suppressed = 0
        self._last = -float("inf")

    def allow(self) -> bool:
        now = self.clock()
        if now - self._last < self.interval:
            self.suppressed += 1
            return False
        self._last = now
        return True


class ResourceErrorLog:
    """An event-loop exception handler: contexts whose message says a resource ran out
    (``socket.accept() out of system resource``) are logged once per ``interval`` seconds,
    one line without a traceback, with how many were left out since; every other context goes
    to ``fallback`` (the loop's default handler)."""

    def __init__(self, fallback: Callable[[dict[str, Any]], None], interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fallback = fallback
        self.throttle = Throttle(interval, clock)

    @property
    def suppressed(self) -> int:
        return self.throttle.suppressed

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if "out of system resource" not in str(context.get("message", "")):
            self.fallback(context)
            return
        if not self.throttle.allow():
            return
        log.error(str(context["message"]), extra={"error": str(context.get("exception", "")),
                                                   "suppressed": self.throttle.suppressed})
        self.throttle.suppressed = 0


def limit_resource_error_logs(loop: asyncio.AbstractEventLoop, interval: float = 10.0) -> ResourceErrorLog:
    """Install a :class:`ResourceErrorLog` as ``loop``'s exception handler."""
    handler = ResourceErrorLog(loop.default_exception_handler, interval)
    loop.set_exception_handler(handler)
    return handler
