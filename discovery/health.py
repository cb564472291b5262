"""The active health checker: one asyncio task per instance of a service with a HealthCheckConfig.

Each task probes ``AWS_INSTANCE_IPV4:AWS_INSTANCE_PORT`` (+ ``ResourcePath`` for HTTP/HTTPS)
every ``interval`` seconds (the service's ``dockyard:health-check-interval`` tag, default 10 s,
down to 1 s). :func:`step` (pure) turns probe results into a status: ``FailureThreshold``
consecutive failures make a HEALTHY instance UNHEALTHY, as many consecutive successes bring it
back. Each flip is written to the store (a ``discovery/health`` change) and logged. A probe
times out after ``min(interval, 4)`` seconds; an HTTP(S) answer of 2xx or 3xx is a success,
as with Route 53. Nothing a target does (hang, reset, garbage) can stop the checker.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from dataclasses import dataclass

import aiohttp

from discovery.data import Data
from discovery.index import Catalog
from discovery.model import Instance, Service

__all__ = ["Checker", "Counters", "change_health", "probe", "step"]

log = logging.getLogger("dockyard.discovery.health")


@dataclass(frozen=True)
class Counters:
    """Consecutive results against the current status."""

    status: str
    streak: int = 0


def step(counters: Counters, ok: bool, threshold: int) -> Counters:
    """The status after one probe result (pure).

    ``streak`` counts consecutive results that disagree with ``status``; when it reaches
    ``threshold`` the status flips. A result that agrees resets it.
    """
    agrees = ok == (counters.status != "UNHEALTHY")
    if agrees:
        return Counters(counters.status if counters.status != "UNKNOWN" else "HEALTHY", 0)
    streak = counters.streak + 1
    if streak >= threshold:
        return Counters("HEALTHY" if ok else "UNHEALTHY", 0)
    return Counters(counters.status, streak)


_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE


async def probe(session: aiohttp.ClientSession, kind: str, host: str, port: int, path: str,
                timeout: float) -> bool:
    """One check; True if the target passed. Never raises (except on cancellation)."""
    try:
        if kind == "TCP":
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            writer.close()
            return True
        scheme = "https" if kind == "HTTPS" else "http"
        url = f"{scheme}://{host}:{port}{path}"
        async with session.get(
            url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False,
            ssl=_INSECURE if kind == "HTTPS" else None,
        ) as resp:
            return 200 <= resp.status < 400
    except asyncio.CancelledError:
        raise
    except Exception:
        return False


def _plan(service: Service, instance: Instance) -> tuple | None:
    """What a task for this instance checks, or None when it needs no task."""
    hc = service.health_check
    if not hc:
        return None
    attrs = instance.attributes
    host, port = attrs.get("AWS_INSTANCE_IPV4"), attrs.get("AWS_INSTANCE_PORT")
    if not host or not port or not port.isdigit():
        return None
    return (hc["Type"], host, int(port), hc.get("ResourcePath", "/"), int(hc.get("FailureThreshold", 1)),
            service.health_interval)


async def change_health(data: Data, catalog: Catalog, service: Service, instance_id: str, status: str,
                        source: str) -> bool:
    """Record ``status`` for an instance (``source``: the probe type or ``custom``) and refresh
    the catalog; returns whether it changed (a change is a ``discovery/health`` event)."""
    before = await data.set_health(service.id, instance_id, status)
    if before is None:
        return False
    catalog.reload_service(service.id)
    log.info("instance health changed", extra={
        "service": service.name, "instance": instance_id, "from": before, "to": status, "source": source,
    })
    return True


class Checker:
    """Keeps one probing task per checked instance, in step with the catalog."""

    def __init__(self, data: Data, catalog: Catalog) -> None:
        self.data = data
        self.catalog = catalog
        self._tasks: dict[tuple[str, str], tuple[tuple, asyncio.Task]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._counters: dict[tuple[str, str], Counters] = {}

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=0), auto_decompress=False
        )
        for service_id in list(self.catalog.index.services):
            self.sync(service_id)

    async def stop(self) -> None:
        tasks = [t for _, t in self._tasks.values()]
        self._tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    def sync(self, service_id: str) -> None:
        """Start, restart or stop the tasks of one service to match the catalog."""
        if self._session is None:
            return
        index = self.catalog.index
        service = index.services.get(service_id)
        wanted: dict[tuple[str, str], tuple] = {}
        if service is not None:
            for inst in index.instances_of(service_id):
                plan = _plan(service, inst)
                if plan is not None:
                    wanted[(service_id, inst.id)] = plan
        for key in [k for k in self._tasks if k[0] == service_id]:
            plan, task = self._tasks[key]
            if wanted.get(key) != plan:
                task.cancel()
                del self._tasks[key]
        for key, plan in wanted.items():
            if key not in self._tasks:
                self._tasks[key] = (plan, asyncio.create_task(self._run(key, plan), name=f"health {key}"))

    @property
    def checking(self) -> int:
        return len(self._tasks)

    async def _run(self, key: tuple[str, str], plan: tuple) -> None:
        service_id, instance_id = key
        kind, host, port, path, threshold, interval = plan
        assert self._session is not None
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                service = self.catalog.index.services.get(service_id)
                inst = self.catalog.index.instances.get(service_id, {}).get(instance_id)
                if service is None or inst is None:
                    return
                ok = await probe(self._session, kind, host, port, path, min(interval, 4.0))
                inst = self.catalog.index.instances.get(service_id, {}).get(instance_id)
                if inst is None:
                    return
                counters = self._counters.get(key) or Counters(inst.health)
                counters = step(Counters(inst.health, counters.streak), ok, threshold)
                self._counters[key] = counters
                if counters.status != inst.health:
                    await change_health(self.data, self.catalog, service, instance_id, counters.status, kind)
            except asyncio.CancelledError:
                self._counters.pop(key, None)
                raise
            except Exception:
                log.exception("health check failed", extra={"service": service_id, "instance": instance_id})
            await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
