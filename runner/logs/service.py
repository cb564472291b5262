"""Wiring of :mod:`runner.logs` into the platform: the CloudWatch Logs operations, the
collector the task workers feed, and the retention loop.

Retention is enforced every ``logs_retention_interval`` seconds: events older than their
group's ``retentionInDays`` go, then, while the store holds more than ``logs_max_bytes``,
the oldest-ingested events over all groups (the disk cannot fill; docs/logs.md).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from dockyard.aws.errors import InvalidParameterException
from dockyard.periodic import every
from runner.logs.api import LOGS, OPERATIONS, LogsApi
from runner.logs.collector import Collector
from runner.logs.data import LogStore, db_path

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["enforce", "install"]

log = logging.getLogger("dockyard.runner.logs")


def enforce(store: LogStore, max_bytes: int) -> tuple[int, int]:
    """One retention pass: (events expired by their group's retention, events trimmed by the
    global bound)."""
    expired = 0
    while (gone := store.expire()) > 0:  # a backlog goes in batches, each its own transaction
        expired += gone
    return expired, store.trim(max_bytes)


def install(platform: Platform) -> tuple[LogStore, Collector]:
    """Register the operations and the retention loop; the store and the collector (what the
    task workers and GetTaskLogs use)."""
    config = platform.config
    store = LogStore(db_path(config.data_dir))
    api = LogsApi(store, config)
    for name, method in OPERATIONS.items():
        platform.ops.add(LOGS, name, getattr(api, method), validate=InvalidParameterException)
    collector = Collector(store)

    async def step() -> None:
        expired, trimmed = await asyncio.to_thread(enforce, store, config.logs_max_bytes)
        if expired or trimmed:
            log.info("log retention", extra={"expired": expired, "trimmed": trimmed})

    async def retention(p: Platform) -> AsyncIterator[None]:
        try:
            if config.logs_retention_interval > 0:
                async with every(
                    config.logs_retention_interval, step, name="logs-retention", what="log retention", log=log
                ):
                    yield
            else:
                yield
        finally:
            await asyncio.to_thread(collector.close)
            store.close()

    platform.contexts.append(retention)
    return store, collector
