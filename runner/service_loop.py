"""The services' I/O shell: one reconcile loop over every service of the control plane.

The loop wakes on store changes of tasks, services and container instances (and every
:data:`TICK` seconds, sooner when a start backoff ends), builds each service's view, asks
:func:`runner.deployments.plan` what to do and applies the answer:

* starts through :func:`runner.tasks.launch` (``group: service:NAME``, ``startedBy: <deployment
  id>``); a task that fits nowhere becomes a service event naming why;
* stops through :func:`runner.data.request_task_stop` (``ServiceSchedulerInitiated``), after the
  task is deregistered from discovery;
* rollout states, rollbacks (a new deployment of the last COMPLETED deployment's task
  definition), drained deployments removed, and ``events[]`` worded as ECS words them;
* ``serviceRegistries``: a task is registered in discovery (Cloud Map instance id = task id,
  with ``AWS_INSTANCE_IPV4``/``AWS_INSTANCE_PORT`` and the ``ECS_*`` attributes; a ``bridge``
  task at its container instance's address, from ``addresses``, and its host port) once RUNNING
  and, if it has a health check, HEALTHY; it is deregistered as soon as it is no longer
  wanted, before its stop is requested when the scheduler stops it;
* ``loadBalancers`` (:mod:`runner.balancing`): a task is registered as a target of each target
  group (``targets``, the edge) once RUNNING and, if it has a health check, HEALTHY; the
  groups' health is part of the task's health for the reconciler (healthy once every target
  is, UNHEALTHY when one is after ``healthCheckGracePeriodSeconds``); a task the scheduler
  stops is deregistered first and its stop waits the group's deregistration delay (the
  registrations' ``drain_until``, which the task worker waits for);
* Service Connect: a task of a deployment with ``serviceConnectConfiguration`` is placed with
  its :class:`runner.connect.TaskConnect` (:func:`runner.connect.task_connect`: its ingress
  ports and an address per client alias of the namespace) and, for each ``services[]`` entry,
  registered the same way in the Cloud Map service of its ``discoveryName`` (the deployment's
  ``serviceConnectResources``) at :func:`runner.connect.ingress_endpoint`.

Everything it knows lives in the store, so a control plane killed at any point resumes
without duplicating tasks: tasks are recorded with their deployment in the transaction that
places them, and each pass recomputes from what is recorded. Service rows are written with
the version they were read at; a concurrent UpdateService wins and the next pass replans.
Its reads and writes are :mod:`runner.data`'s (tasks as :class:`runner.data.Task`, services as
:class:`runner.data.Service`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

from dockyard.config import Config
from dockyard.store import Store, StoreUnavailable
from runner import (
    balancing,
    canary,
    connect,
    connectview,
    data,
    deployments,
    instances,
    query,
    scheduler,
    servicedeployments,
    services,
    shift,
    tasks,
)
from runner.agent import lifecycle
from runner.data import Task
from runner.scheduler import LaunchFailure
from runner.scheduler.model import REASON_TEXT
from runner.seams import AlarmStates, InstanceRegistry, ListenerRules, RevisionMetrics, TargetGroups
from runner.serviceshapes import READY_AT, ROLLBACK_OF, TRIGGERED
from runner.serviceshapes import counts as task_counts

__all__ = ["TICK", "ServiceLoop", "placement_message"]

log = logging.getLogger("dockyard.runner.services")

TICK = 2.0
RESOLUTION_LAG = 10.0  # seconds: the metric store's buckets (a window's last one fills this late)
SHIFT_POLL = 1.0  # seconds between two looks at a running deployment's alarms (one into ALARM wakes it)
WARM_UP = 2.0  # seconds a shift's split names its clusters at weight 0 before it starts
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
def _task_state(
    t: Task, draining: frozenset[str] = frozenset(), judged: balancing.Judged | None = None
) -> deployments.TaskState:
    return deployments.TaskState(
        id=t.id,
        deployment=t.started_by,
        last_status=t.last_status,
        desired_status=t.desired_status,
        health=judged.health if judged is not None else t.health,
        checked=judged.checked if judged is not None else t.has_health_check,
        unhealthy_reason=(
            balancing.stopped_reason(judged.target_group) if judged and judged.target_group else ""
        ),
        instance=t.instance_id,
        stop_code=t.stop_code,
        stopped_reason=t.stopped_reason,
        ever_running=t.started_at is not None,
        created_at=t.created_at,
        stopped_at=t.stopped_at or (t.stopping_at if t.desired_status == "STOPPED" else None),
        protected_until=t.protected_until,
        draining=t.instance_id in draining,
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
    return deployments.Deployment(d["id"], d["status"], d["rolloutState"], d.get(READY_AT))


def registration_attributes(
    task: Task, registry: Mapping[str, Any], service: str, zone: str, instance_ip: str = ""
) -> dict[str, str] | None:
    """Cloud Map attributes of a RUNNING task (None: it has no address yet). An awsvpc task is
    at its own address; a bridge task at ``instance_ip``, its container instance's address
    (``""``: unknown, ``127.0.0.1``, reached from the Docker host only); host and none tasks at
    ``127.0.0.1``."""
    containers = task.container_definitions
    mode = task.network_mode
    name = registry.get("containerName") or (containers[0]["name"] if containers else "")
    cdef = next((c for c in containers if c["name"] == name), None) or {}
    mappings = cdef.get("portMappings") or []
    container_port = registry.get("containerPort") or (
        mappings[0].get("containerPort") if mappings else None
    )
    port = registry.get("port") or container_port
    ip = "127.0.0.1"
    if mode == "awsvpc" or (mode == "bridge" and container_port):
        where = task.endpoint(name, container_port or 0)
        if where is None:
            return None
        if mode == "awsvpc":
            ip = where[0]
        else:
            ip, port = instance_ip or ip, where[1]
    return task_attributes(task, service, zone, ip, port)


def task_attributes(task: Task, service: str, zone: str, ip: str, port: int | None) -> dict[str, str]:
    """The Cloud Map attributes of a service's task reached at ``ip``:``port``: ECS's
    (``AWS_INSTANCE_IPV4``, ``AWS_INSTANCE_PORT`` when there is a port, ``AVAILABILITY_ZONE``,
    ``REGION``, ``ECS_CLUSTER_NAME``, ``ECS_SERVICE_NAME``, ``ECS_TASK_DEFINITION_FAMILY``) and
    Dockyard's ``ECS_TASK_DEFINITION_REVISION`` and ``ECS_TASK_ARN_ID`` (so an App Mesh virtual
    node can select one revision)."""
    defn = task.definition
    attrs = {
        "AWS_INSTANCE_IPV4": ip,
        "AVAILABILITY_ZONE": zone,
        "ECS_CLUSTER_NAME": task.cluster,
        "ECS_SERVICE_NAME": service,
        "ECS_TASK_DEFINITION_FAMILY": defn.get("family", ""),
        "ECS_TASK_DEFINITION_REVISION": str(defn.get("revision", "")),
        "ECS_TASK_ARN_ID": task.id,
        "REGION": zone[:-1] if zone else "",
    }
    if port:
        attrs["AWS_INSTANCE_PORT"] = str(port)
    return attrs


def connect_registries(deployment: Mapping[str, Any] | None) -> dict[str, str]:
    """portName -> the Cloud Map service id its tasks register in, for a Service Connect
    deployment (from its ``serviceConnectResources``; {} when it has none)."""
    if not deployment:
        return {}
    resources = deployment.get("serviceConnectResources") or []
    arns = {r["discoveryName"]: r.get("discoveryArn") or "" for r in resources}
    out = {}
    for e in connect.entries(deployment):
        rid = services.registry_id(arns.get(e.discovery_name, ""))
        if rid:
            out[e.port_name] = rid
    return out


class ServiceLoop:
    """See module docstring. ``registrar`` is where tasks are registered (None: nowhere);
    ``addresses(instance_id)`` is a container instance's address ("" or None: unknown)."""

    def __init__(
        self,
        store: Store,
        config: Config,
        registrar: InstanceRegistry | None = None,
        addresses: Callable[[str], Awaitable[str]] | None = None,
        prewarm: Callable[[list[str], list[str]], Awaitable[Any]] | None = None,
        alarms: AlarmStates | None = None,
        metrics: RevisionMetrics | None = None,
        targets: TargetGroups | None = None,
        rules: ListenerRules | None = None,
    ) -> None:
        self.store = store
        self.targets = targets
        self.rules = rules
        self.config = config
        self.registrar = registrar
        self.addresses = addresses
        self.prewarm = prewarm  # runner.supervisor.Supervisor.prewarm
        self._prewarming: dict[str, asyncio.Task[Any]] = {}  # deployment id -> its pre-pull
        self._prewarmed: set[str] = set()
        self.alarms = alarms
        self.metrics = metrics
        self._records: dict[str, dict[str, Any]] = {}  # service deployment ARN -> last written body
        self._task: asyncio.Task[None] | None = None
        self.wake_at: float | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="runner-services")

    async def stop(self) -> None:
        for job in self._prewarming.values():
            job.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        alarms = self.alarms.subscribe() if self.alarms is not None else None
        try:
            while True:
                since = self.store.revision
                try:
                    await self.reconcile_all()
                except asyncio.CancelledError:
                    raise
                except StoreUnavailable as e:  # PostgreSQL restarting: the next pass tries again
                    log.warning("service reconcile waits for the state store", extra={"error": str(e)})
                except Exception:
                    log.exception("service reconcile failed")
                timeout = TICK
                if self.wake_at is not None:
                    timeout = max(0.05, min(TICK, self.wake_at - time.time()))
                await self._wait(since, timeout, alarms)
                await asyncio.sleep(0.02)  # let a burst of changes land before replanning
        finally:
            if alarms is not None and self.alarms is not None:
                self.alarms.unsubscribe(alarms)

    async def _wait(self, since: int, timeout: float, alarms: asyncio.Queue[Any] | None) -> None:
        """Until a change of the services' topics, ``timeout`` seconds, or an alarm going into
        ALARM (a deployment it watches is rolled back at once, not at the next look)."""
        changes = asyncio.ensure_future(self.store.changes(since, TOPICS, timeout=timeout))
        if alarms is None:
            await changes
            return
        fired = asyncio.ensure_future(_into_alarm(alarms))
        try:
            await asyncio.wait({changes, fired}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for job in (changes, fired):
                job.cancel()
            await asyncio.gather(changes, fired, return_exceptions=True)

    async def reconcile_all(self) -> None:
        self.wake_at = None
        for cluster, name in data.service_keys(self.store):
            try:
                await self.reconcile(cluster, name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("service reconcile failed", extra={"service": name})

    # -- one service ----------------------------------------------------------------------
    def _tasks(self, cluster: str, name: str, dep_ids: set[str]) -> list[Task]:
        """The service's tasks: unstopped ones, and the stopped ones of its deployments."""
        found = data.tasks_of_group(self.store, cluster, services.group_of(name))
        return [t for t in found if t.last_status != "STOPPED" or t.started_by in dep_ids]

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
            view = scheduler.host_view(inst, usage, instances.RESERVED_PORTS)
            groups = [t.group for t in view.tasks]
            if all(query.matches(e, view.query_facts(), groups) for e in exprs):
                out.append(inst.id)
        return out

    async def reconcile(self, cluster: str, name: str) -> None:
        current = data.service(self.store, cluster, name)
        if current is None or current.status == "INACTIVE":
            return
        # Work on copies: ``current`` stays as read, for the versioned write at the end.
        spec = copy.deepcopy(dict(current.spec))
        deps = copy.deepcopy([dict(d) for d in current.deployments])
        last_completed = copy.deepcopy(dict(current.last_completed)) if current.last_completed else None
        primary = next((d for d in deps if d["status"] == "PRIMARY"), None)
        if primary is None:
            return
        now = time.time()
        draining = frozenset(i.id for i in data.instances_of(self.store, cluster, ("DRAINING",)))
        found = self._tasks(cluster, name, {d["id"] for d in deps})
        messages: list[str] = []
        judged = await self._sync_targets(cluster, name, spec, deps, found, now, messages)
        states = [_task_state(t, draining, judged.get(t.id)) for t in found]
        eligible = (
            self._eligible(cluster, spec, primary["definition"])
            if spec["schedulingStrategy"] == "DAEMON" and current.status == "ACTIVE"
            else []
        )
        pspec = _spec(spec)
        if current.status == "ACTIVE":
            pspec, primary = self._shift(cluster, name, spec, deps, states, pspec, now, messages)
            await self._shift_rules(name, deps, messages)
            if servicedeployments.shift_of(primary) is None:
                pspec = self._rolling_alarms(spec, primary, pspec, now)
        if current.status == "DRAINING":
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
        if plan.ready and pspec.bake > 0 and primary.get(READY_AT) is None:
            primary[READY_AT] = now  # the alarms' bake time begins
        events = [dict(e) for e in current.events]
        svc = f"(service {name})"

        # Rollouts and rollback first: they change which deployment is primary.
        for r in plan.rollouts:
            for d in deps:
                if d["id"] == r.deployment:
                    d["rolloutState"], d["rolloutStateReason"], d["updatedAt"] = r.state, r.reason, now
                    if r.state == "COMPLETED":
                        last_completed = {k: v for k, v in d.items()}
                        messages.append(f"{svc} (deployment {d['id']}) deployment completed.")
                    elif r.reason == deployments.BREAKER_REASON:
                        messages.append(
                            f"{svc} deployment {d['id']} deployment failed: tasks failed to start."
                        )
                    else:
                        messages.append(f"{svc} (deployment {d['id']}) deployment failed: {r.reason}")
        if plan.rollback is not None and last_completed:
            for d in deps:
                d["status"] = "ACTIVE"
                d["updatedAt"] = now
            # The last completed deployment's Service Connect configuration comes back with it.
            back_spec = {k: v for k, v in spec.items() if k not in services.CONNECT_KEYS}
            back_spec.update({k: last_completed[k] for k in services.CONNECT_KEYS if k in last_completed})
            back = services.new_deployment(last_completed["definition"], back_spec, now)
            back[ROLLBACK_OF] = plan.rollback.failed  # not judged by the alarms that failed it
            deps.insert(0, back)
            spec["taskDefinition"] = back["taskDefinition"]
            messages.append(
                f"{svc} rolling back to deployment {last_completed['id']} "
                f"(taskDefinition {back['taskDefinition']})."
            )
        for d in deps:
            d["failed"] = plan.failed_tasks.get(d["id"], d.get("failed", 0))

        # Starts before stops: a replacement exists before what it replaces goes away.
        retired: dict[str, dict[str, Any]] = {}
        if plan.rollback is None:
            for start in plan.starts:
                dep = next(d for d in deps if d["id"] == start.deployment)
                if not self._prewarm_done(cluster, svc, dep, messages):
                    continue  # its images are being pulled on the cluster's hosts first
                started, failures = await self._launch(cluster, name, spec, dep, start)
                if started:
                    messages.append(f"{svc} has started {len(started)} tasks: {_tasks_list(started)}.")
                for f in failures[:1]:
                    messages.append(placement_message(name, f.reason, f.instance_id, f.missing))
            stopped = []
            drained = 0
            for s in plan.stops:
                j = judged.get(s.task)
                if j is not None and j.target_group and s.reason == balancing.stopped_reason(j.target_group):
                    messages.append(
                        balancing.unhealthy_message(name, s.task, j.port, j.target_group, j.reason)
                    )
                await self._deregister(s.task)
                drained += await self._drain_targets(name, s.task, messages)
                if await data.request_task_stop(self.store, s.task, lifecycle.SCHEDULER_INITIATED, s.reason):
                    stopped.append(s.task)
            if drained:
                messages.append(balancing.draining_message(name, drained))
            if stopped:
                messages.append(f"{svc} has stopped {len(stopped)} running tasks: {_tasks_list(stopped)}.")
            retired = {d["id"]: d for d in deps if d["id"] in plan.retire}
            deps = [d for d in deps if d["id"] not in plan.retire]
        steady = plan.steady and plan.rollback is None
        if steady and not current.steady:
            messages.append(f"{svc} has reached a steady state.")
        for m in messages:
            if "was unable to place" not in m or not _recent(events, m, now):
                events = services.add_event(events, m, now)
        status = current.status
        if status == "DRAINING" and all(s.last_status == "STOPPED" for s in states):
            status = "INACTIVE"  # only once every task has stopped, not when its stop is asked
        new = replace(
            current,
            spec=spec,
            deployments=tuple(deps),
            last_completed=last_completed,
            events=tuple(events),
            steady=steady,
            status=status,
            updated_at=time.time(),
        )
        await data.save_service(self.store, current, new)
        await self._sync_registrations(cluster, name, spec, deps)
        # a deployment retired this pass is recorded as this pass left it (a rollback's outcome)
        before = [retired.get(d["id"], dict(d)) for d in current.deployments]
        await self._record(cluster, name, spec, before, deps, now)

    # -- traffic shifts (runner.shift) ------------------------------------------------------
    def _shift(
        self,
        cluster: str,
        name: str,
        spec: dict[str, Any],
        deps: list[dict[str, Any]],
        states: list[deployments.TaskState],
        pspec: deployments.Spec,
        now: float,
        messages: list[str],
    ) -> tuple[deployments.Spec, dict[str, Any]]:
        """Move the PRIMARY deployment's traffic shift one pass on (editing ``deps`` and
        ``spec``), and the reconciler's spec for it: the source's tasks kept until CLEAN_UP,
        the new revision held until SCALE_UP. A rollback makes the source PRIMARY again. Returns
        that spec and the PRIMARY deployment (after a rollback, the source)."""
        svc = f"(service {name})"
        primary = next(d for d in deps if d["status"] == "PRIMARY")
        for d in deps:  # a shift a newer deployment replaced ends there
            found = servicedeployments.shift_of(d)
            if d is primary or found is None:
                continue
            if not found[1].outcome:
                ended = replace(found[1], outcome="STOPPED", ended_at=now,
                                reason=f"Service deployment replaced by deployment {primary['id']}.")
                d[services.SHIFT]["state"] = shift.state_json(ended)
            if found[1].outcome != "ROLLBACK":  # a rolled-back split holds until its tasks are gone
                d.pop(connect.TRAFFIC, None)
        found = servicedeployments.shift_of(primary)
        if found is None:
            return pspec, primary
        strategy, state = found
        source = next((d for d in deps if d["id"] == primary[services.SHIFT]["source"]), None)
        if state.outcome == "SUCCESSFUL":  # its split (all on it) stays: no route change at the end
            return pspec, primary
        if state.outcome in ("FAILED", "STOPPED"):  # frozen where it stopped: both revisions stay
            keep = (source["id"],) if source is not None else ()
            return replace(pspec, keep=keep, max_percent=max(pspec.max_percent, 200)), primary
        keep = (source["id"],) if source is not None else ()
        warm = primary[services.SHIFT].get("warmUntil")
        if warm is None or now < warm:
            # Make before break: the split first names both revisions' clusters at weight 0
            # (all traffic as before), so that the sidecars have them warm before any weight
            # moves; the new revision starts no task meanwhile.
            if warm is None:
                primary[services.SHIFT]["warmUntil"] = warm = now + WARM_UP
            primary[connect.TRAFFIC] = _split(source, primary, shift.Traffic(0.0, False), warming=True)
            self.wake_at = warm if self.wake_at is None else min(self.wake_at, warm)
            return replace(pspec, keep=keep, hold=True, max_percent=max(pspec.max_percent, 200)), primary
        mine = [t for t in states if t.deployment == primary["id"]]
        dep = f"{svc} (deployment {primary['id']})"
        failed_analysis = ""
        if strategy.analysis is not None and source is not None:
            state, failed_analysis = self._analyse(
                cluster, name, strategy.analysis, state, source, primary, now, dep, messages
            )
        observed = shift.Observed(
            now,
            green_ready=len(self._serving(cluster, name, primary, mine)) >= pspec.desired,
            blue_drained=source is None or not any(t.live for t in states if t.deployment == source["id"]),
            in_alarm=self._in_alarm(strategy.alarms),
            failed_analysis=failed_analysis,
        )
        minute = self.config.deployment_minute_seconds
        new = shift.advance(strategy, state, observed, minute)
        primary[services.SHIFT]["state"] = shift.state_json(new)
        if new.stage != state.stage and not new.outcome:
            messages.append(f"{dep} entered the {new.stage} lifecycle stage.")
        if new.hook and new.hook != state.hook:
            messages.append(f"{dep} is waiting at {new.stage} for lifecycle hook {new.hook}: "
                            "ContinueServiceDeployment to go on.")
        before, after = shift.traffic(strategy, state), shift.traffic(strategy, new)
        if after.green != before.green and new.outcome != "ROLLBACK":
            messages.append(f"{dep} shifted {after.green:g}% of production traffic to "
                            f"taskDefinition {primary['taskDefinition']}.")
        if after.test and not before.test:
            messages.append(f"{dep} sends test traffic to taskDefinition {primary['taskDefinition']}.")
        primary[connect.TRAFFIC] = _split(source, primary, after)
        wake = shift.next_wake(strategy, new, minute)
        if not new.outcome:
            wake = min(wake or now + SHIFT_POLL, now + SHIFT_POLL)
        if wake is not None:
            self.wake_at = wake if self.wake_at is None else min(self.wake_at, wake)
        if new.outcome == "ROLLBACK" and source is not None:
            messages.append(f"{dep} deployment failed: {new.reason}")
            messages.append(f"{svc} rolling back to deployment {source['id']} "
                            f"(taskDefinition {source['taskDefinition']}).")
            primary.update(status="ACTIVE", rolloutState="FAILED", rolloutStateReason=new.reason,
                           updatedAt=now)
            source.update(status="PRIMARY", updatedAt=now)
            deps.sort(key=lambda d: d["status"] != "PRIMARY")
            spec["taskDefinition"] = source["taskDefinition"]
            for k in services.CONNECT_KEYS:
                if k in source:
                    spec[k] = copy.deepcopy(source[k])
            return replace(pspec, max_percent=max(pspec.max_percent, 200)), source
        if new.outcome in ("FAILED", "STOPPED"):
            primary.update(rolloutState="FAILED", rolloutStateReason=new.reason, updatedAt=now)
            messages.append(f"{dep} deployment failed: {new.reason}")
        cleaning = new.stage == "CLEAN_UP" and new.outcome in ("", "SUCCESSFUL")
        keep = (source["id"],) if source is not None and not cleaning else ()
        hold = shift.STAGES.index(new.stage) < shift.STAGES.index("SCALE_UP") and not new.outcome
        return replace(pspec, keep=keep, hold=hold, max_percent=max(pspec.max_percent, 200)), primary

    async def _shift_rules(self, name: str, deps: list[dict[str, Any]], messages: list[str]) -> None:
        """Set the weights of the listener rules of the newest shifting deployment behind a load
        balancer (``advancedConfiguration``) to what its stage asks (:func:`runner.shift.traffic`,
        :func:`runner.balancing.rule_weights`); a rollback's are all on the source's group."""
        shifting = [d for d in deps if servicedeployments.shift_of(d) is not None
                    and balancing.advanced(d.get("loadBalancers") or [])]
        if not shifting or self.rules is None:
            return
        d = max(shifting, key=lambda d: d.get("createdAt") or 0)
        strategy, state = servicedeployments.shift_of(d) or (None, None)
        assert strategy is not None and state is not None
        t = shift.traffic(strategy, state)
        wanted = balancing.rule_weights(d["loadBalancers"], t.green, t.test)
        applied = d[services.SHIFT].get("ruleWeights")
        if applied == [[r, w] for r, w in wanted]:
            return
        for rule, weights in wanted:
            try:
                await self.rules.set_weights(rule, weights)
            except Exception as e:  # the rule is gone: try again next pass
                log.warning("cannot set listener rule weights", extra={"rule": rule, "error": str(e)})
                return
        d[services.SHIFT]["ruleWeights"] = [[r, w] for r, w in wanted]
        shown = ", ".join(f"{a.rsplit('/', 2)[-2]} {w}" for a, w in wanted[0][1].items()) if wanted else ""
        messages.append(f"(service {name}) (deployment {d['id']}) set the production listener rule's "
                        f"weights to {shown}.")

    def _serving(
        self, cluster: str, name: str, dep: Mapping[str, Any], tasks: list[deployments.TaskState]
    ) -> list[deployments.TaskState]:
        """The healthy tasks of ``tasks`` that discovery already has in every Cloud Map service of
        the deployment's Service Connect entries: what a route may send traffic to without a
        request finding no endpoint (registration happens at the end of the pass that saw the
        task healthy, so traffic moves to it one pass later, with its endpoints in the mesh)."""
        wanted = set(connect_registries(dep).values())
        registered: dict[str, set[str]] = {}
        for r in data.registrations_of_service(self.store, cluster, name):
            registered.setdefault(r.task_id, set()).add(r.registry_id)
        return [t for t in tasks if deployments.is_healthy(t) and wanted <= registered.get(t.id, set())]

    def _analyse(
        self, cluster: str, name: str, policy: canary.Policy, state: shift.State, source: dict[str, Any],
        primary: dict[str, Any], now: float, dep: str, messages: list[str],
    ) -> tuple[shift.State, str]:
        """Dockyard's canary analysis of one pass (:mod:`runner.canary`): in
        PRODUCTION_TRAFFIC_SHIFT, once a step's interval (plus the metrics' lag) has passed,
        judge both revisions over it; a pass moves the shift to the next step (the last one
        passed: on to the next stage), a failure is the reason to roll back. Returns the shift
        state and that reason ("": none)."""
        if state.stage != "PRODUCTION_TRAFFIC_SHIFT" or state.step < 0 or state.outcome or state.stop:
            return state, ""
        if state.hook:
            return state, ""
        stored = primary[services.SHIFT].setdefault("canary", {})
        ref = stored.get("reference")
        run = canary.Run(state.step, state.since, reference=canary.Window(**ref) if ref else None)
        lag = (self.config.mesh_stats_flush_interval or 10.0) + RESOLUTION_LAG
        if now - lag - run.since < policy.interval:
            return state, ""
        base_rev = int((source.get("definition") or {}).get("revision", 0))
        new_rev = int((primary.get("definition") or {}).get("revision", 0))
        if self.metrics is None:
            base, mine = canary.Window(), canary.Window()
        else:
            base = _window(self.metrics.window(cluster, name, base_rev, run.since, now - lag))
            mine = _window(self.metrics.window(cluster, name, new_rev, run.since, now - lag))
        after, verdict = canary.advance(policy, run, now, base, mine, lag)
        if verdict is None:
            return state, ""
        stored["last"] = {"step": policy.steps[run.step], "baseline": base.__dict__, "canary": mine.__dict__,
                          "passed": verdict.passed, "reason": verdict.reason, "at": now}
        if after.reference is not None:
            stored["reference"] = after.reference.__dict__
        if after.outcome == canary.ROLLED_BACK:
            return state, after.reason
        if after.outcome == canary.PROMOTED:
            messages.append(f"{dep} {after.reason}.")
            return replace(state, step=len(policy.steps), since=now), ""  # the promotion step
        messages.append(f"{dep} canary at {policy.steps[run.step]:g}% passed: {verdict.reason}.")
        return replace(state, step=after.step, since=now), ""

    def _rolling_alarms(
        self, spec: Mapping[str, Any], primary: dict[str, Any], pspec: deployments.Spec, now: float
    ) -> deployments.Spec:
        """The reconciler's spec with what a ROLLING deployment's ``deploymentConfiguration.alarms``
        say (:mod:`runner.deployments`): while the PRIMARY deployment is IN_PROGRESS its alarms
        are read (at least every :data:`SHIFT_POLL` seconds), one in ALARM fails it; it is done
        only after a bake time: the longest ``(EvaluationPeriods + 1) * Period`` of its alarms
        (one period more: a breach has to fill a whole period first) plus the sidecars' flush
        interval. A deployment that rolls one back is not judged by them."""
        config = shift.alarms_of(spec.get("deploymentConfiguration") or {})
        if not (config.enable and config.names) or self.alarms is None or primary.get(ROLLBACK_OF):
            return pspec
        if primary.get("rolloutState") != "IN_PROGRESS":
            return pspec
        bake = max((w for w in map(self._evaluation_seconds, config.names) if w is not None), default=0.0)
        bake += self.config.mesh_stats_flush_interval or 10.0
        self.wake_at = min(self.wake_at or now + SHIFT_POLL, now + SHIFT_POLL)
        fired = self._in_alarm(config)
        if not fired:
            return replace(pspec, bake=bake)
        primary[TRIGGERED] = list(fired)
        why = f"Alarm(s) {', '.join(fired)} went into ALARM state during the service deployment."
        return replace(pspec, bake=bake, alarm=why + (" Rolling back." if config.rollback else ""),
                       alarm_rollback=config.rollback)

    def _evaluation_seconds(self, name: str) -> float | None:
        try:
            return self.alarms.evaluation_seconds(name) if self.alarms is not None else None
        except Exception as e:  # the alarms are unreadable: no bake from this one
            log.warning("alarm window", extra={"alarm": name, "error": str(e)})
            return None

    def _in_alarm(self, alarms: shift.Alarms) -> tuple[str, ...]:
        if self.alarms is None or not alarms.enable:
            return ()
        out = []
        for n in alarms.names:
            try:
                if self.alarms.state(n) == "ALARM":
                    out.append(n)
            except Exception as e:  # the alarms are unreadable: judge again next pass
                log.warning("alarm state", extra={"alarm": n, "error": str(e)})
        return tuple(out)

    async def _record(
        self, cluster: str, name: str, spec: Mapping[str, Any], before: list[dict[str, Any]],
        deps: list[dict[str, Any]], now: float,
    ) -> None:
        """Write the service deployment record of each deployment that changed (and of each
        retired this pass, one last time)."""
        ids = {d["id"] for d in deps}
        gone = [d for d in before if d["id"] not in ids]
        n = task_counts(self.store, cluster, name)
        for dep, retired in [*((d, False) for d in deps), *((d, True) for d in gone)]:
            arn = servicedeployments.deployment_arn(self.config, cluster, name, dep["id"])
            previous = self._records.get(arn)
            if previous is None:
                rec = data.service_deployment(self.store, arn)
                previous = dict(rec.body) if rec is not None else None
            rec = servicedeployments.record(self.config, cluster, name, spec, dep, deps, n, now,
                                            previous=previous, retired=retired)
            if previous is not None and {**previous, "updatedAt": 0} == {**rec.body, "updatedAt": 0}:
                self._records[arn] = previous
                continue
            await data.put_service_deployment(self.store, rec)
            self._records[arn] = dict(rec.body)
            if retired:
                self._records.pop(arn, None)

    async def _launch(
        self, cluster: str, name: str, spec: Mapping[str, Any], dep: Mapping[str, Any], start: Any
    ) -> tuple[list[str], list[LaunchFailure]]:
        extra = {k: spec[k] for k in ("networkConfiguration",) if spec.get(k)}
        placement = {k: spec.get(k) for k in ("placementConstraints", "placementStrategy")}
        if not placement["placementStrategy"] and spec["schedulingStrategy"] == "REPLICA":
            placement["placementStrategy"] = [
                {"type": "spread", "field": "attribute:ecs.availability-zone"},
                {"type": "spread", "field": "instanceId"},
            ]
        common: dict[str, Any] = dict(
            cluster=cluster,
            definition=dep["definition"],
            started_by=dep["id"],
            group=services.group_of(name),
            extra=extra,
            on_instances=[start.instance] if start.instance else None,
            placement=None if start.instance else placement,
            connect=self._task_connect(dep),
        )
        capacity = spec.get("capacityProviderStrategy") or []
        try:
            if capacity and not start.instance:  # spread over the providers, from what each holds now
                live = [t for t in data.tasks_of_group(self.store, cluster, services.group_of(name))
                        if t.desired_status == "RUNNING" and t.last_status != "STOPPED"]
                held = collections.Counter(str(t.extra.get("capacityProviderName", "")) for t in live)
                started, failures = await tasks.launch_by_strategy(
                    self.store, self.config, strategy=capacity, current=held, count=start.count, **common)
            else:
                started, failures = await tasks.launch(
                    self.store, self.config, count=start.count, launch_type=spec.get("launchType", "EC2"),
                    **common)
        except Exception as e:  # e.g. no container instance in the cluster
            log.warning("service launch failed", extra={"service": name, "error": repr(e)})
            return [], [LaunchFailure(getattr(e, "message", str(e)))]
        return [t.id for t in started], failures

    def _prewarm_done(self, cluster: str, svc: str, dep: Mapping[str, Any], messages: list[str]) -> bool:
        """Whether the tasks of ``dep`` may be placed: a new deployment (IN_PROGRESS) first pulls
        its images on every connected instance of the cluster (``prewarm``, in the background;
        ``messages`` get its start and end as service events)."""
        ident = dep["id"]
        if (self.prewarm is None or self.config.prewarm_timeout <= 0 or ident in self._prewarmed
                or dep.get("rolloutState") != "IN_PROGRESS"):
            return True
        job = self._prewarming.get(ident)
        if job is None:
            hosts = [i.id for i in instances.instances_in(self.store, self.config, cluster) if i.connected]
            defs = dep["definition"].get("containerDefinitions") or []
            images = list(dict.fromkeys(c["image"] for c in defs))
            if not hosts or not images:
                self._prewarmed.add(ident)
                return True
            job = asyncio.create_task(self.prewarm(images, hosts), name=f"prewarm {ident}")
            self._prewarming[ident] = job
            messages.append(f"{svc} is pulling {len(images)} images of (deployment {ident}) on "
                            f"{len(hosts)} container instances before placing its tasks.")
        elif job.done():
            del self._prewarming[ident]
            self._prewarmed.add(ident)
            done = job.result() if not job.cancelled() and job.exception() is None else None
            if done is None:
                messages.append(f"{svc} could not pull the images of (deployment {ident}) ahead: "
                                f"{job.exception() if not job.cancelled() else 'cancelled'}.")
            elif done.failures:
                messages.append(f"{svc} pulled the images of (deployment {ident}) on {done.hosts} container "
                                f"instances in {done.seconds:.1f} s, except: {'; '.join(done.failures[:3])}.")
            else:
                messages.append(f"{svc} pulled the images of (deployment {ident}) on {done.hosts} container "
                                f"instances in {done.seconds:.1f} s.")
            return True
        soon = time.time() + 0.2
        self.wake_at = soon if self.wake_at is None else min(self.wake_at, soon)
        return False

    def _task_connect(self, dep: Mapping[str, Any]) -> connect.TaskConnect | None:
        namespace = dep.get(connect.HIDDEN_NAMESPACE) or ""
        if not namespace:
            return None
        return connect.task_connect(dep, connectview.namespace_services(self.store, namespace))

    # -- load balancers (runner.balancing) ------------------------------------------------------
    async def _sync_targets(
        self, cluster: str, name: str, spec: Mapping[str, Any], deps: list[dict[str, Any]], found: list[Task],
        now: float, messages: list[str],
    ) -> dict[str, balancing.Judged]:
        """Register the service's RUNNING (and healthy) tasks as targets, drain those that are
        no longer wanted (stopped behind the scheduler's back), forget the registrations of
        stopped tasks; the judged health of each registered task."""
        known = data.targets_of_service(self.store, cluster, name)
        if not known and not spec.get("loadBalancers") and not any(d.get("loadBalancers") for d in deps):
            return {}
        by_task: dict[str, list[data.TargetRegistration]] = {}
        for r in known:
            by_task.setdefault(r.task_id, []).append(r)
        by_dep = {d["id"]: d for d in deps}
        tasks_by_id = {t.id: t for t in found}
        registered: collections.Counter[str] = collections.Counter()
        for t in found:
            live = t.desired_status == "RUNNING" and t.last_status == "RUNNING"
            if not live or (t.has_health_check and t.health != "HEALTHY") or self.targets is None:
                continue
            have = {(r.target_group, r.target_id, r.port) for r in by_task.get(t.id, [])}
            for entry in balancing.entries_of(by_dep.get(t.started_by), spec):
                arn = entry["targetGroupArn"]
                group = self.targets.group(arn)
                if group is None:
                    continue
                ec2 = ""
                if group.target_type == "instance":
                    inst = data.instance(self.store, t.instance_id)
                    ec2 = inst.ec2_instance_id if inst is not None else ""
                target = balancing.target_of(
                    t.endpoint(entry["containerName"], entry["containerPort"]), group.target_type, ec2
                )
                if target is None or (arn, *target) in have:
                    continue
                try:
                    await self.targets.register(arn, target)
                except Exception as e:  # the group refused it: try again next pass
                    log.warning("cannot register target", extra={"task": t.id, "error": str(e)})
                    continue
                reg = data.TargetRegistration(t.id, arn, *target)
                await data.record_target(self.store, reg, cluster, name)
                by_task.setdefault(t.id, []).append(reg)
                registered[arn] += 1
        for arn, n in registered.items():
            messages.append(balancing.registered_message(name, n, arn))
        out: dict[str, balancing.Judged] = {}
        grace = float(spec.get("healthCheckGracePeriodSeconds") or 0)
        drained = 0
        for task_id, regs in by_task.items():
            t = tasks_by_id.get(task_id) or data.task(self.store, task_id)
            if t is None or t.last_status == "STOPPED":
                if any(r.drain_until is None for r in regs):
                    drained += await self._drain_targets(name, task_id, messages)
                elif all(r.drain_until is not None and r.drain_until <= now for r in regs):
                    await data.forget_targets(self.store, task_id)
                continue
            if t.desired_status != "RUNNING":  # stopped behind the scheduler's back (StopTask)
                drained += await self._drain_targets(name, task_id, messages)
                continue
            if self.targets is None:
                continue
            states = [(r.target_group, *self.targets.health(r.target_group, r.target)) for r in regs
                      if r.drain_until is None]
            j = balancing.judge(t.health, t.has_health_check, states, t.started_at, grace, now)
            port = next((r.port for r in regs if r.target_group == j.target_group), 0)
            out[task_id] = replace(j, port=port)
        if drained:
            messages.append(balancing.draining_message(name, drained))
        return out

    async def _drain_targets(self, name: str, task_id: str, messages: list[str]) -> int:
        """Deregister the task's targets; each drains for its group's deregistration delay
        (the task's stop waits for it). 1 when some target was deregistered, else 0."""
        now = time.time()
        drained: collections.Counter[str] = collections.Counter()
        for r in data.targets_of_task(self.store, task_id):
            if r.drain_until is not None:
                continue
            group = self.targets.group(r.target_group) if self.targets is not None else None
            delay = group.deregistration_delay if group is not None else 0.0
            if self.targets is not None:
                try:
                    await self.targets.deregister(r.target_group, r.target)
                except Exception as e:  # the group is gone: nothing routes to the task
                    log.info("deregister target", extra={"task": task_id, "error": str(e)})
                    delay = 0.0
            await data.drain_target(self.store, r, now + delay)
            drained[r.target_group] += 1
        for arn, n in drained.items():
            messages.append(balancing.deregistered_message(name, n, arn))
        return 1 if drained else 0

    # -- discovery --------------------------------------------------------------------------
    async def _sync_registrations(
        self, cluster: str, name: str, spec: Mapping[str, Any], deps: list[dict[str, Any]] | None = None
    ) -> None:
        regs = spec.get("serviceRegistries") or []
        known = data.registrations_of_service(self.store, cluster, name)
        by_dep = {d["id"]: connect_registries(d) for d in deps or []}
        if not regs and not known and not any(by_dep.values()):
            return
        wanted: set[tuple[str, str]] = set()
        zone = f"{self.config.region}a"
        for t in data.tasks_of_group(self.store, cluster, services.group_of(name), running=True):
            if t.has_health_check and t.health != "HEALTHY":
                continue
            for reg in regs:
                rid = services.registry_id(reg["registryArn"])
                wanted.add((t.id, rid))
                if data.Registration(t.id, rid) in known:
                    continue
                address = await self._address(t.instance_id) if t.network_mode == "bridge" else ""
                attrs = registration_attributes(t, reg, name, zone, address)
                if attrs is not None:
                    await self._register(cluster, name, t.id, rid, attrs)
            for port_name, rid in by_dep.get(t.started_by, {}).items():
                where = connect.ingress_endpoint(t, port_name)
                if where is None:
                    continue  # not reachable yet (a bridge task's ingress port not published)
                wanted.add((t.id, rid))
                if data.Registration(t.id, rid) in known:
                    continue
                ip = where[0] or await self._address(t.instance_id) or "127.0.0.1"
                await self._register(cluster, name, t.id, rid, task_attributes(t, name, zone, ip, where[1]))
        for k in known:
            if (k.task_id, k.registry_id) not in wanted:
                await self._deregister_one(k.task_id, k.registry_id)

    async def _address(self, instance_id: str) -> str:
        if self.addresses is None:
            return ""
        try:
            return await self.addresses(instance_id)
        except Exception as e:  # e.g. the engine is unreachable: register as before
            log.info("instance address", extra={"instance": instance_id, "error": str(e)})
            return ""

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


def _window(w: Any) -> canary.Window:
    """A ``runner.seams.RevisionWindow`` as the analysis' own value."""
    return canary.Window(float(w.requests), float(w.errors), None if w.p99 is None else float(w.p99))


def _split(
    source: Mapping[str, Any] | None, target: Mapping[str, Any], t: shift.Traffic, warming: bool = False
) -> dict[str, Any] | None:
    """The :data:`runner.connect.TRAFFIC` value of a shift from ``source`` to ``target`` at
    ``t`` (weights in basis points; ``warming``: both at 0, the service's own cluster keeps all
    traffic); None when the two run the same revision (a revision is what the mesh tells apart)
    or there is no source."""
    if source is None:
        return None
    src, dst = source.get("definition") or {}, target.get("definition") or {}
    a, b = (src.get("family", ""), src.get("revision", 0)), (dst.get("family", ""), dst.get("revision", 0))
    if a == b:
        return None
    green = round(t.green * 100)
    blue = 0 if warming else 10000 - green
    return {"weights": [[*a, blue], [*b, green]], "test": list(b) if t.test else None}


async def _into_alarm(queue: asyncio.Queue[Any]) -> None:
    """Return once ``queue`` (alarm state changes) has one into ALARM."""
    while (await queue.get()).new != "ALARM":
        pass


def _recent(events: list[dict[str, Any]], message: str, now: float) -> bool:
    """The same message was written less than :data:`REPEAT_EVENT_AFTER` seconds ago."""
    return any(e["message"] == message and now - e["createdAt"] < REPEAT_EVENT_AFTER for e in events[:20])


# -- wiring -----------------------------------------------------------------------------------
def install(
    platform: Any,
    registrar: InstanceRegistry | None = None,
    addresses: Callable[[str], Awaitable[str]] | None = None,
    prewarm: Callable[[list[str], list[str]], Awaitable[Any]] | None = None,
    alarms: AlarmStates | None = None,
    metrics: RevisionMetrics | None = None,
    targets: TargetGroups | None = None,
    rules: ListenerRules | None = None,
) -> None:
    """Run the loop with the platform, registering tasks in ``registrar`` (bridge tasks at the
    container instance's address ``addresses`` gives); a new deployment's images are pulled
    ahead with ``prewarm`` (the supervisor's); traffic shifts read ``alarms``, canary analyses
    ``metrics``; ``loadBalancers`` register tasks in ``targets``, shifts behind them move ``rules``."""

    async def serve(p: Any) -> AsyncIterator[None]:
        loop = ServiceLoop(p.store, p.config, registrar, addresses, prewarm, alarms, metrics, targets, rules)
        await loop.start()
        try:
            yield
        finally:
            await loop.stop()

    platform.contexts.append(serve)
