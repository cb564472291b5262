"""The control-plane loop that makes every Docker host match the task table.

One :class:`Supervisor` per control plane:

* at start it registers the local Docker Engine in every cluster, opens a :class:`Host` per
  container instance, sweeps each host (below) and resumes a :class:`TaskWorker` for every
  task not yet STOPPED: containers that exist are adopted, never recreated;
* it follows the store's ``ecs/task``, ``ecs/container-instance`` and ``ecs/cluster``
  changes: a new task gets a worker, a StopTask wakes the task's worker, a new instance gets
  a host, a new cluster gets the local engine;
* it follows each host's Docker events: an event on a task's container wakes that task's
  worker (a container killed behind Dockyard's back stops its task within moments); when the
  stream comes back after a ``dockerd`` restart every worker on that host re-inspects;
* the sweep removes containers labelled with this installation's owner id whose task is
  unknown, and stops any still running whose task is STOPPED: Dockyard never leaves running
  a container it does not track;
* stopped tasks older than :data:`runner.tasks.RETENTION` are deleted with their containers;
* a task's nameserver is Dockyard's resolver (``task_dns``) at the address the config
  ``task_dns`` gives for its host (:func:`runner.agent.spec.task_dns_address`), once that
  resolver serves it; else the engine's default. Each host's address is served again at start,
  so adopted tasks keep resolving.
* a meshed task (Service Connect) gets its sidecar through ``sidecars`` (the mesh's side,
  :class:`runner.seams.Sidecars`; see :mod:`runner.agent.worker`); without it such a task
  fails to start, saying there is no mesh.

Stopping the supervisor (``dockyard up`` shutting down) leaves task containers running; the
next start adopts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, instances, tasks
from runner.agent import savedlogs
from runner.agent.host import Host, PullFailed
from runner.agent.spec import (
    LABEL_INSTANCE,
    LABEL_OWNER,
    LABEL_TASK,
    instance_address,
    local_engine,
    task_dns_address,
)
from runner.agent.transport import DockerError, DockerTransport, Transport
from runner.agent.worker import TaskWorker
from runner.seams import LogShipper, PullAuth, Sidecars, TaskResolver

__all__ = ["LOCAL_DOCKER", "Supervisor"]

log = logging.getLogger("dockyard.runner")

LOCAL_DOCKER = "unix:///var/run/docker.sock"
SWEEP_EVERY = 30.0


def _environment_resolver(
    store: Store, role_env: Callable[[], dict[str, str]] | None = None,
    agent_env: Callable[[], dict[str, str]] | None = None,
) -> Callable[[Mapping[str, Any]], dict[str, dict[str, str]]]:
    """Per container: ``agent_env()`` (``ECS_AGENT_URI``, runner.taskcreds), variables from
    ``environmentFiles`` then ``secrets`` (Dockyard's secret store), then, for a task with a
    ``taskRoleArn``, ``role_env()`` (runner.taskcreds); raises LookupError naming a missing
    secret."""

    def resolve(defn: Mapping[str, Any]) -> dict[str, dict[str, str]]:
        from runner import secrets

        out: dict[str, dict[str, str]] = {}
        role = role_env() if role_env is not None and defn.get("taskRoleArn") else {}
        agent = agent_env() if agent_env is not None else {}
        for c in defn.get("containerDefinitions") or []:
            env: dict[str, str] = {**agent, **role}
            files = [f.get("value", "") for f in c.get("environmentFiles") or []]
            if files:
                env.update(dict(secrets.resolve_environment_files(store, files)))
            refs = [(s.get("name", ""), s.get("valueFrom", "")) for s in c.get("secrets") or []]
            if refs:
                env.update(secrets.resolve(store, refs))
            if env:
                out[c["name"]] = env
        return out

    return resolve


@dataclass(frozen=True)
class Prewarmed:
    """What :meth:`Supervisor.prewarm` did: on how many hosts, how many images, in how long,
    and what failed (a failure only means the task pulls for itself)."""

    hosts: int
    images: int
    seconds: float
    failures: tuple[str, ...] = ()


class Supervisor:
    """See module docstring. ``transport_for(url)`` builds a host's transport (tests fake it)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        transport_for: Callable[[str], Transport] = DockerTransport,
        pull_auth: PullAuth | None = None,
        task_dns: TaskResolver | None = None,
        task_credentials: Any = None,
        sidecars: Sidecars | None = None,
        logs: LogShipper | None = None,
    ) -> None:
        self.store = store
        self.sidecars = sidecars
        self.logs = logs  # where awslogs containers' output goes (runner.logs.collector)
        self.task_credentials = task_credentials  # runner.taskcreds.TaskCredentials
        self.pull_auth = pull_auth
        self.task_dns = task_dns
        self._dns: dict[str, tuple[str, ...]] = {}
        self._addresses: dict[str, str] = {}
        self.config = config
        self.transport_for = transport_for
        self.local_url = "" if config.docker_host == "none" else (config.docker_host or LOCAL_DOCKER)
        self.hosts: dict[str, Host] = {}
        self.workers: dict[str, asyncio.Task[None]] = {}
        self.handles: dict[str, TaskWorker] = {}
        self.owner = ""
        self.registry = self._registry()
        self._loop_task: asyncio.Task[None] | None = None
        self._sweeps: dict[str, asyncio.Task[None]] = {}
        self._local_info: dict[str, Any] = {}
        self._stopped = False
        self.auth: dict[str, str] | None = None
        self._prewarms: set[asyncio.Future[Any]] = set()

    def _registry(self) -> str:
        host = "127.0.0.1" if self.config.host in ("0.0.0.0", "::", "") else self.config.host
        return Config(host=host).address(self.config.registry_port)

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        since = self.store.revision  # follow every change from here on, even those made
        # while the start below awaits
        self.owner = await instances.owner_id(self.store)
        try:
            self.auth = await self.pull_auth() if self.pull_auth is not None else None
        except Exception as e:  # pulls stay anonymous; a task that needs auth says so
            log.error("no registry credential for the runner", extra={"error": str(e)})
        if self.local_url:
            host = self._host(self.local_url)
            try:
                self._local_info = await host.info()
                await instances.ensure_local(self.store, self.config, self._local_info, self.local_url)
            except DockerError as e:
                log.error("local Docker Engine unavailable", extra={"error": str(e)})
        for inst in instances.instances_in(self.store, self.config, statuses=("ACTIVE", "DRAINING")):
            self._host(inst.docker_host)
        for url in list(self.hosts):
            await self._sweep(url)
            await self.nameservers(self.hosts[url])
        for task_id in data.unstopped_task_ids(self.store):
            self._ensure_worker(task_id)
        self._loop_task = asyncio.create_task(self._follow(since), name="runner-supervisor")

    async def stop(self) -> None:
        self._stopped = True
        running = [self._loop_task, *self.workers.values(), *self._sweeps.values(), *self._prewarms]
        tasks_ = [t for t in running if t]
        for handle in self.handles.values():
            handle.abandon()
        for t in tasks_:
            t.cancel()
        if tasks_:
            await asyncio.wait(tasks_, timeout=10)
        for host in self.hosts.values():
            await host.close()
        self.hosts.clear()

    def _host(self, url: str) -> Host:
        host = self.hosts.get(url)
        if host is None:
            host = Host(url, self.transport_for(url))
            self.hosts[url] = host
            host.watch(lambda ev, u=url: self._on_event(u, ev), lambda u=url: self._on_reconnect(u))
        return host

    async def nameservers(self, host: Host) -> tuple[str, ...]:
        """The nameservers of new tasks on ``host`` (module docstring); () for the engine's
        default. Found once per host; a failure is tried again for the next task."""
        found = self._dns.get(host.url)
        if found is not None or self.task_dns is None:
            return found or ()
        setting = self.config.task_dns
        auto = setting.strip().lower() == "auto"
        gateway = await host.gateway() if auto and local_engine(host.url) else ""
        address = task_dns_address(setting, host.url, gateway)
        if not address or not await self.task_dns.serve(address):
            return ()
        self._dns[host.url] = (address,)
        return (address,)

    async def instance_address(self, instance_id: str) -> str:
        """Where other tasks and this machine reach the host ports of ``instance_id``'s ``bridge``
        tasks (:func:`runner.agent.spec.instance_address`), "" if unknown. Found once per host; a
        failure is tried again next time."""
        url = data.docker_host_of(self.store, instance_id)
        if url is None:
            return ""
        found = self._addresses.get(url)
        if found:
            return found
        gateway = await self._host(url).gateway() if local_engine(url) else ""
        found = instance_address(url, gateway)
        if found:
            self._addresses[url] = found
        return found

    async def prewarm(self, images: Sequence[str], instance_ids: Sequence[str]) -> Prewarmed:
        """Pull ``images`` on the hosts of ``instance_ids``, at most ``prewarm_concurrency`` pulls
        at once, for at most ``prewarm_timeout`` seconds; a task placed there afterwards uses
        the pulled image without pulling again (:meth:`runner.agent.host.Host.pull`)."""
        started = time.monotonic()
        urls = sorted({u for u in (data.docker_host_of(self.store, i) for i in instance_ids) if u})
        gate = asyncio.Semaphore(max(1, self.config.prewarm_concurrency))
        failed: list[str] = []

        async def one(url: str, image: str) -> None:
            async with gate:
                try:
                    await self._host(url).pull(image, self.registry, self.auth, prewarm=True)
                except PullFailed as e:
                    failed.append(f"{image} on {url}: {e}")

        jobs = [asyncio.ensure_future(one(u, i)) for u in urls for i in dict.fromkeys(images)]
        if jobs:
            _, pending = await asyncio.wait(jobs, timeout=self.config.prewarm_timeout)
            for job in pending:
                job.cancel()
            if pending:
                failed.append(f"{len(pending)} pulls still running after {self.config.prewarm_timeout:g} s")
        return Prewarmed(len(urls), len(dict.fromkeys(images)), time.monotonic() - started, tuple(failed))

    def _prewarm_definition(self, key: str) -> None:
        """``prewarm_on_register``: pull a new revision's images on every connected instance."""
        family, _, revision = key.rpartition(":")
        found = data.definition(self.store, family, int(revision)) if revision.isdigit() else None
        if found is None or found.status != "ACTIVE":
            return
        images = [c["image"] for c in found.spec.get("containerDefinitions") or [] if c.get("image")]
        hosts = [i.id for i in instances.instances_in(self.store, self.config) if i.connected]
        if images and hosts:
            job = asyncio.ensure_future(self.prewarm(images, hosts))
            self._prewarms.add(job)
            job.add_done_callback(self._prewarms.discard)

    def host_of(self, instance_id: str) -> Host | None:
        url = data.docker_host_of(self.store, instance_id)
        return self._host(url) if url is not None else None

    # -- workers ---------------------------------------------------------------------------
    def _ensure_worker(self, task_id: str) -> None:
        handle = self.handles.get(task_id)
        task = data.task(self.store, task_id)
        if handle is not None:
            # Most changes of a task are its worker's own reports; only a stop request is news.
            if task is None or task.desired_status == "STOPPED":
                handle.wake()
            return
        if task is None or task.last_status == "STOPPED":
            return
        host = self.host_of(task.instance_id)
        if host is None:
            return
        worker = TaskWorker(
            self.store,
            self.config,
            host,
            task_id,
            registry=self.registry,
            owner=self.owner,
            auth=self.auth,
            environment=_environment_resolver(self.store, self._role_env(task_id), self._agent_env(task_id)),
            dns=self.nameservers,
            sidecars=self.sidecars,
            logs=self.logs,
        )
        self.handles[task_id] = worker
        task = asyncio.create_task(self._run_worker(worker), name=f"task {task_id}")
        self.workers[task_id] = task

    def _role_env(self, task_id: str) -> Callable[[], dict[str, str]] | None:
        creds = self.task_credentials
        return None if creds is None else (lambda: creds.environment(task_id))

    def _agent_env(self, task_id: str) -> Callable[[], dict[str, str]] | None:
        creds = self.task_credentials
        return None if creds is None else (lambda: creds.agent_environment(task_id))

    async def _run_worker(self, worker: TaskWorker) -> None:
        try:
            await worker.run()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task worker failed", extra={"task": worker.task_id})
        finally:
            self.workers.pop(worker.task_id, None)
            self.handles.pop(worker.task_id, None)

    # -- following the store ---------------------------------------------------------------
    async def _follow(self, since: int) -> None:
        last_sweep = time.monotonic()
        topics = [tasks.TOPIC, instances.TOPIC, clusters.TOPIC]
        if self.config.prewarm_on_register:
            topics.append(data.TASKDEF_TOPIC)
        # The flag, not only cancellation, ends the loop: Store.changes waits with wait_for,
        # which can swallow a cancellation that races with a wake-up.
        while not self._stopped:
            try:
                changes = await self.store.changes(since, topics, timeout=SWEEP_EVERY)
                for ch in changes:
                    since = max(since, ch.revision)
                    if ch.topic == tasks.TOPIC:
                        self._ensure_worker(ch.key)
                    elif ch.topic == data.TASKDEF_TOPIC:
                        self._prewarm_definition(ch.key)
                    elif ch.topic == instances.TOPIC:
                        inst = instances.get(self.store, self.config, ch.key)
                        if inst is not None and inst.status == "ACTIVE":
                            self._host(inst.docker_host)
                    elif ch.topic == clusters.TOPIC and self._local_info:
                        await instances.ensure_local(
                            self.store, self.config, self._local_info, self.local_url
                        )
                if time.monotonic() - last_sweep >= SWEEP_EVERY:
                    last_sweep = time.monotonic()
                    for url in list(self.hosts):
                        self._schedule_sweep(url)
                    await self._prune()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("runner supervisor loop")
                await asyncio.sleep(1)

    # -- docker events ---------------------------------------------------------------------
    def _on_event(self, url: str, event: dict[str, Any]) -> None:
        attrs = (event.get("Actor") or {}).get("Attributes") or {}
        if attrs.get(LABEL_OWNER) != self.owner:
            return
        task_id = str(attrs.get(LABEL_TASK, "")).rsplit("/", 1)[-1]
        handle = self.handles.get(task_id)
        if handle is not None:
            handle.wake()
        elif event.get("status") in ("start", "unpause", "restart"):
            self._schedule_sweep(url)

    def _on_reconnect(self, url: str) -> None:
        for handle in self.handles.values():
            if handle.host.url == url:
                handle.wake()
        self._schedule_sweep(url)

    def _schedule_sweep(self, url: str) -> None:
        if url in self._sweeps and not self._sweeps[url].done():
            return
        self._sweeps[url] = asyncio.create_task(self._sweep(url), name=f"sweep {url}")

    async def _sweep(self, url: str) -> None:
        """Remove this installation's containers whose task is unknown; stop the running ones
        of STOPPED tasks (see module docstring)."""
        host = self.hosts.get(url)
        if host is None:
            return
        try:
            found = await host.labelled()
        except DockerError as e:
            log.warning("cannot list containers", extra={"host": url, "error": str(e)})
            return
        for c in found:
            labels = c.get("Labels") or {}
            if labels.get(LABEL_OWNER) != self.owner:
                continue
            task_id = str(labels.get(LABEL_TASK, "")).rsplit("/", 1)[-1]
            task = data.task(self.store, task_id)
            try:
                if self._orphan(str(labels.get(LABEL_INSTANCE, ""))):
                    # its instance was deregistered with force: left running; removed once
                    # exited and its task is forgotten
                    if task is None and c.get("State") != "running":
                        await host.remove(c["Id"])
                elif task is None:
                    log.info("removing untracked container", extra={"container": c.get("Id")})
                    await host.remove(c["Id"])
                elif task.last_status == "STOPPED" and c.get("State") == "running":
                    await host.stop(c["Id"], 2)
                elif task.last_status != "STOPPED" and task_id not in self.handles:
                    self._ensure_worker(task_id)
            except DockerError as e:
                log.warning("sweep failed", extra={"container": c.get("Id"), "error": str(e)})

    def _orphan(self, instance: str) -> bool:
        """Whether ``instance`` (an id or ARN) is deregistered: its tasks' containers are orphans."""
        found = data.instance(self.store, instance.rsplit("/", 1)[-1]) if instance else None
        return found is not None and found.status == "INACTIVE"

    async def _prune(self) -> None:
        cutoff = time.time() - tasks.RETENTION
        for task in data.expired_tasks(self.store, cutoff):
            host = None if self._orphan(task.instance_id) else self.host_of(task.instance_id)
            for runtime_id in task.runtime_ids:
                if host is not None:
                    with contextlib.suppress(DockerError):
                        await host.remove(runtime_id)
            if self.config.data_dir:
                await asyncio.to_thread(savedlogs.remove, self.config.data_dir, task.id)
            await data.delete_task(self.store, task.id)
