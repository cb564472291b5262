"""The service reconciler, pure: what should happen next to make a service match its spec?

Given a service's :class:`Spec`, its deployments (one PRIMARY, older ones ACTIVE while they
drain), the last COMPLETED deployment, its tasks (live and recently stopped) and, for DAEMON
services, the eligible container instances, :func:`plan` returns a :class:`Plan`: tasks to
start (per deployment, or per instance for DAEMON), tasks to stop (with ECS's stopped reason),
rollout-state changes, an optional rollback, drained deployments to retire and whether the
service is in a steady state. Nothing here performs I/O; :mod:`runner.service_loop` applies
the plan. Modelled on Nomad's reconciler (``scheduler/reconciler``).

Rules (REPLICA), with ``D`` the desired count:

* ``lower = ceil(D * minimumHealthyPercent / 100)`` healthy tasks are kept at all times and at
  most ``upper = floor(D * maximumPercent / 100)`` tasks are live (desired RUNNING) at once.
* A task is *healthy* when RUNNING and, if its definition has a health check, HEALTHY.
* The PRIMARY deployment is topped up to ``D`` tasks that are not UNHEALTHY, within ``upper``.
  Its surplus is stopped (tasks not yet running first).
* Tasks of older deployments are stopped: those not healthy at once, healthy ones only while
  ``lower`` healthy tasks remain.
* An UNHEALTHY task is replaced first: its replacement is started (within ``upper``) and the
  unhealthy task is stopped once the replacement is healthy. Only when ``upper`` leaves no
  room is the unhealthy task stopped first (it does not count as healthy, so ``lower`` holds).
* Deployment circuit breaker (when enabled): a PRIMARY deployment IN_PROGRESS whose failed
  tasks (failed to start, essential container exited, failed health checks) reach the
  threshold ``clamp(ceil(D / 2), 3, 200)`` is FAILED; with rollback, a new deployment of the
  last COMPLETED deployment's task definition takes over (the shell creates it), else the
  failed deployment starts no more tasks.
* Tasks that never reached RUNNING slow further starts down (exponential backoff from 0.5 s up
  to 30 s, over the failures of the last 5 minutes); ``Plan.wake_at`` says when to look again.
* Draining container instances (``TaskState.draining``, UpdateContainerInstancesState): a
  task of the PRIMARY deployment on a draining instance is replaced as an older
  deployment's task is: its replacement is started (elsewhere: the placement skips draining
  instances) within ``upper``, and the task is stopped (:data:`DRAIN_REASON`) while ``lower``
  healthy tasks remain; one not yet running is stopped at once.
* Task scale-in protection (``TaskState.protected_until`` later than now,
  :mod:`runner.protection`): a protected task is not stopped as surplus nor as a task of an
  older deployment; the scale-in or the deployment waits for the protection to end
  (``Plan.wake_at``). An unhealthy protected task is still replaced, as in ECS.
* Traffic shifts (:mod:`runner.shift`): the tasks of a deployment in ``Spec.keep`` are never
  stopped (the shift's source, until its CLEAN_UP stage); with ``Spec.hold`` the PRIMARY
  deployment starts nothing (before SCALE_UP).
* The PRIMARY deployment is COMPLETED once it has exactly ``D`` healthy tasks and no older
  deployment has a live task; a non-primary deployment with no live task is retired.

DAEMON: one task of the PRIMARY deployment on every eligible instance; an instance's older
or unhealthy task is stopped as its new one is started; tasks on instances no longer
eligible are stopped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "DRAIN_REASON",
    "FAILURE_WINDOW",
    "SCALING_REASON",
    "UNHEALTHY_REASON",
    "Deployment",
    "Plan",
    "Rollback",
    "Rollout",
    "Spec",
    "Start",
    "Stop",
    "TaskState",
    "failure_threshold",
    "is_failed",
    "is_healthy",
    "plan",
]

UNHEALTHY_REASON = "Task failed container health checks"
ELB_UNHEALTHY_PREFIX = "Task failed ELB health checks in "  # runner.balancing.stopped_reason
DRAIN_REASON = "Task stopped during instance draining"
SCALING_REASON = "Scaling activity initiated by (deployment {id})"
FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_EXITED = "EssentialContainerExited"
FAILURE_WINDOW = 300.0  # seconds of start failures that count towards the backoff
MAX_BACKOFF = 30.0


@dataclass(frozen=True)
class Spec:
    """What the service asks for."""

    desired: int
    min_healthy_percent: int = 100
    max_percent: int = 200
    strategy: str = "REPLICA"  # or "DAEMON"
    breaker: bool = False
    rollback: bool = False
    keep: tuple[str, ...] = ()  # deployments whose tasks are not stopped (a traffic shift's source)
    hold: bool = False  # the PRIMARY deployment starts no task (a shift before SCALE_UP)


@dataclass(frozen=True)
class Deployment:
    id: str
    status: str = "PRIMARY"  # PRIMARY | ACTIVE
    rollout: str = "IN_PROGRESS"  # IN_PROGRESS | COMPLETED | FAILED


@dataclass(frozen=True)
class TaskState:
    """One task of the service as the reconciler sees it."""

    id: str
    deployment: str
    last_status: str = "PROVISIONING"
    desired_status: str = "RUNNING"
    health: str = "UNKNOWN"
    checked: bool = False  # its definition has a health check
    instance: str = ""
    stop_code: str = ""
    stopped_reason: str = ""
    ever_running: bool = False
    created_at: float = 0.0
    stopped_at: float | None = None
    protected_until: float | None = None  # task scale-in protection (runner.protection)
    draining: bool = False  # its container instance is DRAINING
    unhealthy_reason: str = ""  # why it is UNHEALTHY when not its containers (a load balancer)

    @property
    def live(self) -> bool:
        return self.desired_status == "RUNNING" and self.last_status != "STOPPED"


@dataclass(frozen=True)
class Start:
    deployment: str
    count: int
    instance: str = ""  # DAEMON: the instance to start on


@dataclass(frozen=True)
class Stop:
    task: str
    reason: str


@dataclass(frozen=True)
class Rollout:
    deployment: str
    state: str  # COMPLETED | FAILED
    reason: str


@dataclass(frozen=True)
class Rollback:
    failed: str  # the deployment that failed
    to: str  # the last COMPLETED deployment, whose task definition comes back


@dataclass(frozen=True)
class Plan:
    starts: tuple[Start, ...] = ()
    stops: tuple[Stop, ...] = ()
    rollouts: tuple[Rollout, ...] = ()
    rollback: Rollback | None = None
    retire: tuple[str, ...] = ()
    steady: bool = False
    wake_at: float | None = None
    failed_tasks: dict[str, int] = field(default_factory=dict)  # per deployment

    @property
    def started(self) -> int:
        return sum(s.count for s in self.starts)


def is_healthy(t: TaskState) -> bool:
    """RUNNING, still wanted and (when it has a health check) HEALTHY."""
    if not t.live or t.last_status != "RUNNING":
        return False
    return t.health == "HEALTHY" if t.checked else t.health != "UNHEALTHY"


def is_failed(t: TaskState) -> bool:
    """A stop that counts towards the circuit breaker."""
    if t.desired_status != "STOPPED":
        return False
    return (
        t.stop_code in (FAILED_TO_START, ESSENTIAL_EXITED)
        or t.stopped_reason == UNHEALTHY_REASON
        or t.stopped_reason.startswith(ELB_UNHEALTHY_PREFIX)
    )


def failure_threshold(desired: int) -> int:
    """ECS's circuit-breaker threshold: half the desired count, at least 3, at most 200."""
    return min(200, max(3, math.ceil(desired / 2)))


def _backoff(tasks: Iterable[TaskState], deployment: str, now: float) -> float | None:
    """When the deployment may start tasks again after start failures (None: now)."""
    recent = [
        t.stopped_at
        for t in tasks
        if t.deployment == deployment
        and is_failed(t)
        and not t.ever_running
        and t.stopped_at is not None
        and now - t.stopped_at <= FAILURE_WINDOW
    ]
    if not recent:
        return None
    until = max(recent) + min(MAX_BACKOFF, 0.5 * 2 ** (len(recent) - 1))
    return until if until > now else None


def _pending_first(tasks: Sequence[TaskState]) -> list[TaskState]:
    """Stop order: not yet running first, then the newest."""
    return sorted(tasks, key=lambda t: (t.last_status == "RUNNING", -t.created_at, t.id))


def plan(
    spec: Spec,
    deployments: Sequence[Deployment],
    tasks: Sequence[TaskState],
    now: float,
    *,
    last_completed: Deployment | None = None,
    instances: Sequence[str] = (),
) -> Plan:
    """The next step for one service (see module docstring)."""
    primary = next((d for d in deployments if d.status == "PRIMARY"), None)
    if primary is None:
        return Plan()
    failed = {d.id: sum(1 for t in tasks if t.deployment == d.id and is_failed(t)) for d in deployments}
    desired = len(instances) if spec.strategy == "DAEMON" else spec.desired
    rollouts: list[Rollout] = []
    blocked = primary.rollout == "FAILED"
    if (
        spec.breaker
        and primary.rollout == "IN_PROGRESS"
        and failed[primary.id] >= failure_threshold(desired)
    ):
        rollouts.append(
            Rollout(primary.id, "FAILED", "ECS deployment circuit breaker: tasks failed to start.")
        )
        if spec.rollback and last_completed is not None and last_completed.id != primary.id:
            return Plan(
                rollouts=tuple(rollouts),
                rollback=Rollback(primary.id, last_completed.id),
                failed_tasks=failed,
            )
        blocked = True
    wake_at = _backoff(tasks, primary.id, now)
    may_start = not blocked and wake_at is None and not spec.hold
    if spec.strategy == "DAEMON":
        starts, stops = _daemon(primary, tasks, instances, may_start)
    else:
        starts, stops = _replica(spec, primary, tasks, may_start, now)
        held = [t.protected_until for t in tasks if t.live and _protected(t, now)]
        if held and wake_at is None:  # look again when the first protection ends
            wake_at = min(held)  # (after may_start: a protection does not hold starts back)
    stopping = {s.task for s in stops}
    live_after = [t for t in tasks if t.live and t.id not in stopping]
    others = {d.id for d in deployments if d.id != primary.id}
    retire = tuple(sorted(d for d in others if not any(t.deployment == d for t in live_after)))
    quiet = not starts and not stops
    mine = [t for t in live_after if t.deployment == primary.id]
    done = (
        quiet
        and not any(t.deployment != primary.id for t in live_after)
        and len(mine) == desired
        and all(is_healthy(t) for t in mine)
    )
    rollout = primary.rollout
    if done and rollout == "IN_PROGRESS":
        rollouts.append(Rollout(primary.id, "COMPLETED", f"ECS deployment {primary.id} completed."))
        rollout = "COMPLETED"
    steady = done and rollout == "COMPLETED" and set(retire) == others
    return Plan(tuple(starts), tuple(stops), tuple(rollouts), None, retire, steady, wake_at, failed)


def _protected(t: TaskState, now: float) -> bool:
    return t.protected_until is not None and t.protected_until > now


def _replica(
    spec: Spec, primary: Deployment, tasks: Sequence[TaskState], may_start: bool, now: float = 0.0
) -> tuple[list[Start], list[Stop]]:
    desired = max(0, spec.desired)
    lower = math.ceil(desired * spec.min_healthy_percent / 100)
    upper = math.floor(desired * spec.max_percent / 100)
    scaling = SCALING_REASON.format(id=primary.id)
    live = [t for t in tasks if t.live]
    mine = [t for t in live if t.deployment == primary.id and not t.draining]
    unhealthy = [t for t in mine if t.health == "UNHEALTHY"]
    good = [t for t in mine if t.health != "UNHEALTHY"]
    old = [t for t in live if t.deployment != primary.id or t.draining]
    healthy = sum(1 for t in live if is_healthy(t))
    stops: list[Stop] = []

    # Surplus of the primary deployment (scale-in), protected tasks last and never stopped.
    surplus = sorted(_pending_first(good), key=lambda t: _protected(t, now))[: max(0, len(good) - desired)]
    for t in surplus:
        if _protected(t, now):
            continue
        stops.append(Stop(t.id, scaling))
        healthy -= is_healthy(t)
    # Older deployments and draining instances: not-healthy tasks at once, healthy ones while
    # `lower` holds; none of a kept deployment (what a traffic shift may still route to), nor a
    # protected task.
    for t in sorted(old, key=lambda t: (is_healthy(t), t.created_at, t.id)):
        if _protected(t, now) or t.deployment in spec.keep:
            continue
        if is_healthy(t):
            if healthy - 1 < lower:
                continue
            healthy -= 1
        stops.append(Stop(t.id, DRAIN_REASON if t.draining else scaling))

    kept = len(good) - sum(1 for s in stops if s.task in {t.id for t in good})
    deficit = max(0, desired - kept)
    room = max(0, upper - (len(live) - len(stops)))
    start = min(deficit, room) if may_start else 0
    # Unhealthy primary tasks: stop once a healthy replacement exists; when `upper` leaves no
    # room for the replacement, stop first (an unhealthy task does not count as healthy).
    healthy_mine = sum(1 for t in good if is_healthy(t))
    replaced = max(0, healthy_mine - (desired - len(unhealthy)))
    if may_start and deficit > start:
        replaced += deficit - start
    for t in sorted(unhealthy, key=lambda t: (t.created_at, t.id))[: min(len(unhealthy), replaced)]:
        stops.append(Stop(t.id, t.unhealthy_reason or UNHEALTHY_REASON))
    return ([Start(primary.id, start)] if start else []), stops


def _daemon(
    primary: Deployment, tasks: Sequence[TaskState], instances: Sequence[str], may_start: bool
) -> tuple[list[Start], list[Stop]]:
    scaling = SCALING_REASON.format(id=primary.id)
    eligible = set(instances)
    live = [t for t in tasks if t.live]
    starts: list[Start] = []
    stops: list[Stop] = []
    for t in live:
        if t.instance not in eligible:
            stops.append(Stop(t.id, scaling))
    for inst in instances:
        here = [t for t in live if t.instance == inst]
        mine = [t for t in here if t.deployment == primary.id and t.health != "UNHEALTHY"]
        keep = _pending_first(mine)[-1:] if mine else []
        for t in here:
            if t in keep:
                continue
            if t.deployment != primary.id and not keep and not may_start:
                continue  # keep the old daemon until its replacement can start
            reason = (t.unhealthy_reason or UNHEALTHY_REASON) if t.health == "UNHEALTHY" else scaling
            stops.append(Stop(t.id, reason))
        if not keep and may_start:
            starts.append(Start(primary.id, 1, inst))
    return starts, stops
