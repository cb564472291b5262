"""Drive one task through its life on one host, idempotently.

:class:`TaskWorker` reads the task (:class:`runner.data.Task`), makes the host match it and
reports progress with :func:`runner.data.update_task`. Every step can be repeated after a crash
of the control plane: containers have names derived from the task id (creating one that exists returns it), a
started container is never started again, and a task already ``ACTIVATING`` or ``RUNNING``
is only watched. :meth:`TaskWorker.wake` is called on every Docker event of the task's
containers (and on a StopTask) so the worker re-inspects at once instead of polling.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import data, instances
from runner.agent import lifecycle, savedlogs, spec
from runner.agent.host import Host, PullFailed
from runner.agent.lifecycle import Observed
from runner.agent.transport import DockerError
from runner.data import Binding, Task, TaskNetwork
from runner.taskshapes import task_arn

__all__ = ["StartFailed", "TaskWorker"]

log = logging.getLogger("dockyard.runner")

START_TIMEOUT = 180.0  # seconds for dependsOn conditions to be met (ECS's default startTimeout)
RESYNC = 10.0  # seconds between inspections of a quiet running task
DEFAULT_STOP_TIMEOUT = 30  # seconds of SIGTERM grace, as ECS_CONTAINER_STOP_TIMEOUT


class StartFailed(Exception):
    """The task cannot start; the message is its ``stoppedReason``."""


Resolver = Callable[[Mapping[str, Any]], Mapping[str, Mapping[str, str]]]
Hook = Callable[[Any], Awaitable[None]]
Nameservers = Callable[[Host], Awaitable[tuple[str, ...]]]


class TaskWorker:
    """One task's life on ``host`` (see module docstring)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        host: Host,
        task_id: str,
        *,
        registry: str = "",
        owner: str = "",
        auth: dict[str, str] | None = None,
        environment: Resolver | None = None,
        dns: Nameservers | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.host = host
        self.task_id = task_id
        self.registry = registry
        self.owner = owner
        self.auth = auth
        self.environment = environment or (lambda defn: {})
        self.dns = dns
        self._wake = asyncio.Event()
        self.ids: dict[str, str] = {}  # container name -> docker id
        self.seen: dict[str, Observed] = {}
        self.bindings: dict[str, tuple[Binding, ...]] = {}
        self.abandoned = False

    def wake(self) -> None:
        self._wake.set()

    def abandon(self) -> None:
        """The control plane is stopping: end without touching the containers (the next
        start adopts them). Set as well as cancelling the worker's task, because a
        cancellation can be swallowed by a wait that completes at the same moment."""
        self.abandoned = True
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        # asyncio.timeout, not wait_for: wait_for can swallow a cancellation that races
        # with the wake-up (bpo-42130), and a worker must stop when the supervisor stops.
        try:
            async with asyncio.timeout(seconds):
                await self._wake.wait()
        except TimeoutError:
            pass
        self._wake.clear()

    def _task(self) -> Task | None:
        return data.task(self.store, self.task_id)

    def _stopping(self) -> bool:
        if self.abandoned:
            raise asyncio.CancelledError
        task = self._task()
        return task is None or task.desired_status == "STOPPED"

    async def run(self) -> None:
        """The whole life: start (unless already past it), watch, stop. Never raises
        except CancelledError (the control plane shutting down leaves containers running)."""
        task = self._task()
        if task is None or task.last_status == "STOPPED":
            return
        self.defn = dict(task.definition)
        self.defs = task.container_definitions
        self.placement = spec.Placement(
            task_id=task.id,
            task_arn=task_arn(self.config, task.cluster, task.id),
            cluster=task.cluster,
            instance_arn=instances.instance_arn(self.config, task.cluster, task.instance_id),
            registry=self.registry,
            owner=self.owner,
            overrides=dict(task.overrides),
        )
        self.network = task.network
        self.ids = {c.name: c.runtime_id for c in task.containers if c.runtime_id}
        try:
            if task.desired_status != "STOPPED":
                if lifecycle.status_index(task.last_status) < lifecycle.status_index("ACTIVATING"):
                    await self._start()
                await self._watch()
        except StartFailed as e:
            await data.request_task_stop(self.store, self.task_id, lifecycle.FAILED_TO_START, str(e)[:1024])
        except asyncio.CancelledError:
            raise
        except Exception as e:  # a Docker failure mid-start: stop what exists, say why
            log.exception("task failed", extra={"task": self.task_id})
            await data.request_task_stop(
                self.store, self.task_id, lifecycle.FAILED_TO_START, f"TaskFailedToStart: {e}"[:1024]
            )
        if self.abandoned:
            return
        await self._stop()

    # -- start -----------------------------------------------------------------------------
    async def _start(self) -> None:
        mode = self.defn.get("networkMode") or "bridge"
        if self.dns is not None:
            dns = await self.dns(self.host)
            self.placement = spec.Placement(**{**self.placement.__dict__, "dns": dns})
        if mode == "awsvpc":
            await self._provision()
        if self._stopping():
            return
        await data.update_task(self.store, self.task_id, last_status="PENDING", pull_started_at=time.time())
        images = {}
        for c in self.defs:
            if c["image"] not in images:
                try:
                    images[c["image"]] = await self.host.pull(c["image"], self.registry, self.auth)
                except PullFailed as e:
                    raise StartFailed(
                        f"CannotPullContainerError: pull image manifest has been retried 1 time(s): {e}"
                    ) from None
        await data.update_task(self.store, self.task_id, pull_stopped_at=time.time())
        try:
            env = self.environment(self.defn)
        except LookupError as e:
            raise StartFailed(
                f"ResourceInitializationError: unable to pull secrets or registry auth: secret {e} not found"
            ) from None
        placement = spec.Placement(
            **{**self.placement.__dict__, "pause_id": self.network.pause, "environment": env}
        )
        for s, c in zip(spec.container_specs(self.defn, placement), self.defs, strict=True):
            s = spec.ContainerSpec(**{**s.__dict__, "image": images[c["image"]]})
            try:
                self.ids[c["name"]] = await self.host.create(s)
            except DockerError as e:
                raise StartFailed(f"CannotCreateContainerError: {e}") from None
        await self._report(image_refs=images)
        started: set[str] = {n for n, o in self.seen.items() if o.started}
        deadline = time.monotonic() + START_TIMEOUT
        while len(started) < len(self.defs):
            if self._stopping():
                return
            await self._observe()
            started |= {n for n, o in self.seen.items() if o.started}
            ready, failed = lifecycle.next_to_start(self.defs, self.seen, started)
            if failed:
                raise StartFailed(f"TaskFailedToStart: {failed}")
            for name in ready:
                try:
                    await self.host.start(self.ids[name])
                except DockerError as e:
                    raise StartFailed(f"CannotStartContainerError: {e}") from None
                started.add(name)
            if lifecycle.essential_exit(self.defs, self.seen):
                return
            if len(started) < len(self.defs):
                if time.monotonic() > deadline:
                    raise StartFailed(
                        "TaskFailedToStart: dependsOn conditions not met within the start timeout"
                    )
                await self._sleep(0.5)
        await self._observe()
        await data.update_task(self.store, self.task_id, last_status="ACTIVATING")
        now = time.time()
        await self._report(last_status="RUNNING", started_at=now, connectivity_at=now)

    async def _provision(self) -> None:
        """The awsvpc network namespace: a pause container with its own bridge address."""
        await self.host.ensure_pause_image()
        pause = spec.pause_spec(self.placement)
        cid = await self.host.create(pause)
        info = await self.host.inspect(cid)
        if info and not (info.get("State") or {}).get("Running"):
            await self.host.start(cid)
            info = await self.host.inspect(cid)
        settings = (info or {}).get("NetworkSettings") or {}
        ip = settings.get("IPAddress") or next(
            (n.get("IPAddress") for n in (settings.get("Networks") or {}).values() if n.get("IPAddress")), ""
        )
        self.network = TaskNetwork(cid, ip or "", f"eni-{self.task_id[:17]}")
        await data.update_task(self.store, self.task_id, network=self.network)

    # -- watch -----------------------------------------------------------------------------
    async def _observe(self) -> None:
        """Inspect every created container (state, health, published ports)."""
        for c in self.defs:
            cid = self.ids.get(c["name"])
            if cid is None:
                continue
            info = await self.host.inspect(cid)
            self.seen[c["name"]] = lifecycle.observe(info)
            if info:
                self.bindings[c["name"]] = _bindings(info)

    async def _report(
        self, image_refs: Mapping[str, str] | None = None, final: bool = False, **fields: Any
    ) -> None:
        task = self._task()
        if task is None:
            return
        states = {c.name: c for c in task.containers}
        for c in self.defs:
            name = c["name"]
            st = task.state_of(name)
            if name in self.ids:
                st = replace(st, runtime_id=self.ids[name])
            if image_refs and c["image"] in image_refs:
                st = replace(st, image=image_refs[c["image"]])
            o = self.seen.get(name)
            if o is not None:
                st = replace(
                    st,
                    last_status="STOPPED" if final else lifecycle.container_status(o),
                    health=o.health,
                    exit_code=o.exit_code if o.exit_code is not None else st.exit_code,
                    reason=o.reason or st.reason,
                )
            if name in self.bindings:
                st = replace(st, bindings=self.bindings[name])
            states[name] = st
        await data.update_task(
            self.store,
            self.task_id,
            containers=tuple(states.values()),
            health=lifecycle.task_health(self.defs, self.seen),
            **fields,
        )

    async def _watch(self) -> None:
        """Until the task should stop: keep container states and health current; stop the
        task when an essential container exits."""
        while not self._stopping():
            try:
                await self._observe()
            except DockerError as e:  # dockerd away for a moment: try again
                log.warning("cannot inspect task", extra={"task": self.task_id, "error": str(e)})
                await self._sleep(1.0)
                continue
            await self._report()
            name = lifecycle.essential_exit(self.defs, self.seen)
            if name:
                o = self.seen[name]
                await data.request_task_stop(
                    self.store,
                    self.task_id,
                    lifecycle.ESSENTIAL_EXITED,
                    f"Essential container in task exited ({name}: exit code {o.exit_code})",
                )
                return
            await self._sleep(RESYNC)

    # -- stop ------------------------------------------------------------------------------
    async def _stop(self) -> None:
        task = self._task()
        if task is None or task.last_status == "STOPPED":
            return
        await data.update_task(self.store, self.task_id, last_status="DEACTIVATING")
        await data.update_task(self.store, self.task_id, last_status="STOPPING")
        timeouts = {c["name"]: int(c.get("stopTimeout") or DEFAULT_STOP_TIMEOUT) for c in self.defs}
        for wave in lifecycle.stop_waves(self.defs):
            await asyncio.gather(*(self._stop_one(self.ids[n], timeouts[n]) for n in wave if n in self.ids))
        try:
            await self._observe()
        except DockerError:
            pass
        await data.update_task(self.store, self.task_id, last_status="DEPROVISIONING")
        if self.network.pause:
            await self._quietly(self.host.remove(self.network.pause))
        volumes = spec.task_volumes(self.defn, self.task_id)
        if volumes:  # Docker keeps a volume while any container, even a stopped one, uses it
            for name, cid in self.ids.items():
                await self._save_logs(name, cid)  # the container and its logs go now
                await self._quietly(self.host.remove(cid))
            for name in volumes:
                await self._quietly(self.host.remove_volume(name))
        now = time.time()
        for c in self.defs:  # a container never created or never started is STOPPED now too
            self.seen.setdefault(c["name"], Observed())
        await self._report(final=True, last_status="STOPPED", stopped_at=now, execution_stopped_at=now)

    async def _save_logs(self, name: str, cid: str) -> None:
        """Keep the container's logs in the data dir (``dockyard logs`` after it is removed)."""
        if not self.config.data_dir:
            return
        try:
            data = await self.host.logs(cid, savedlogs.MAX_LOG_LINES)
            await asyncio.to_thread(savedlogs.save, self.config.data_dir, self.task_id, name, data)
        except (DockerError, OSError) as e:
            log.warning("cannot save container logs", extra={"task": self.task_id, "error": str(e)})

    async def _stop_one(self, cid: str, timeout: int) -> None:
        await self._quietly(self.host.stop(cid, timeout))

    @staticmethod
    async def _quietly(aw: Awaitable[Any]) -> None:
        try:
            await aw
        except DockerError as e:
            log.warning("docker call failed while stopping", extra={"error": str(e)})


def _bindings(info: Mapping[str, Any]) -> tuple[Binding, ...]:
    """The published ports of a ``docker inspect`` result."""
    ports = ((info.get("NetworkSettings") or {}).get("Ports")) or {}
    out = []
    for key, binds in ports.items():
        port, _, proto = key.partition("/")
        for b in binds or []:
            if b.get("HostPort"):
                host_port = int(b["HostPort"])
                out.append(Binding(int(port), host_port, proto or "tcp", b.get("HostIp") or "0.0.0.0"))
    return tuple(out)
