"""The services' I/O shell: one reconcile loop over every service of the control plane.

The loop wakes on store changes of tasks, services and container instances (and every
:data:`TICK` seconds, sooner when a start backoff ends), builds each service's view, asks
:func:`runner.deployments.plan` what to do and applies the answer:

* starts through :func:`runner.tasks.launch` (``group: service:NAME``, ``startedBy: <deployment
  id>``); a task that fits nowhere becomes a service event naming why;
* stops through :func:`runner.tasks.request_stop` (``ServiceSchedulerInitiated``), after the
  task is deregistered from discovery;
* rollout states, rollbacks (a new deployment of the last COMPLETED deployment's task
  definition), drained deployments removed, and ``events[]`` worded as ECS words them;
* ``serviceRegistries``: a task is registered in discovery (Cloud Map instance id = task id,
  with ``AWS_INSTANCE_IPV4``/``AWS_INSTANCE_PORT`` and the ``ECS_*`` attributes) once RUNNING
  and, if it has a health check, HEALTHY; it is deregistered as soon as it is no longer
  wanted, before its stop is requested when the scheduler stops it.

Everything it knows lives in the store, so a control plane killed at any point resumes
without duplicating tasks: tasks are recorded with their deployment in the transaction that
places them, and each pass recomputes from what is recorded. Service rows are written with
the version they were read at; a concurrent UpdateService wins and the next pass replans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner import data, deployments, instances, query, services, tasks
from runner.agent import lifecycle
from runner.scheduler.model import REASON_TEXT
from runner.seams import InstanceRegistry

__all__ = ["TICK", "ServiceLoop", "placement_message"]

log = logging.getLogger("dockyard.runner.services")

TICK = 2.0
TOPICS = [tasks.TOPIC, services.TOPIC, instances.TOPIC]
REPEAT_EVENT_AFTER = 300.0  # an identical event is written again only after this long
TROUBLESHOOTING = "For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."


# -- messages (as ECS writes them) ------------------------------------------------------------
def placement_message(service: str, reason: str, instance_id: str = "", missing: str = "") -> str:
    """``(service x) was unable to place a task because no container instance met all of its
    requirements. The closest matching (container-instance ID) has insufficient memory
    available. For more information, see the Troubleshooting section ...``"""
    head = (
        f"(service {service}) was unable to place a task because no container instance met all of "
        "its requirements."
    )
    if not instance_id:
        why = reason or "No Container Instances were found in your cluster."
        return f"{head} Reason: {why} {TROUBLESHOOTING}"
    why = REASON_TEXT.get(reason, f'encountered error "{reason}"')
    if missing:  # ATTRIBUTE: ECS does not say which; Dockyard does
        why += f" ({missing})"
    return f"{head} The closest matching (container-instance {instance_id}) {why}. {TROUBLESHOOTING}"


def _tasks_list(ids: list[str]) -> str:
    return " ".join(f"(task {i})" for i in ids)


# -- views ------------------------------------------------------------------------------------
def _has_check(defn: Mapping[str, Any]) -> bool:
    return any(
        c.get("essential", True) and (c.get("healthCheck") or {}).get("command")
        for c in defn.get("containerDefinitions") or []
    )


def _task_state(row: Any) -> deployments.TaskState:
    return deployments.TaskState(
        id=row["id"],
        deployment=row["started_by"],
        last_status=row["last_status"],
        desired_status=row["desired_status"],
        health=row["health"],
        checked=_has_check(json.loads(row["definition"])),
        instance=row["instance_id"],
        stop_code=row["stop_code"],
        stopped_reason=row["stopped_reason"],
        ever_running=row["started_at"] is not None,
        created_at=row["created_at"],
        stopped_at=row["stopped_at"]
        or (row["stopping_at"] if row["desired_status"] == "STOPPED" else None),
    )


def _spec(spec: Mapping[str, Any]) -> deployments.Spec:
    cfg = spec["deploymentConfiguration"]
    breaker = cfg.get("deploymentCircuitBreaker") or {}
    return deployments.Spec(
        desired=spec["desiredCount"],
        min_healthy_percent=cfg["minimumHealthyPercent"],
        max_percent=cfg["maximumPercent"],
        strategy=spec["schedulingStrategy"],
        breaker=bool(breaker.get("enable")),
        rollback=bool(breaker.get("rollback")),
    )


def _dep(d: Mapping[str, Any]) -> deployments.Deployment:
    return deployments.Deployment(d["id"], d["status"], d["rolloutState"])


def registration_attributes(
    row: Any, registry: Mapping[str, Any], service: str, zone: str
) -> dict[str, str] | None:
    """Cloud Map attributes of a RUNNING task (None: it has no address yet)."""
    defn = json.loads(row["definition"])
    network = json.loads(row["network"])
    states = json.loads(row["containers"])
    containers = defn.get("containerDefinitions") or []
    mode = defn.get("networkMode") or "bridge"
    name = registry.get("containerName") or (containers[0]["name"] if containers else "")
    cdef = next((c for c in containers if c["name"] == name), None) or {}
    mappings = cdef.get("portMappings") or []
    container_port = registry.get("containerPort") or (
        mappings[0].get("containerPort") if mappings else None
    )
    port = registry.get("port") or container_port
    ip = "127.0.0.1"
    if mode == "awsvpc":
        ip = network.get("ip") or ""
        if not ip:
            return None
    elif mode == "bridge" and container_port:
        bound = [
            b
            for b in (states.get(name) or {}).get("networkBindings") or []
            if b.get("containerPort") == container_port
        ]
        if not bound:
            return None
        port = bound[0]["hostPort"]
    attrs = {
        "AWS_INSTANCE_IPV4": ip,
        "AVAILABILITY_ZONE": zone,
        "ECS_CLUSTER_NAME": row["cluster"],
        "ECS_SERVICE_NAME": service,
        "ECS_TASK_DEFINITION_FAMILY": defn.get("family", ""),
        "ECS_TASK_DEFINITION_REVISION": str(defn.get("revision", "")),
        "ECS_TASK_ARN_ID": row["id"],
        "REGION": zone[:-1] if zone else "",
    }
    if port:
        attrs["AWS_INSTANCE_PORT"] = str(port)
    return attrs


class ServiceLoop:
    """See module docstring. ``registrar`` is where tasks are registered (None: nowhere)."""

    def __init__(self, store: Store, config: Config, registrar: InstanceRegistry | None = None) -> None:
        self.store = store
        self.config = config
        self.registrar = registrar
        self._task: asyncio.Task[None] | None = None
        self.wake_at: float | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runner-services")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        while True:
            since = self.store.revision
            try:
                await self.reconcile_all()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service reconcile failed")
            timeout = TICK
            if self.wake_at is not None:
                timeout = max(0.05, min(TICK, self.wake_at - time.time()))
            await self.store.changes(since, TOPICS, timeout=timeout)
            await asyncio.sleep(0.02)  # let a burst of changes land before replanning

    async def reconcile_all(self) -> None:
        self.wake_at = None
        for r in self.store.query("SELECT cluster, name FROM services WHERE status != 'INACTIVE'"):
            try:
                await self.reconcile(r["cluster"], r["name"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service reconcile failed", extra={"service": r["name"]})

    # -- one service ----------------------------------------------------------------------
    def _rows(self, cluster: str, name: str, dep_ids: set[str]) -> list[Any]:
        rows = self.store.query(
            "SELECT * FROM tasks WHERE cluster = ? AND grp = ? ORDER BY created_at, id",
            (cluster, services.group_of(name)),
        )
        return [r for r in rows if r["last_status"] != "STOPPED" or r["started_by"] in dep_ids]

    def _eligible(self, cluster: str, spec: Mapping[str, Any], defn: Mapping[str, Any]) -> list[str]:
        """DAEMON: the connected instances of the cluster that satisfy the memberOf constraints."""
        exprs = [
            c.get("expression", "")
            for c in [*(defn.get("placementConstraints") or []), *(spec.get("placementConstraints") or [])]
            if c.get("type") == "memberOf"
        ]
        usage = instances.usage_by_host(self.store)
        out = []
        for inst in instances.instances_in(self.store, self.config, cluster):
            if not inst.connected:
                continue
            view = tasks.host_view(inst, usage)
            groups = [t.group for t in view.tasks]
            if all(query.matches(e, view.query_facts(), groups) for e in exprs):
                out.append(inst.id)
        return out

    async def reconcile(self, cluster: str, name: str) -> None:
        row = services.get_row(self.store, cluster, name)
        if row is None or row["status"] == "INACTIVE":
            return
        spec = json.loads(row["spec"])
        deps = json.loads(row["deployments"])
        last_completed = json.loads(row["last_completed"]) or None
        primary = next((d for d in deps if d["status"] == "PRIMARY"), None)
        if primary is None:
            return
        now = time.time()
        rows = self._rows(cluster, name, {d["id"] for d in deps})
        states = [_task_state(r) for r in rows]
        eligible = (
            self._eligible(cluster, spec, primary["definition"])
            if spec["schedulingStrategy"] == "DAEMON" and row["status"] == "ACTIVE"
            else []
        )
        pspec = _spec(spec)
        if row["status"] == "DRAINING":
            pspec = deployments.Spec(0, 0, 100)
        elif spec["schedulingStrategy"] == "DAEMON":
            spec["desiredCount"] = len(eligible)
        plan = deployments.plan(
            pspec,
            [_dep(d) for d in deps],
            states,
            now,
            last_completed=_dep(last_completed) if last_completed else None,
            instances=eligible,
        )
        if plan.wake_at is not None:
            self.wake_at = plan.wake_at if self.wake_at is None else min(self.wake_at, plan.wake_at)
        events = json.loads(row["events"])
        messages: list[str] = []
        svc = f"(service {name})"

        # Rollouts and rollback first: they change which deployment is primary.
        for r in plan.rollouts:
            for d in deps:
                if d["id"] == r.deployment:
                    d["rolloutState"], d["rolloutStateReason"], d["updatedAt"] = r.state, r.reason, now
                    if r.state == "COMPLETED":
                        last_completed = {k: v for k, v in d.items()}
                        messages.append(f"{svc} (deployment {d['id']}) deployment completed.")
                    else:
                        messages.append(
                            f"{svc} deployment {d['id']} deployment failed: tasks failed to start."
                        )
        if plan.rollback is not None and last_completed:
            for d in deps:
                d["status"] = "ACTIVE"
                d["updatedAt"] = now
            back = services.new_deployment(last_completed["definition"], spec, now)
            deps.insert(0, back)
            spec["taskDefinition"] = back["taskDefinition"]
            messages.append(
                f"{svc} rolling back to deployment {last_completed['id']} "
                f"(taskDefinition {back['taskDefinition']})."
            )
        for d in deps:
            d["failed"] = plan.failed_tasks.get(d["id"], d.get("failed", 0))

        # Starts before stops: a replacement exists before what it replaces goes away.
        if plan.rollback is None:
            for start in plan.starts:
                dep = next(d for d in deps if d["id"] == start.deployment)
                started, failures = await self._launch(cluster, name, spec, dep, start)
                if started:
                    messages.append(f"{svc} has started {len(started)} tasks: {_tasks_list(started)}.")
                for f in failures[:1]:
                    iid = str(f.get("arn", "")).rsplit("/", 1)[-1] if f.get("arn") else ""
                    messages.append(
                        placement_message(name, f.get("reason", ""), iid, f.get(tasks.MISSING_KEY, ""))
                    )
            stopped = []
            for s in plan.stops:
                await self._deregister(s.task)
                if await tasks.request_stop(self.store, s.task, lifecycle.SCHEDULER_INITIATED, s.reason):
                    stopped.append(s.task)
            if stopped:
                messages.append(f"{svc} has stopped {len(stopped)} running tasks: {_tasks_list(stopped)}.")
            deps = [d for d in deps if d["id"] not in plan.retire]
        steady = plan.steady and plan.rollback is None
        if steady and not row["steady"]:
            messages.append(f"{svc} has reached a steady state.")
        for m in messages:
            if "was unable to place" not in m or not _recent(events, m, now):
                events = services.add_event(events, m, now)
        status = row["status"]
        if status == "DRAINING" and all(s.last_status == "STOPPED" for s in states):
            status = "INACTIVE"  # only once every task has stopped, not when its stop is asked
        await self._save(row, spec, deps, last_completed, events, steady, status)
        await self._sync_registrations(cluster, name, spec)

    async def _launch(
        self, cluster: str, name: str, spec: Mapping[str, Any], dep: Mapping[str, Any], start: Any
    ) -> tuple[list[str], list[dict[str, str]]]:
        extra = {k: spec[k] for k in ("networkConfiguration",) if spec.get(k)}
        placement = {k: spec.get(k) for k in ("placementConstraints", "placementStrategy")}
        if not placement["placementStrategy"] and spec["schedulingStrategy"] == "REPLICA":
            placement["placementStrategy"] = [
                {"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "spread", "field": "instanceId"},
            ]
        try:
            rows, failures = await tasks.launch(
                self.store,
                self.config,
                cluster=cluster,
                definition=dep["definition"],
                count=start.count,
                launch_type=spec.get("launchType", "EC2"),
                started_by=dep["id"],
                group=services.group_of(name),
                extra=extra,
                on_instances=[start.instance] if start.instance else None,
                placement=None if start.instance else placement,
            )
        except Exception as e:  # e.g. no container instance in the cluster
            log.warning("service launch failed", extra={"service": name, "error": repr(e)})
            return [], [{"reason": getattr(e, "message", str(e))}]
        return [r["id"] for r in rows], failures

    async def _save(
        self,
        row: Any,
        spec: dict[str, Any],
        deps: list[dict[str, Any]],
        last_completed: dict[str, Any] | None,
        events: list[dict[str, Any]],
        steady: bool,
        status: str,
    ) -> None:
        new = (json.dumps(spec), json.dumps(deps), json.dumps(last_completed or {}), json.dumps(events))
        old = (row["spec"], row["deployments"], row["last_completed"], row["events"])
        if new == old and int(steady) == row["steady"] and status == row["status"]:
            return
        async with self.store.transaction() as tx:
            cur = tx.execute(
                "UPDATE services SET spec = ?, deployments = ?, last_completed = ?, events = ?, steady = ?,"
                " status = ?, updated_at = ?, version = version + 1"
                " WHERE cluster = ? AND name = ? AND version = ?",
                (*new, int(steady), status, time.time(), row["cluster"], row["name"], row["version"]),
            )
            if cur.rowcount:
                tx.changed(services.TOPIC, f"{row['cluster']}/{row['name']}")

    # -- discovery --------------------------------------------------------------------------
    async def _sync_registrations(self, cluster: str, name: str, spec: Mapping[str, Any]) -> None:
        regs = spec.get("serviceRegistries") or []
        known = data.registrations_of_service(self.store, cluster, name)
        if not regs and not known:
            return
        wanted: set[tuple[str, str]] = set()
        zone = f"{self.config.region}a"
        for r in self.store.query(
            "SELECT * FROM tasks WHERE cluster = ? AND grp = ? AND desired_status = 'RUNNING'"
            " AND last_status = 'RUNNING'",
            (cluster, services.group_of(name)),
        ):
            if _has_check(json.loads(r["definition"])) and r["health"] != "HEALTHY":
                continue
            for reg in regs:
                rid = services.registry_id(reg["registryArn"])
                wanted.add((r["id"], rid))
                if data.Registration(r["id"], rid) in known:
                    continue
                attrs = registration_attributes(r, reg, name, zone)
                if attrs is not None:
                    await self._register(cluster, name, r["id"], rid, attrs)
        for k in known:
            if (k.task_id, k.registry_id) not in wanted:
                await self._deregister_one(k.task_id, k.registry_id)

    async def _register(
        self, cluster: str, name: str, task_id: str, rid: str, attrs: dict[str, str]
    ) -> None:
        if self.registrar is None:
            return
        try:
            await self.registrar.register(rid, task_id, attrs)
        except Exception as e:
            log.warning("cannot register task in discovery", extra={"task": task_id, "error": str(e)})
            return
        await data.record_registration(self.store, data.Registration(task_id, rid), cluster, name)

    async def _deregister(self, task_id: str) -> None:
        for k in data.registrations_of_task(self.store, task_id):
            await self._deregister_one(task_id, k.registry_id)

    async def _deregister_one(self, task_id: str, rid: str) -> None:
        if self.registrar is not None:
            try:
                await self.registrar.deregister(rid, task_id)
            except Exception as e:  # the registry failed: forget the registration anyway
                log.info("deregister", extra={"task": task_id, "error": str(e)})
        await data.forget_registration(self.store, data.Registration(task_id, rid))


def _recent(events: list[dict[str, Any]], message: str, now: float) -> bool:
    """The same message was written less than :data:`REPEAT_EVENT_AFTER` seconds ago."""
    return any(e["message"] == message and now - e["createdAt"] < REPEAT_EVENT_AFTER for e in events[:20])


# -- wiring -----------------------------------------------------------------------------------
def install(platform: Any, registrar: InstanceRegistry | None = None) -> None:
    """Run the loop with the platform, registering tasks in ``registrar``."""

    async def serve(p: Any) -> AsyncIterator[None]:
        loop = ServiceLoop(p.store, p.config, registrar)
        await loop.start()
        try:
            yield
        finally:
            await loop.stop()

    platform.contexts.append(serve)
