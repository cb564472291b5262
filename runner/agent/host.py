"""One Docker host as the runner sees it: async calls over a :class:`Transport`, the pause
image, image pulls with Dockyard's registry first, and the container event stream.

Blocking transport calls run in worker threads; the event stream runs in a thread of its own
and hands events to the event loop with ``call_soon_threadsafe``. When the stream breaks
(dockerd restarted, socket gone) it reconnects with backoff and reports ``reconnected`` so
the supervisor re-inspects every task on the host.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import tarfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from runner.agent.spec import LABEL_TASK, PAUSE_IMAGE
from runner.agent.transport import ContainerSpec, DockerError, NotFound, Transport
from runner.taskdef import image_candidates

__all__ = ["Host", "PullFailed", "pause_rootfs"]

log = logging.getLogger("dockyard.runner")


class PullFailed(Exception):
    """No candidate reference of an image could be pulled or found locally."""


def pause_rootfs() -> bytes:
    """A root file system holding only a static busybox (the pause container runs ``sleep``)."""
    found = shutil.which("busybox.static") or shutil.which("busybox") or "/bin/busybox"
    data = Path(found).read_bytes()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class Host:
    """Async facade over one Docker Engine (see module docstring)."""

    def __init__(self, url: str, transport: Transport) -> None:
        self.url = url
        self.transport = transport
        self._pause_lock = asyncio.Lock()
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._prepulled: dict[str, float] = {}  # reference -> when a pre-warm pulled it (monotonic)
        self._events_thread: threading.Thread | None = None
        self._closing = threading.Event()

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    async def info(self) -> dict[str, Any]:
        return await self._run(self.transport.info)

    async def gateway(self) -> str:
        """The gateway address of the engine's ``bridge`` network, "" if unknown."""
        try:
            return str(await self._run(self.transport.gateway, "bridge"))
        except DockerError:
            return ""

    async def ensure_pause_image(self) -> None:
        async with self._pause_lock:
            if not await self._run(self.transport.image_present, PAUSE_IMAGE):
                rootfs = await self._run(pause_rootfs)
                await self._run(self.transport.import_image, rootfs, PAUSE_IMAGE, [])

    async def ensure_image(self, ref: str, rootfs: Callable[[], IO[bytes]], changes: list[str]) -> None:
        """Import ``ref`` from ``rootfs()`` (a binary file object of its root file system, made
        only when the engine lacks ``ref``, then closed) with ``changes``; once per reference
        at a time. Raises DockerError."""
        lock = self._pull_locks.setdefault(f"import {ref}", asyncio.Lock())
        async with lock:
            if await self._run(self.transport.image_present, ref):
                return
            tar = await self._run(rootfs)
            try:
                await self._run(self.transport.import_image, tar, ref, changes)
            finally:
                tar.close()

    async def pull(
        self, image: str, registry: str, auth: dict[str, str] | None, *, prewarm: bool = False,
        fresh: float = 0.0,
    ) -> str:
        """Pull ``image`` (Dockyard's registry first for unqualified names); returns the
        reference to create containers from. A failed pull falls back to a local copy of the
        same reference (ECS's default pull behaviour); raises :class:`PullFailed`.

        One pull per reference at a time: a task's pull that finds a pre-warm's pull of the same
        reference under way waits for it, and a reference a pre-warm (``prewarm``) pulled less
        than ``fresh`` seconds ago is not pulled again."""
        errors = []
        for ref in image_candidates(image, registry):
            lock = self._pull_locks.setdefault(ref, asyncio.Lock())
            async with lock:
                at = self._prepulled.get(ref)
                if not prewarm and at is not None and time.monotonic() - at < fresh:
                    return ref
                try:
                    use_auth = auth if registry and ref.startswith(registry + "/") else None
                    await self._run(self.transport.pull, ref, use_auth)
                    if prewarm:
                        self._prepulled[ref] = time.monotonic()
                    return ref
                except DockerError as e:
                    errors.append(f"{ref}: {e}")
                if await self._run(self.transport.image_present, ref):
                    return ref
        raise PullFailed("; ".join(errors) or f"{image}: not found")

    async def create(self, spec: ContainerSpec) -> str:
        """Create the container, or return the id of the one of that name already there."""
        try:
            existing = await self._run(self.transport.inspect, spec.name)
            return str(existing["Id"])
        except NotFound:
            pass
        try:
            return await self._run(self.transport.create, spec)
        except DockerError as e:
            if "Conflict" in str(e) or "already in use" in str(e):
                return str((await self._run(self.transport.inspect, spec.name))["Id"])
            raise

    async def start(self, cid: str) -> None:
        await self._run(self.transport.start, cid)

    async def stop(self, cid: str, timeout: int) -> None:
        try:
            await self._run(self.transport.stop, cid, timeout)
        except NotFound:
            pass

    async def remove(self, cid: str) -> None:
        try:
            await self._run(self.transport.remove, cid)
        except NotFound:
            pass

    async def remove_volume(self, name: str) -> None:
        """Remove a Docker volume (gone already is fine; one still in use raises)."""
        try:
            await self._run(self.transport.remove_volume, name)
        except NotFound:
            pass

    async def inspect(self, cid: str) -> dict[str, Any] | None:
        """``docker inspect`` of a container, or None when it does not exist."""
        try:
            return await self._run(self.transport.inspect, cid)
        except NotFound:
            return None

    async def labelled(self) -> list[dict[str, Any]]:
        """Every container (running or not) that carries a Dockyard task label."""
        return await self._run(self.transport.containers, LABEL_TASK)

    async def logs(self, cid: str, tail: int) -> bytes:
        return await self._run(self.transport.logs, cid, tail)

    async def stats(self, cid: str) -> dict[str, Any]:
        return await self._run(self.transport.stats, cid)

    async def timed_logs(self, cid: str, tail: int, since: int | None) -> bytes:
        """The last ``tail`` lines from ``since`` (seconds since the epoch; None: the start),
        each prefixed with Docker's RFC 3339 timestamp and a space."""
        return await self._run(self.transport.timed_logs, cid, tail, since)

    # -- events ------------------------------------------------------------------------------
    def watch(self, on_event: Callable[[dict[str, Any]], None], on_reconnect: Callable[[], None]) -> None:
        """Follow the host's container events in a thread until :meth:`close`."""
        loop = asyncio.get_running_loop()

        def pump() -> None:
            since = time.time()
            backoff = 0.2
            first = True
            while not self._closing.is_set():
                try:
                    stream = self.transport.events(since, LABEL_TASK)  # returns once connected
                    if not first:
                        loop.call_soon_threadsafe(on_reconnect)
                    first = False
                    backoff = 0.2
                    for event in stream:
                        since = float(event.get("time") or since)
                        loop.call_soon_threadsafe(on_event, event)
                        if self._closing.is_set():
                            return
                except (DockerError, OSError) as e:
                    if self._closing.is_set():
                        return
                    log.warning("docker events lost", extra={"host": self.url, "error": str(e)})
                except Exception:  # never let the thread die: a host without events is half-blind
                    if self._closing.is_set() or loop.is_closed():  # we are the ones going away
                        return
                    log.exception("docker events failed", extra={"host": self.url})
                first = False
                self._closing.wait(backoff)
                backoff = min(backoff * 2, 2.0)

        self._events_thread = threading.Thread(target=pump, name=f"docker-events {self.url}", daemon=True)
        self._events_thread.start()

    async def close(self) -> None:
        """Stop following events and release the transport (the event thread ends on its
        own once its stream is closed; it is a daemon and never holds the loop)."""
        self._closing.set()
        self.transport.close()
