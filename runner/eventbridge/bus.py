"""The default event bus at work: events in, rules matched, targets invoked, failures retried
and dead-lettered; scheduled rules fired; ECS's own events put on the bus.

* :meth:`Bus.put` matches an event against the bus's enabled rules with a pattern and queues
  one delivery per target of each matching rule (at most :data:`MAX_PENDING` wait, the rest
  are dead letters at once: memory stays bounded).
* :data:`WORKERS` workers invoke the deliveries: an ECS target runs its tasks through RunTask's
  own path (:func:`runner.tasks.run_task`, with the request
  :func:`runner.eventbridge.targets.run_task_request` makes); every try is an invocation row. A
  failed try is tried again after :func:`runner.eventbridge.targets.next_try`'s delay (timers
  in memory, lost on a restart) or, when its ``RetryPolicy`` ran out, becomes a dead letter.
  One target failing never holds another back: each delivery is its own.
* The scheduler fires every enabled rule with a ``ScheduleExpression`` when it comes due (a
  ``rate()`` from the rule's creation, its minute ``events_minute_seconds`` long; a ``cron()``
  in UTC), with a ``Scheduled Event``; a due time missed while Dockyard was down fires once.
* The ECS watcher follows the store's task, service and container-instance changes from when
  it started and puts ECS's events (:mod:`runner.eventbridge.envelope`) on the bus.

A task started by an ECS target is checked against the operator's host-access setting again
when it runs (the caller's own rights were checked at PutTargets, :mod:`runner.eventbridge.api`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from dockyard.aws.errors import AwsError
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, hostaccess, instances, serviceshapes, taskdefs, tasks
from runner.autoscaling import schedule
from runner.eventbridge import api, envelope, pattern, scheduler, targets, transform
from runner.taskdef import trust
from runner.taskshapes import shape as task_shape

__all__ = ["MAX_PENDING", "Bus", "Delivery", "install"]

log = logging.getLogger("dockyard.runner.eventbridge")

MAX_PENDING = 10_000
WORKERS = 4
STOPPED_KEPT = 10_000
SERVICE_TOPIC = data.SERVICE_TOPIC


@dataclass(frozen=True)
class Delivery:
    """One event for one target of one rule (or of one schedule: ``scheduled``), and how many
    retries it had. ``bus`` and ``source`` name where its tries and dead letters are recorded:
    the event bus and the rule, or ``scheduler/<group>`` and the schedule."""

    bus: str
    source: str
    source_arn: str
    target_id: str
    target: Mapping[str, Any]
    event: dict[str, Any]
    started_by: str
    scheduled: bool = False
    retries: int = 0
    first_at: float = 0.0


def rule_delivery(rule: data.Rule, target: data.RuleTarget, event: dict[str, Any], now: float) -> Delivery:
    return Delivery(
        rule.bus,
        rule.name,
        rule.arn,
        target.id,
        target.config,
        event,
        f"events-rule/{rule.name}",
        first_at=now,
    )


class InvocationError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Bus:
    def __init__(self, store: Store, config: Config) -> None:
        self.store = store
        self.config = config
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._patterns: dict[str, tuple[str, dict[str, Any]]] = {}  # rule ARN -> (text, parsed)
        self._tasks_seen: dict[str, tuple[str, str]] = {}
        self._stopped: OrderedDict[str, None] = OrderedDict()
        self._instances_seen: dict[str, tuple[str, bool]] = {}
        self._services_seen: dict[str, envelope.ServiceView] = {}

    # -- lifecycle ----------------------------------------------------------------------------------
    async def start(self) -> None:
        since = self.store.revision
        self._baseline()
        loops = [self._watch(since), self._schedule(), *[self._work() for _ in range(WORKERS)]]
        self._tasks = [asyncio.create_task(c, name="runner-eventbridge") for c in loops]

    async def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    # -- events in --------------------------------------------------------------------------------
    def _pattern(self, rule: data.Rule) -> dict[str, Any] | None:
        cached = self._patterns.get(rule.arn)
        if cached is not None and cached[0] == rule.pattern:
            return cached[1]
        try:
            parsed = pattern.parse(rule.pattern or "")
        except pattern.PatternError:
            return None
        if len(self._patterns) > 10_000:
            self._patterns.clear()
        self._patterns[rule.arn] = (rule.pattern or "", parsed)
        return parsed

    def put(self, event: dict[str, Any]) -> None:
        """Match ``event`` against the default bus's rules and queue what their targets get."""
        for rule in data.enabled_rules(self.store, api.BUS, scheduled=False):
            checked = self._pattern(rule)
            if checked is not None and pattern.matches(checked, event):
                self._fan_out(rule, event)

    def aws_event(
        self, source: str, detail_type: str, resources: list[str], detail: Mapping[str, Any]
    ) -> None:
        """Put an AWS service's event (another part's: ECR's ``aws.ecr``) on the bus, in
        EventBridge's envelope."""
        self.put(
            envelope.envelope(
                str(uuid.uuid4()),
                detail_type,
                source,
                detail,
                resources,
                self.config.account_id,
                self.config.region,
                time.time(),
            )
        )

    def ecr_event(self, detail_type: str, resources: list[str], detail: Mapping[str, Any]) -> None:
        """The registry's events (``registry.seams.EventSink``)."""
        self.aws_event("aws.ecr", detail_type, resources, detail)

    def _fan_out(self, rule: data.Rule, event: dict[str, Any]) -> None:
        now = time.time()
        for target in data.targets_of(self.store, rule.bus, rule.name):
            self._enqueue(rule_delivery(rule, target, event, now))

    def _enqueue(self, d: Delivery) -> None:
        if self.queue.qsize() + len(self._timers) >= MAX_PENDING:
            asyncio.get_running_loop().create_task(
                self._dead(d, "ThrottlingException", "Too many invocations are waiting.", "")
            )
            return
        self.queue.put_nowait(d)

    # -- invocations ------------------------------------------------------------------------------
    async def _work(self) -> None:
        while True:
            d = await self.queue.get()
            try:
                await self.invoke(d)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("invocation failed", extra={"rule": d.source, "target": d.target_id})

    async def invoke(self, d: Delivery) -> None:
        """Try ``d`` once; record the try, and retry or dead-letter a failure."""
        event_id = str(d.event.get("id", ""))
        try:
            message = await self._run(d)
        except InvocationError as e:
            verdict = targets.next_try(
                d.target.get("RetryPolicy"),
                d.retries,
                time.time() - d.first_at,
                self.config.events_retry_seconds,
                e.code,
            )
            status = "RETRYING" if verdict.delay is not None else "FAILED"
            await self._record(d, event_id, status, f"{e.code}: {e.message}")
            if verdict.delay is None:
                await self._dead(d, e.code, e.message, verdict.exhausted)
                return
            handle: asyncio.TimerHandle | None = None

            def again() -> None:
                if handle is not None:
                    self._timers.discard(handle)
                self._enqueue(replace(d, retries=d.retries + 1))

            handle = asyncio.get_running_loop().call_later(verdict.delay, again)
            self._timers.add(handle)
            return
        await self._record(d, event_id, "SUCCEEDED", message)

    async def _run(self, d: Delivery) -> str:
        if d.scheduled:  # EventBridge Scheduler: Input with its context attributes, no transformer
            text = d.target.get("Input")
            if text is not None:
                text = transform.render(
                    str(text),
                    {
                        "aws.scheduler.schedule-arn": d.source_arn,
                        "aws.scheduler.scheduled-time": str(d.event.get("time", "")),
                        "aws.scheduler.execution-id": str(d.event.get("id", "")),
                        "aws.scheduler.attempt-number": d.retries + 1,
                    },
                )
        else:
            text = transform.target_input(
                d.target, d.event, d.source_arn, d.source, str(d.event.get("time", ""))
            )
        try:
            payload = json.loads(text) if text is not None else None
        except ValueError:
            raise InvocationError("ValidationException", "The target's input is not valid JSON.") from None
        request = targets.run_task_request(d.target, d.started_by, payload)
        try:
            self._trusted(request)
            result = await tasks.run_task(self.store, self.config, request)
        except AwsError as e:
            raise InvocationError(e.code, e.message) from None
        started = [t["taskArn"] for t in result.get("tasks") or []]
        if not started:
            reasons = (
                "; ".join(f"{f.get('reason', '')}" for f in result.get("failures") or []) or "no task started"
            )
            raise InvocationError("ECSRunTaskFailures", reasons)
        return " ".join(started)

    def _trusted(self, request: dict[str, Any]) -> None:
        """The operator's host-access setting, checked again when the task runs."""
        _, defn = taskdefs.definition(self.store, self.config, request["taskDefinition"])
        found = trust.host_access(defn, hostaccess.host_paths(self.config), trust.DOCKER_SOCKETS)
        if found and not hostaccess.cluster_allows(self.config, str(request["cluster"])):
            raise InvocationError(
                "AccessDeniedException",
                f"{found[0].field} is refused: host access is not allowed on cluster {request['cluster']}.",
            )

    async def _record(self, d: Delivery, event_id: str, status: str, message: str) -> None:
        async with self.store.transaction(durable=False) as tx:
            data.add_invocation(
                tx,
                data.Invocation(
                    d.bus,
                    d.source,
                    d.target_id,
                    event_id,
                    time.time(),
                    status,
                    d.retries,
                    message[:1000],
                ),
            )

    async def _dead(self, d: Delivery, code: str, message: str, exhausted: str) -> None:
        dlq = str((d.target.get("DeadLetterConfig") or {}).get("Arn") or "")
        log.warning("event dead-lettered", extra={"rule": d.source, "target": d.target_id, "error": code})
        async with self.store.transaction() as tx:
            data.add_dead_letter(
                tx,
                data.DeadLetter(
                    0,
                    d.bus,
                    d.source,
                    d.target_id,
                    str(d.target.get("Arn", "")),
                    dlq,
                    d.event,
                    code,
                    message[:1000],
                    exhausted,
                    d.retries,
                    time.time(),
                ),
            )

    # -- schedules --------------------------------------------------------------------------------
    async def _schedule(self) -> None:
        while True:
            try:
                await self.fire_due(time.time())
                await self.fire_schedules(time.time())
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduled rules failed")
            await asyncio.sleep(min(1.0, max(0.1, self.config.events_minute_seconds / 10)))

    async def fire_schedules(self, now: float) -> None:
        """Invoke the target of each enabled EventBridge Scheduler schedule that came due by
        ``now`` (a due time missed while Dockyard was down is invoked once)."""
        minute = self.config.events_minute_seconds
        for s in data.schedules(self.store, state="ENABLED"):
            since = s.last_due if s.last_due is not None else s.created_at
            due = scheduler.due_after(s, since, minute)
            window = (
                float(s.window.get("MaximumWindowInMinutes") or 0) * minute
                if s.window.get("Mode") == "FLEXIBLE"
                else 0.0
            )
            if due is None:
                if s.after_completion == "DELETE":
                    async with self.store.transaction() as tx:
                        data.delete_schedule(tx, s.group, s.name)
                continue
            if now < due + scheduler.window_offset(s.arn, due, window):
                continue
            fired = due
            for _ in range(10_000):  # skip what came due meanwhile: it fires once
                later = scheduler.due_after(s, fired, minute)
                if later is None or later + window > now:
                    break
                fired = later
            async with self.store.transaction() as tx:
                data.set_schedule_due(tx, s.group, s.name, fired)
            event = {"id": str(uuid.uuid4()), "time": envelope.iso(due, millis=False), "resources": [s.arn]}
            self._enqueue(
                Delivery(
                    f"scheduler/{s.group}",
                    s.name,
                    s.arn,
                    "target",
                    s.target,
                    event,
                    f"scheduler/{s.name}",
                    scheduled=True,
                    first_at=now,
                )
            )

    async def fire_due(self, now: float) -> None:
        """Fire each enabled scheduled rule whose schedule came due by ``now``."""
        for rule in data.enabled_rules(self.store, api.BUS, scheduled=True):
            try:
                sched = api.rule_schedule(str(rule.schedule), self.config.events_minute_seconds)
            except ValueError:
                continue
            since = rule.last_fired if rule.last_fired is not None else rule.created_at
            due = schedule.next_after(sched, since, anchor=rule.created_at)
            if due is None or due > now:
                continue
            async with self.store.transaction() as tx:
                data.set_rule_fired(tx, rule.bus, rule.name, now)
            event = envelope.envelope(
                str(uuid.uuid4()),
                "Scheduled Event",
                "aws.events",
                {},
                [rule.arn],
                self.config.account_id,
                self.config.region,
                due,
            )
            self._fan_out(rule, event)

    # -- ECS's events -----------------------------------------------------------------------------
    def _baseline(self) -> None:
        """What is there when the watcher starts: changes are told from it."""
        for task_id in data.unstopped_task_ids(self.store):
            t = data.task(self.store, task_id)
            if t is not None:
                self._tasks_seen[t.id] = (t.last_status, t.desired_status)
        for svc in data.live_services(self.store):
            with contextlib.suppress(Exception):
                shown = serviceshapes.shape(self.config, self.store, svc)
                self._services_seen[f"{svc.cluster}/{svc.name}"] = envelope.service_view(shown)

    async def _watch(self, since: int) -> None:
        topics = [tasks.TOPIC, SERVICE_TOPIC, instances.TOPIC]
        while True:
            try:
                changes = await self.store.changes(since, topics, timeout=15.0)
                if not changes:
                    continue
                times = data.change_times(self.store, changes[0].revision, changes[-1].revision)
                for ch in changes:
                    since = ch.revision
                    when = times.get(ch.revision, time.time())
                    for detail_type, detail, resources in await self._ecs_events(ch.topic, ch.key, when):
                        self.put(
                            envelope.envelope(
                                str(uuid.uuid4()),
                                detail_type,
                                "aws.ecs",
                                detail,
                                resources,
                                self.config.account_id,
                                self.config.region,
                                when,
                            )
                        )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ECS events failed")
                await asyncio.sleep(1.0)

    async def _ecs_events(
        self, topic: str, key: str, when: float
    ) -> list[tuple[str, dict[str, Any], list[str]]]:
        if topic == tasks.TOPIC:
            return self._task_events(key, when)
        if topic == SERVICE_TOPIC:
            cluster, _, name = key.partition("/")
            svc = data.service(self.store, cluster, name)
            if svc is None:
                self._services_seen.pop(key, None)
                return []
            shown = serviceshapes.shape(self.config, self.store, svc)
            out = envelope.service_events(self._services_seen.get(key), shown, when)
            self._services_seen[key] = envelope.service_view(shown)
            if svc.status == "INACTIVE":
                self._services_seen.pop(key, None)
            return out
        if topic == instances.TOPIC:
            inst = instances.get(self.store, self.config, key)
            if inst is None:
                self._instances_seen.pop(key, None)
                return []
            state = (inst.status, inst.connected)
            if self._instances_seen.get(key) == state:
                return []
            self._instances_seen[key] = state
            described = await instances.describe(
                self.store, self.config, {"cluster": inst.cluster, "containerInstances": [inst.arn]}
            )
            return [
                envelope.instance_event(s, clusters.cluster_arn(self.config, inst.cluster), when)
                for s in described.get("containerInstances") or []
            ]
        return []

    def _task_events(self, task_id: str, when: float) -> list[tuple[str, dict[str, Any], list[str]]]:
        if task_id in self._stopped:
            return []
        task = data.task(self.store, task_id)
        if task is None:
            self._tasks_seen.pop(task_id, None)
            return []
        state = (task.last_status, task.desired_status)
        if self._tasks_seen.get(task_id) == state:
            return []
        if task.last_status == "STOPPED":
            self._tasks_seen.pop(task_id, None)
            self._stopped[task_id] = None
            while len(self._stopped) > STOPPED_KEPT:
                self._stopped.popitem(last=False)
        else:
            self._tasks_seen[task_id] = state
        return [envelope.task_event(task_shape(self.config, task), when)]


def install(platform: Any) -> Bus:
    """Start the bus with the platform and return it (its :meth:`Bus.put` takes PutEvents')."""
    bus = Bus(platform.store, platform.config)

    async def serve(p: Any) -> AsyncIterator[None]:
        await bus.start()
        try:
            yield
        finally:
            await bus.stop()

    platform.contexts.append(serve)
    return bus
