"""The ``awslogs`` driver of Dockyard: container output into log groups and streams.

The control plane already drives every Docker host over its Docker API URL, the local engine
and each ``dockyard agent`` host alike (:mod:`runner.agent.remote`); the collector follows a
container's output over that same connection (``docker logs --follow --timestamps``), so logs
arrive from every host with no new channel. Docker itself keeps the output (``json-file``)
until it is read, which is the buffer when the control plane is down: a follower resumes from
the stream's ``cursor_ns`` (the Docker timestamp of the last line stored), so a restart neither
loses nor repeats lines.

Threads: one per followed container (the Docker stream blocks) reading lines into a bounded
queue (a burst waits in Docker's log file, never in memory), and one writer batching the
queue into the store (up to :data:`BATCH` lines or :data:`FLUSH_SECONDS` per transaction).
The task worker calls :meth:`Collector.prepare` before it creates the containers (the group
is created, with ``awslogs-create-group``, or the task fails as in ECS),
:meth:`Collector.follow` once they run (idempotent: an adopted task is followed again
after a restart) and :meth:`Collector.drained` before it removes them.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from runner.logs import rules
from runner.logs.data import LogStore, LogStream
from runner.tasklogs import timestamp_ns

__all__ = ["BATCH", "FLUSH_SECONDS", "MAX_MESSAGE", "Collector", "split_line"]

log = logging.getLogger("dockyard.runner.logs")

BATCH = 2000
FLUSH_SECONDS = 0.2
QUEUE_LINES = 20_000
MAX_MESSAGE = 256 * 1024  # the awslogs driver's bound on one event (longer lines are cut)

Follow = Callable[[str, str, float | None], Iterator[bytes]]
"""``follow(docker_url, container_id, since_seconds)``: the timestamped output stream."""


def split_line(line: bytes, previous_ns: int) -> tuple[int, str]:
    """(Docker's time in ns, message) of one ``--timestamps`` line (newline dropped); a line
    without a stamp keeps ``previous_ns``."""
    stamp, sep, rest = line.partition(b" ")
    try:
        ns = timestamp_ns(stamp.decode("ascii")) if sep else None
    except (ValueError, UnicodeDecodeError):
        ns = None
    text = rest if ns is not None else line
    message = text.rstrip(b"\r\n")[:MAX_MESSAGE].decode("utf-8", errors="replace")
    return (ns if ns is not None else previous_ns), message


def _docker_follow(url: str, cid: str, since: float | None) -> Iterator[bytes]:
    from runner.agent.transport import DockerTransport

    transport = DockerTransport(url, timeout=3600 * 24 * 365)
    try:
        yield from transport.follow_logs(cid, since)
    finally:
        transport.close()


@dataclass(frozen=True)
class _Line:
    stream: LogStream
    ns: int
    message: str


@dataclass(frozen=True)
class _Done:
    cid: str


class Collector:
    """Followers and the writer (see module docstring)."""

    def __init__(self, store: LogStore, follow: Follow = _docker_follow) -> None:
        self.store = store
        self._follow = follow
        self._queue: queue.Queue[_Line | _Done | None] = queue.Queue(QUEUE_LINES)
        self._done: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        self._writer: threading.Thread | None = None

    # -- what the task worker calls ----------------------------------------------------------
    async def prepare(self, log_configuration: Mapping[str, Any] | None) -> str:
        """Check a container's ``logConfiguration`` and create its group when it asks to;
        the reason the container cannot start ("" when it can)."""
        try:
            options = rules.awslogs(log_configuration)
        except ValueError as e:
            return str(e)
        if options is None:
            return ""
        group = await asyncio.to_thread(self.store.group, options.group)
        if group is None:
            if not options.create_group:
                return (
                    f"failed to initialize logging driver: The specified log group does not exist: "
                    f"{options.group} (set awslogs-create-group to true to create it)"
                )
            await asyncio.to_thread(self.store.create_group, options.group)
        return ""

    async def follow(
        self,
        docker_url: str,
        cid: str,
        task_id: str,
        container: str,
        log_configuration: Mapping[str, Any] | None,
    ) -> None:
        """Follow the container's output into its stream (``prefix/container/task-id``), if it
        logs with ``awslogs``; again for a container already followed is a no-op."""
        try:
            options = rules.awslogs(log_configuration)
        except ValueError:
            return
        if options is None:
            return
        with self._lock:
            if self._following(cid):
                return
        stream = await asyncio.to_thread(self._open_stream, options, container, task_id, cid)
        if stream is None:
            log.warning("log group gone, output not kept", extra={"group": options.group, "task": task_id})
            return
        with self._lock:
            if self._following(cid):
                return
            self._start_writer()
            self._done[cid] = threading.Event()
            t = threading.Thread(
                target=self._pump,
                args=(docker_url, cid, stream),
                daemon=True,
                name=f"dockyard-logs-{cid[:12]}",
            )
            t.start()

    def _following(self, cid: str) -> bool:
        """A follower of ``cid`` is running, or its last lines are not stored yet (a new one
        would start from a cursor behind them and repeat them). Called with the lock held."""
        done = self._done.get(cid)
        return done is not None and not done.is_set()

    async def drained(self, cid: str, timeout: float) -> bool:
        """True once the follower of ``cid`` (if any) reached the end of its output and the
        writer stored it; False when ``timeout`` passes first."""
        with self._lock:
            done = self._done.get(cid)
        if done is None:
            return True
        return await asyncio.to_thread(done.wait, timeout)

    def close(self) -> None:
        """Stop the writer once the queue is flushed (followers are daemon threads that end
        with their streams; one still running resumes from its cursor at the next start)."""
        with self._lock:
            writer = self._writer
            self._writer = None
        if writer is not None:
            self._queue.put(None)
            writer.join(10)

    # -- threads ---------------------------------------------------------------------------
    def _open_stream(
        self, options: rules.AwsLogs, container: str, task_id: str, cid: str
    ) -> LogStream | None:
        group = self.store.group(options.group)
        if group is None and options.create_group:
            self.store.create_group(options.group)
            group = self.store.group(options.group)
        if group is None:
            return None
        name = rules.stream_name(options.prefix, container, task_id, cid)
        self.store.create_stream(group.id, name)
        return self.store.stream(group.id, name)

    def _start_writer(self) -> None:
        if self._writer is None or not self._writer.is_alive():
            self._writer = threading.Thread(target=self._write_loop, daemon=True, name="dockyard-logs-writer")
            self._writer.start()

    def _pump(self, url: str, cid: str, stream: LogStream) -> None:
        cursor = stream.cursor_ns
        since = cursor / 1e9 if cursor else None
        last = cursor
        pending = b""
        try:
            for chunk in self._follow(url, cid, since):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    ns, message = split_line(line, last)
                    if ns <= cursor:  # stored before a restart (Docker's since is inclusive)
                        continue
                    last = ns
                    self._queue.put(_Line(stream, ns, message))
                if len(pending) > MAX_MESSAGE:  # a line without end: keep it in bounded pieces
                    ns, message = split_line(pending, last)
                    pending = b""
                    self._queue.put(_Line(stream, ns, message))
            if pending:
                ns, message = split_line(pending, last)
                if ns > cursor:
                    self._queue.put(_Line(stream, ns, message))
        except Exception as e:  # the engine went away: the next follow resumes from the cursor
            log.warning("log stream ended", extra={"container": cid[:12], "error": str(e)})
        finally:
            self._queue.put(_Done(cid))

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            batch: dict[int, tuple[LogStream, list[tuple[int, str]], int]] = {}
            finished: list[str] = []
            count = 0
            deadline = None
            while count < BATCH:
                timeout = None if deadline is None else max(deadline - time.monotonic(), 0)
                try:
                    item = self._queue.get(timeout=timeout)
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                if isinstance(item, _Done):
                    finished.append(item.cid)
                    break  # flush now: someone may wait for it (drained)
                entry = batch.setdefault(item.stream.id, (item.stream, [], 0))
                entry[1].append((item.ns // 1_000_000, item.message))
                batch[item.stream.id] = (entry[0], entry[1], max(entry[2], item.ns))
                count += 1
                if deadline is None:
                    deadline = time.monotonic() + FLUSH_SECONDS
            for stream, events, cursor in batch.values():
                try:
                    self.store.append(stream, events, cursor_ns=cursor)
                except Exception as e:  # a deleted group, a full disk: drop this batch, keep going
                    log.warning("cannot store log events", extra={"stream": stream.name, "error": str(e)})
            for cid in finished:
                with self._lock:  # forgotten once stored: the collector keeps only live followers
                    done = self._done.pop(cid, None)
                if done is not None:
                    done.set()
