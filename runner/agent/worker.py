"""Drive one task through its life on one host, idempotently.

:class:`TaskWorker` reads the task (:class:`runner.data.Task`), makes the host match it and
reports progress with :func:`runner.data.update_task`. Every step can be repeated after a crash
of the control plane: containers have names derived from the task id (creating one that exists returns it), a
started container is never started again, and a task already ``ACTIVATING`` or ``RUNNING``
is only watched. :meth:`TaskWorker.wake` is called on every Docker event of the task's
containers (and on a StopTask) so the worker re-inspects at once instead of polling.

A meshed task (``task.connect`` set, Service Connect; :mod:`runner.agent.meshed`, docs/mesh.md)
gets, in this order: its pause container (aliases in ``ExtraHosts``, a ``bridge`` task's ports
published on it), its app containers created, the sidecar image imported into the host's engine
if it lacks it (``sidecars.image_tar()``), the redirect run to completion, the sidecar started
with ``sidecars.bootstrap(...)`` (the xDS address from ``sidecars.xds_address(<the engine's
bridge gateway>)``); the app containers start once ``sidecars.ready(task_arn, ...)`` says the
sidecar ACKed its first complete configuration, within ``ready_timeout`` seconds, else the
task stops as failed to start. At stop, a task whose sidecar was ready first waits until
``sidecars.drained(task_arn, ...)`` says no other sidecar routes to it any more (the service
loop deregistered it from discovery; the mesh pushed EDS without it and every sidecar ACKed),
at most ``config.mesh_drain_timeout`` seconds (and a task behind a load balancer waits until
its targets are deregistered and have drained: ``_drain_targets``); then the app containers
stop, then the sidecar, then the pause container goes. Without ``sidecars`` a meshed task
fails to start, saying so.
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
from runner.agent import lifecycle, meshed, savedlogs, spec
from runner.agent.host import Host, PullFailed
from runner.agent.lifecycle import Observed
from runner.agent.transport import DockerError
from runner.data import Binding, Task, TaskNetwork
from runner.seams import LogShipper, Sidecars
from runner.taskshapes import task_arn

__all__ = ["StartFailed", "TaskWorker"]

log = logging.getLogger("dockyard.runner")

START_TIMEOUT = 180.0  # seconds for dependsOn conditions to be met (ECS's default startTimeout)
RESYNC = 10.0  # seconds between inspections of a quiet running task
DEFAULT_STOP_TIMEOUT = 30  # seconds of SIGTERM grace, as ECS_CONTAINER_STOP_TIMEOUT
SIDECAR_READY_TIMEOUT = 30.0  # seconds for a meshed task's sidecar to ACK its first configuration
LOGS_DRAIN_TIMEOUT = 10.0  # seconds a stop waits for the collector to store a container's last lines
REDIRECT_TIMEOUT = 30.0  # seconds for the redirect (one iptables call) to complete
DEREGISTER_WAIT = 10.0  # seconds a stopping task waits for the service loop to deregister its targets
MAX_DEREGISTRATION_DELAY = 3600.0  # ELBv2's bound on deregistration_delay.timeout_seconds


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
        sidecars: Sidecars | None = None,
        ready_timeout: float = SIDECAR_READY_TIMEOUT,
        logs: LogShipper | None = None,
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
        self.sidecars = sidecars
        self.ready_timeout = ready_timeout
        self.logs = logs
        self.sidecar = ""  # the ECS name of a meshed task's sidecar (runner.agent.meshed)
        self.sidecar_ready = False
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
        if task is not None and task.last_status == "STOPPED":
            # Only this worker finishes a task, unless its instance was deregistered with force
            # (runner.data.orphan_tasks_on): an orphan's containers are left as they are.
            self.abandoned = True
            return True
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
        self.connect = task.connect
        self.service = task.service or task.family
        self.sidecar = meshed.sidecar_name(task.id) if task.connect is not None else ""
        self.sidecar_ready = lifecycle.status_index(task.last_status) >= lifecycle.status_index("ACTIVATING")
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
        if self.connect is not None:
            self._check_mesh(mode)
        if mode == "awsvpc" or self.connect is not None:
            await self._provision()
        if self._stopping():
            return
        await data.update_task(self.store, self.task_id, last_status="PENDING", pull_started_at=time.time())
        images = {}
        for c in self.defs:
            if c["image"] not in images:
                try:
                    images[c["image"]] = await self.host.pull(c["image"], self.registry, self.auth,
                                                              fresh=self.config.prewarm_fresh)
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
        if self.logs is not None:  # awslogs: the group exists (or is created) before the start
            wanted = [c.get("logConfiguration") for c in self.defs]
            if self.connect is not None:
                wanted.append(self.connect.log_configuration)
            for configuration in wanted:
                reason = await self.logs.prepare(configuration)
                if reason:
                    raise StartFailed(f"CannotStartContainerError: ResourceInitializationError: {reason}")
        placement = spec.Placement(**{**self.placement.__dict__, "pause_id": self.network.pause,
                                       "environment": env, "meshed": self.connect is not None})
        for s, c in zip(spec.container_specs(self.defn, placement), self.defs, strict=True):
            s = spec.ContainerSpec(**{**s.__dict__, "image": images[c["image"]]})
            try:
                self.ids[c["name"]] = await self.host.create(s)
            except DockerError as e:
                raise StartFailed(f"CannotCreateContainerError: {e}") from None
        await self._report(image_refs=images)
        if self.connect is not None:
            await self._start_sidecar(placement)
            if self._stopping():
                return
        apps = {c["name"] for c in self.defs}  # (self.seen also holds a meshed task's sidecar)
        started: set[str] = {n for n, o in self.seen.items() if o.started and n in apps}
        deadline = time.monotonic() + START_TIMEOUT
        while len(started) < len(self.defs):
            if self._stopping():
                return
            await self._observe()
            started |= {n for n, o in self.seen.items() if o.started and n in apps}
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

    def _check_mesh(self, mode: str) -> None:
        if self.sidecars is None:
            raise StartFailed("ResourceInitializationError: Service Connect is not available: "
                              "this Dockyard runs no mesh to give the task its sidecar")
        if mode not in meshed.MESHED_MODES:
            raise StartFailed(f"ResourceInitializationError: Service Connect needs networkMode bridge "
                              f"or awsvpc, not {mode}")

    async def _provision(self) -> None:
        """The task's network namespace: a pause container with its own bridge address (awsvpc,
        and a meshed task in either mode: see the module docstring)."""
        await self.host.ensure_pause_image()
        if self.connect is not None:
            pause = meshed.pause_spec(self.defn, self.placement, self.connect)
        else:
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
        if (self.defn.get("networkMode") or "bridge") == "awsvpc":
            self.network = TaskNetwork(cid, ip or "", f"eni-{self.task_id[:17]}")
        else:  # a meshed bridge task: its ports are published on the pause container
            self.network = TaskNetwork(cid)
            if self.connect is not None and info:
                found = _bindings(info)
                self.bindings.update(meshed.split_bindings(self.defs, self.connect, self.task_id, found))
        await data.update_task(self.store, self.task_id, network=self.network)

    async def _start_sidecar(self, placement: spec.Placement) -> None:
        """A meshed task's redirect and sidecar, until the sidecar is ready (module docstring);
        raises StartFailed."""
        assert self.sidecars is not None and self.connect is not None
        sidecars, name = self.sidecars, self.sidecar
        try:
            await self.host.ensure_image(sidecars.image, sidecars.image_tar, sidecars.import_changes())
        except (DockerError, OSError, RuntimeError, ValueError) as e:
            raise StartFailed(f"CannotPullContainerError: the Service Connect image {sidecars.image} "
                              f"cannot be loaded into the host's engine: {e}") from None
        if name not in self.ids:  # not yet done (a sidecar created means the redirect was run)
            await self._redirect(placement)
        if self._stopping():
            return
        arn = self.placement.task_arn
        try:
            xds = await sidecars.xds_address(await self.host.gateway())
            boot = sidecars.bootstrap(arn, self.service, xds)
        except (OSError, RuntimeError, ValueError) as e:
            raise StartFailed(f"ResourceInitializationError: no control plane for the Service Connect "
                              f"proxy: {e}") from None
        try:
            self.ids[name] = await self.host.create(meshed.sidecar_spec(placement, sidecars.image, boot))
        except DockerError as e:
            raise StartFailed(f"CannotCreateContainerError: {name}: {e}") from None
        await self._observe()
        if not self.seen[name].started:
            try:
                await self.host.start(self.ids[name])
            except DockerError as e:
                raise StartFailed(f"CannotStartContainerError: {name}: {e}") from None
        await self._report()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        while not self._stopping():
            asked = loop.time()
            if await sidecars.ready(arn, max(0.05, min(1.0, deadline - asked))):
                self.sidecar_ready = True
                await self._observe()
                await self._report()
                return
            await self._observe()
            o = self.seen[name]
            if o.exit_code is not None:
                raise StartFailed(f"ResourceInitializationError: the Service Connect proxy {name} exited "
                                  f"(exit code {o.exit_code}) before it got its configuration: "
                                  f"{await self._last_lines(self.ids[name])}")
            if loop.time() >= deadline:
                raise StartFailed(f"ResourceInitializationError: the Service Connect proxy {name} did not "
                                  f"get its configuration from Dockyard's xDS server within "
                                  f"{self.ready_timeout:g} s")
            if loop.time() - asked < 0.05:  # an answer at once: do not spin
                await asyncio.sleep(0.05)

    async def _redirect(self, placement: spec.Placement) -> None:
        """Run the redirect container to completion, then remove it; raises StartFailed."""
        assert self.sidecars is not None and self.connect is not None
        try:
            rid = await self.host.create(meshed.redirect_spec(placement, self.sidecars.image, self.connect))
            if not lifecycle.observe(await self.host.inspect(rid)).started:
                await self.host.start(rid)
        except DockerError as e:
            raise StartFailed(f"ResourceInitializationError: the Service Connect redirect: {e}") from None
        deadline = time.monotonic() + REDIRECT_TIMEOUT
        while True:
            o = lifecycle.observe(await self.host.inspect(rid))
            if o.exit_code is not None:
                break
            if self._stopping():  # the stop removes it
                return
            if time.monotonic() > deadline:
                o = Observed(exit_code=-1, reason="timed out")
                break
            await self._sleep(0.2)
        if o.exit_code != 0:
            lines = await self._last_lines(rid)
            await self._quietly(self.host.remove(rid))
            raise StartFailed(f"ResourceInitializationError: the Service Connect redirect (iptables in the "
                              f"task's network namespace) failed with exit code {o.exit_code}: {lines}")
        await self._quietly(self.host.remove(rid))

    async def _last_lines(self, cid: str) -> str:
        try:
            text = (await self.host.logs(cid, 5)).decode(errors="replace")
        except DockerError:
            return ""
        return " / ".join(line.strip() for line in text.splitlines() if line.strip())[-400:]

    # -- watch -----------------------------------------------------------------------------
    async def _observe(self) -> None:
        """Inspect every created container (state, health, published ports; a meshed task's
        ports are published on its pause container, read once at provisioning)."""
        for name in [c["name"] for c in self.defs] + ([self.sidecar] if self.sidecar else []):
            cid = self.ids.get(name)
            if cid is None:
                continue
            info = await self.host.inspect(cid)
            self.seen[name] = lifecycle.observe(info)
            if info and self.connect is None:
                self.bindings[name] = _bindings(info)

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
        health = lifecycle.task_health(self.defs, self.seen)
        if self.sidecar in self.ids:
            states[self.sidecar] = self._sidecar_state(task, final)
            if states[self.sidecar].health == "UNHEALTHY" and not final:
                health = "UNHEALTHY"  # not essential, but the task cannot reach its mesh any more
        await data.update_task(
            self.store,
            self.task_id,
            containers=tuple(states.values()),
            health=health,
            **fields,
        )

    def _sidecar_state(self, task: Task, final: bool) -> data.ContainerState:
        """The sidecar as ECS shows its Service Connect container: HEALTHY once it is ready and
        running, UNHEALTHY once it has exited."""
        st = replace(task.state_of(self.sidecar), runtime_id=self.ids[self.sidecar])
        if self.sidecars is not None:
            st = replace(st, image=self.sidecars.image)
        o = self.seen.get(self.sidecar)
        if o is not None:
            health = "HEALTHY" if self.sidecar_ready else "UNKNOWN"
            if o.exit_code is not None:
                health = "UNHEALTHY"
            st = replace(st, last_status="STOPPED" if final else lifecycle.container_status(o), health=health,
                         exit_code=o.exit_code if o.exit_code is not None else st.exit_code,
                         reason=o.reason or st.reason)
        if self.sidecar in self.bindings:
            st = replace(st, bindings=self.bindings[self.sidecar])
        return st

    async def _watch(self) -> None:
        """Until the task should stop: keep container states and health current; stop the
        task when an essential container exits."""
        await self._ship_logs()
        while not self._stopping():
            try:
                await self._observe()
            except DockerError as e:  # dockerd away for a moment: try again
                log.warning("cannot inspect task", extra={"task": self.task_id, "error": str(e)})
                await self._sleep(1.0)
                continue
            await self._report()
            await self._ship_logs(running_only=True)  # a stream cut by a dockerd restart resumes
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
        await self._ship_logs()  # a task stopped while the control plane was down: its last lines
        await self._drain_targets()
        await self._drain()
        await data.update_task(self.store, self.task_id, last_status="STOPPING")
        timeouts = {c["name"]: int(c.get("stopTimeout") or DEFAULT_STOP_TIMEOUT) for c in self.defs}
        waves = lifecycle.stop_waves(self.defs)
        if self.sidecar:  # the app first, then its sidecar
            waves = meshed.stop_waves(self.defs, self.task_id)
            timeouts[self.sidecar] = meshed.SIDECAR_STOP_TIMEOUT
        for wave in waves:
            await asyncio.gather(*(self._stop_one(self.ids[n], timeouts[n]) for n in wave if n in self.ids))
        await self._logs_drained()
        try:
            await self._observe()
        except DockerError:
            pass
        await data.update_task(self.store, self.task_id, last_status="DEPROVISIONING")
        if self.sidecar:  # a redirect left by a start that failed
            await self._quietly(self.host.remove(meshed.docker_name(self.task_id, meshed.REDIRECT_NAME)))
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
        if self.sidecar in self.ids:
            self.seen.setdefault(self.sidecar, Observed())
        await self._report(final=True, last_status="STOPPED", stopped_at=now, execution_stopped_at=now)

    async def _drain_targets(self) -> None:
        """A task registered in target groups (``loadBalancers``) stops only after the service
        loop deregistered it and the groups' deregistration delay passed (connection draining;
        the registrations' ``drain_until``); a task stopped behind the scheduler's back waits at
        most :data:`DEREGISTER_WAIT` seconds for its deregistration."""
        asked = time.monotonic()
        while True:
            regs = data.targets_of_task(self.store, self.task_id)
            if not regs:
                return
            if all(r.drain_until is not None for r in regs):
                wait = max(r.drain_until or 0.0 for r in regs) - time.time()
                if wait > 0:
                    log.info("draining targets", extra={"task": self.task_id, "seconds": round(wait, 3)})
                    await asyncio.sleep(min(wait, MAX_DEREGISTRATION_DELAY))
                return
            if time.monotonic() - asked > DEREGISTER_WAIT:
                log.warning("targets not deregistered", extra={"task": self.task_id})
                return
            await asyncio.sleep(0.1)

    async def _drain(self) -> None:
        """A meshed task leaves every other sidecar's endpoints before its app stops (module
        docstring); one whose sidecar never got ready was never an endpoint."""
        if not (self.sidecar and self.sidecar_ready and self.sidecars is not None):
            return
        bound = self.config.mesh_drain_timeout
        if bound <= 0:
            return
        started = time.monotonic()
        try:
            done = await self.sidecars.drained(self.placement.task_arn, bound)
        except Exception as e:  # the mesh failing must not keep the task from stopping
            log.warning("drain failed", extra={"task": self.task_id, "error": str(e)})
            return
        took = time.monotonic() - started
        if not done:
            log.warning("drain bound reached", extra={"task": self.task_id, "seconds": bound})
        else:
            log.info("drained", extra={"task": self.task_id, "seconds": round(took, 3)})

    async def _ship_logs(self, running_only: bool = False) -> None:
        """Follow the output of each ``awslogs`` container into its log stream (again after a
        control-plane restart, or a follower's stream cut while its container runs: the
        collector resumes where it stopped; following one already followed is a no-op)."""
        if self.logs is None:
            return
        followed = [(c["name"], c.get("logConfiguration")) for c in self.defs]
        if self.sidecar and self.connect is not None:  # Service Connect's logConfiguration
            followed.append((self.sidecar, self.connect.log_configuration))
        for name, configuration in followed:
            cid = self.ids.get(name)
            if cid and (not running_only or self.seen.get(name, Observed()).running):
                try:
                    await self.logs.follow(self.host.url, cid, self.task_id, name, configuration)
                except Exception as e:  # logs must never keep a task from running
                    log.warning("cannot follow container logs", extra={"task": self.task_id, "error": str(e)})

    async def _logs_drained(self) -> None:
        """The collector stored the stopped containers' last lines (before any is removed)."""
        if self.logs is None:
            return
        await asyncio.gather(*(self.logs.drained(cid, LOGS_DRAIN_TIMEOUT) for cid in self.ids.values()))

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
