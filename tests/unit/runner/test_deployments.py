"""The pure service reconciler (runner.deployments), table-driven like Nomad's reconciler tests."""

from __future__ import annotations

from dataclasses import replace

import pytest

from runner.deployments import (
    SCALING_REASON,
    UNHEALTHY_REASON,
    Deployment,
    Plan,
    Rollback,
    Spec,
    Start,
    Stop,
    TaskState,
    failure_threshold,
    plan,
)

NOW = 1000.0
NEW = Deployment("ecs-svc/2", "PRIMARY", "IN_PROGRESS")
OLD = Deployment("ecs-svc/1", "ACTIVE", "COMPLETED")
DONE = Deployment("ecs-svc/2", "PRIMARY", "COMPLETED")


def running(ident: str, dep: str = NEW.id, **kw: object) -> TaskState:
    base = TaskState(ident, dep, "RUNNING", "RUNNING", ever_running=True, created_at=float(len(ident)))
    return replace(base, **kw)  # type: ignore[arg-type]


def pending(ident: str, dep: str = NEW.id, **kw: object) -> TaskState:
    return replace(TaskState(ident, dep, "PENDING", "RUNNING"), **kw)  # type: ignore[arg-type]


def failed(ident: str, dep: str = NEW.id, at: float = NOW - 100, **kw: object) -> TaskState:
    base = TaskState(ident, dep, "STOPPED", "STOPPED", stop_code="TaskFailedToStart", stopped_at=at)
    return replace(base, **kw)  # type: ignore[arg-type]


def scaling(dep: Deployment = NEW) -> str:
    return SCALING_REASON.format(id=dep.id)


def started(p: Plan) -> int:
    return p.started


def stopped(p: Plan) -> set[str]:
    return {s.task for s in p.stops}


# (name, spec, deployments, tasks, expected starts, expected stopped ids)
REPLICA_CASES = [
    ("a new service starts every task", Spec(2), [NEW], [], 2, set()),
    (
        "a service at its desired count does nothing",
        Spec(2),
        [DONE],
        [running("a"), running("b")],
        0,
        set(),
    ),
    (
        "a stopped task is replaced",
        Spec(2),
        [DONE],
        [running("a"), running("b", desired_status="STOPPED", last_status="STOPPED")],
        1,
        set(),
    ),
    (
        "a task being stopped no longer counts",
        Spec(2),
        [DONE],
        [running("a"), running("b", desired_status="STOPPED")],
        1,
        set(),
    ),
    ("scale-in stops pending tasks first", Spec(1), [DONE], [running("a"), pending("bb")], 0, {"bb"}),
    ("scale to zero stops everything", Spec(0), [DONE], [running("a"), running("bb")], 0, {"a", "bb"}),
    (
        "rolling with 100/200 starts all new tasks and keeps the old",
        Spec(2),
        [NEW, OLD],
        [running("a", OLD.id), running("b", OLD.id)],
        2,
        set(),
    ),
    (
        "rolling keeps old tasks until the new ones are healthy",
        Spec(2),
        [NEW, OLD],
        [running("a", OLD.id), running("b", OLD.id), pending("c"), pending("d")],
        0,
        set(),
    ),
    (
        "rolling stops old tasks as new ones become healthy",
        Spec(2),
        [NEW, OLD],
        [running("a", OLD.id), running("bb", OLD.id), running("c"), pending("d")],
        0,
        {"a"},
    ),
    (
        "rolling with 50/100 stops one old task and starts one in its room",
        Spec(2, 50, 100),
        [NEW, OLD],
        [running("a", OLD.id), running("bb", OLD.id)],
        1,
        {"a"},
    ),
    (
        "rolling with 50/100 starts in the room it made",
        Spec(2, 50, 100),
        [NEW, OLD],
        [running("bb", OLD.id)],
        1,
        set(),
    ),
    (
        "rolling with 0/100 replaces everything at once",
        Spec(2, 0, 100),
        [NEW, OLD],
        [running("a", OLD.id), running("bb", OLD.id)],
        2,
        {"a", "bb"},
    ),
    (
        "old tasks that are not healthy stop at once",
        Spec(2),
        [NEW, OLD],
        [running("a", OLD.id, health="UNHEALTHY"), pending("bb", OLD.id), running("c"), running("d")],
        0,
        {"a", "bb"},
    ),
    (
        "max percent caps the tasks started",
        Spec(4, 100, 150),
        [NEW, OLD],
        [running(x, OLD.id) for x in ("a", "b", "c", "d")],
        2,
        set(),
    ),
    (
        "a task with a health check counts only when HEALTHY",
        Spec(1),
        [NEW, OLD],
        [running("a", OLD.id), running("b", checked=True, health="UNKNOWN")],
        0,
        set(),
    ),
]


@pytest.mark.parametrize(
    "spec,deployments,tasks,starts,stops",
    [c[1:] for c in REPLICA_CASES],
    ids=[c[0] for c in REPLICA_CASES],
)
def test_replica_plans(
    spec: Spec, deployments: list[Deployment], tasks: list[TaskState], starts: int, stops: set[str]
) -> None:
    p = plan(spec, deployments, tasks, NOW)
    assert started(p) == starts
    assert stopped(p) == stops
    assert all(s.deployment == NEW.id for s in p.starts)


def test_live_tasks_never_exceed_maximum_percent_nor_fall_below_minimum_healthy() -> None:
    """Simulate a rolling deployment step by step: every plan stays within the bounds."""
    spec = Spec(4, 50, 150)
    tasks = {f"o{i}": running(f"o{i}", OLD.id) for i in range(4)}
    deployments = [NEW, OLD]
    n = 0
    for _ in range(20):
        p = plan(spec, deployments, list(tasks.values()), NOW)
        for s in p.stops:
            tasks[s.task] = replace(tasks[s.task], desired_status="STOPPED", last_status="STOPPED")
        for s in p.starts:
            for _ in range(s.count):
                n += 1
                tasks[f"n{n}"] = pending(f"n{n}")
        live = [t for t in tasks.values() if t.live]
        assert len(live) <= 6
        healthy = [t for t in live if t.last_status == "RUNNING"]
        assert len(healthy) >= 2
        tasks = {k: replace(t, last_status="RUNNING") if t.live else t for k, t in tasks.items()}
        if p.rollouts and p.rollouts[0].state == "COMPLETED":
            break
    else:
        raise AssertionError("the deployment never completed")
    assert {t.deployment for t in tasks.values() if t.live} == {NEW.id}
    assert OLD.id in p.retire and p.steady


def test_an_unhealthy_task_is_replaced_before_it_is_stopped() -> None:
    tasks = [
        running("a", checked=True, health="HEALTHY"),
        running("u", checked=True, health="UNHEALTHY"),
    ]
    first = plan(Spec(2), [DONE], tasks, NOW)
    assert first.starts == (Start(DONE.id, 1),) and first.stops == ()
    tasks.append(pending("r", checked=True))
    assert plan(Spec(2), [DONE], tasks, NOW).stops == ()
    tasks[-1] = running("r", checked=True, health="HEALTHY")
    second = plan(Spec(2), [DONE], tasks, NOW)
    assert second.stops == (Stop("u", UNHEALTHY_REASON),) and second.starts == ()


def test_an_unhealthy_task_stops_first_when_maximum_percent_leaves_no_room() -> None:
    tasks = [
        running("a", checked=True, health="HEALTHY"),
        running("u", checked=True, health="UNHEALTHY"),
    ]
    p = plan(Spec(2, 50, 100), [DONE], tasks, NOW)
    assert p.starts == () and p.stops == (Stop("u", UNHEALTHY_REASON),)


def test_the_circuit_breaker_rolls_back_to_the_last_completed_deployment() -> None:
    tasks = [running("a", OLD.id), running("b", OLD.id)] + [failed(f"f{i}") for i in range(3)]
    p = plan(Spec(2, breaker=True, rollback=True), [NEW, OLD], tasks, NOW, last_completed=OLD)
    assert p.rollback == Rollback(NEW.id, OLD.id)
    assert p.rollouts[0].state == "FAILED" and "failed to start" in p.rollouts[0].reason
    assert p.starts == () and p.stops == ()


def test_below_the_threshold_the_breaker_does_not_trip() -> None:
    tasks = [running("a", OLD.id), running("b", OLD.id), failed("f1"), failed("f2")]
    p = plan(Spec(2, breaker=True, rollback=True), [NEW, OLD], tasks, NOW + 1000, last_completed=OLD)
    assert p.rollback is None and p.failed_tasks[NEW.id] == 2 and started(p) == 2


def test_a_failed_deployment_without_rollback_starts_nothing_more() -> None:
    tasks = [failed(f"f{i}") for i in range(3)]
    p = plan(Spec(2, breaker=True), [NEW], tasks, NOW + 1000)
    assert p.rollouts[0].state == "FAILED" and p.rollback is None and p.starts == ()
    again = plan(Spec(2, breaker=True), [replace(NEW, rollout="FAILED")], tasks, NOW + 1000)
    assert again.starts == () and again.rollouts == ()


def test_scheduler_initiated_stops_do_not_count_as_failures() -> None:
    stop = failed("s", stop_code="ServiceSchedulerInitiated", stopped_reason=scaling())
    p = plan(Spec(2, breaker=True), [NEW], [stop] * 5, NOW)
    assert p.failed_tasks[NEW.id] == 0 and started(p) == 2


def test_start_failures_back_off_exponentially() -> None:
    tasks = [failed("f1", at=NOW - 0.1), failed("f2", at=NOW - 0.2)]
    p = plan(Spec(2), [NEW], tasks, NOW)
    assert p.starts == () and p.wake_at == pytest.approx(NOW - 0.1 + 1.0)
    assert started(plan(Spec(2), [NEW], tasks, NOW + 1.0)) == 2


def test_a_task_killed_after_running_is_replaced_without_backoff() -> None:
    killed = running(
        "k",
        desired_status="STOPPED",
        last_status="STOPPED",
        stop_code="EssentialContainerExited",
        stopped_at=NOW,
    )
    p = plan(Spec(2), [DONE], [running("a"), killed], NOW)
    assert started(p) == 1 and p.wake_at is None


@pytest.mark.parametrize("desired,threshold", [(1, 3), (2, 3), (6, 3), (7, 4), (100, 50), (1000, 200)])
def test_the_failure_threshold_is_half_the_desired_count_within_3_and_200(
    desired: int, threshold: int
) -> None:
    assert failure_threshold(desired) == threshold


def test_a_deployment_completes_and_the_service_is_steady_when_old_tasks_are_gone() -> None:
    p = plan(Spec(2), [NEW, OLD], [running("a"), running("b")], NOW)
    assert [r.state for r in p.rollouts] == ["COMPLETED"] and p.retire == (OLD.id,) and p.steady


ALARM = "Alarm(s) web-5xx went into ALARM state during the service deployment."


def test_an_alarm_rolls_a_rolling_deployment_back_to_the_last_completed_one() -> None:
    tasks = [running("a"), running("b", OLD.id)]
    p = plan(Spec(2, alarm=ALARM, alarm_rollback=True), [NEW, OLD], tasks, NOW, last_completed=OLD)
    assert p.rollback == Rollback(NEW.id, OLD.id)
    assert [(r.state, r.reason) for r in p.rollouts] == [("FAILED", ALARM)] and p.starts == ()


def test_an_alarm_without_rollback_fails_the_deployment_and_starts_nothing_more() -> None:
    p = plan(Spec(2, alarm=ALARM), [NEW, OLD], [running("b", OLD.id)], NOW, last_completed=OLD)
    assert p.rollback is None and p.rollouts[0].state == "FAILED" and p.starts == ()


def test_an_alarm_does_not_fail_a_completed_deployment() -> None:
    p = plan(Spec(2, alarm=ALARM, alarm_rollback=True), [DONE], [running("a"), running("b")], NOW,
             last_completed=OLD)
    assert p.rollback is None and p.rollouts == () and p.steady


def test_with_alarms_a_done_deployment_bakes_before_it_completes() -> None:
    tasks = [running("a"), running("b")]
    first = plan(Spec(2, bake=30), [NEW, OLD], tasks, NOW)
    assert first.ready and first.rollouts == () and not first.steady and first.wake_at == NOW + 30
    baking = plan(Spec(2, bake=30), [replace(NEW, ready_at=NOW), OLD], tasks, NOW + 29)
    assert baking.rollouts == () and baking.wake_at == NOW + 30 and baking.retire == (OLD.id,)
    done = plan(Spec(2, bake=30), [replace(NEW, ready_at=NOW)], tasks, NOW + 30)
    assert [r.state for r in done.rollouts] == ["COMPLETED"] and done.steady


def test_a_service_with_pending_tasks_is_not_steady() -> None:
    p = plan(Spec(2), [DONE], [running("a"), pending("b")], NOW)
    assert not p.steady and p.rollouts == ()


DAEMON = Spec(0, 0, 100, strategy="DAEMON")
DAEMON_CASES = [
    ("one task per eligible instance", [], ["i1", "i2"], {"i1", "i2"}, set()),
    (
        "an instance with its task needs nothing",
        [running("a", instance="i1")],
        ["i1", "i2"],
        {"i2"},
        set(),
    ),
    (
        "a second task on an instance is stopped",
        [running("a", instance="i1"), pending("bb", instance="i1")],
        ["i1"],
        set(),
        {"bb"},
    ),
    (
        "a task on an instance no longer eligible is stopped",
        [running("a", instance="i9")],
        ["i1"],
        {"i1"},
        {"a"},
    ),
    (
        "an old deployment's task is replaced on its instance",
        [running("a", OLD.id, instance="i1")],
        ["i1"],
        {"i1"},
        {"a"},
    ),
    (
        "an unhealthy daemon is replaced",
        [running("a", instance="i1", health="UNHEALTHY")],
        ["i1"],
        {"i1"},
        {"a"},
    ),
]


@pytest.mark.parametrize(
    "tasks,instances,starts_on,stops", [c[1:] for c in DAEMON_CASES], ids=[c[0] for c in DAEMON_CASES]
)
def test_daemon_plans(
    tasks: list[TaskState], instances: list[str], starts_on: set[str], stops: set[str]
) -> None:
    p = plan(DAEMON, [NEW, OLD], tasks, NOW, instances=instances)
    assert {s.instance for s in p.starts} == starts_on
    assert all(s.count == 1 for s in p.starts)
    assert stopped(p) == stops


def test_a_daemon_service_is_steady_with_one_healthy_task_per_instance() -> None:
    p = plan(
        DAEMON,
        [DONE],
        [running("a", instance="i1"), running("b", instance="i2")],
        NOW,
        instances=["i1", "i2"],
    )
    assert p.steady and p.starts == () and p.stops == ()


# -- task scale-in protection (runner.protection) ----------------------------------------------
def test_scale_in_stops_unprotected_tasks_and_waits_for_the_protected_ones() -> None:
    tasks = [running("aa", dep=DONE.id, protected_until=NOW + 60), running("bbb", dep=DONE.id),
             running("c", dep=DONE.id, protected_until=NOW + 30)]
    p = plan(Spec(1), [DONE], tasks, NOW)
    assert stopped(p) == {"bbb"} and p.wake_at == NOW + 30 and not p.steady
    later = [t for t in tasks if t.id != "bbb"]
    assert stopped(plan(Spec(1), [DONE], later, NOW + 31)) == {"c"}  # c's protection ended
    assert stopped(plan(Spec(1), [DONE], later, NOW + 61)) == {"aa"}  # both ended: the newest goes


def test_an_expired_protection_protects_nothing() -> None:
    tasks = [running("a", dep=DONE.id, protected_until=NOW - 1), running("bb", dep=DONE.id)]
    assert len(stopped(plan(Spec(1), [DONE], tasks, NOW))) == 1


def test_a_deployment_keeps_a_protected_task_of_the_old_revision_until_its_protection_ends() -> None:
    tasks = [running("o1", dep=OLD.id, protected_until=NOW + 600), running("o2", dep=OLD.id),
             running("n1"), running("n2")]
    p = plan(Spec(2), [NEW, OLD], tasks, NOW)
    assert stopped(p) == {"o2"} and p.wake_at == NOW + 600 and not p.rollouts and OLD.id not in p.retire
    after = plan(Spec(2), [NEW, OLD], tasks[:1] + tasks[2:], NOW + 601)
    assert stopped(after) == {"o1"}


def test_an_unhealthy_protected_task_is_still_replaced() -> None:
    tasks = [running("a", checked=True, health="HEALTHY"),
             running("u", checked=True, health="UNHEALTHY", protected_until=NOW + 600),
             running("r", checked=True, health="HEALTHY")]
    assert plan(Spec(2), [DONE], tasks, NOW).stops == (Stop("u", UNHEALTHY_REASON),)


# -- draining container instances (UpdateContainerInstancesState) -------------------------------
def test_a_draining_instances_task_is_replaced_first_then_stopped() -> None:
    from runner.deployments import DRAIN_REASON

    tasks = [running("a", dep=DONE.id, draining=True), running("bb", dep=DONE.id)]
    first = plan(Spec(2), [DONE], tasks, NOW)  # 100/200: the replacement first
    assert first.starts == (Start(DONE.id, 1),) and first.stops == ()
    tasks.append(pending("ccc", dep=DONE.id))
    assert plan(Spec(2), [DONE], tasks, NOW).stops == ()  # not before the replacement runs
    tasks[-1] = running("ccc", dep=DONE.id)
    second = plan(Spec(2), [DONE], tasks, NOW)
    assert second.stops == (Stop("a", DRAIN_REASON),) and second.starts == ()


def test_with_minimum_healthy_50_a_drain_may_stop_before_replacing() -> None:
    from runner.deployments import DRAIN_REASON

    tasks = [running("a", dep=DONE.id, draining=True), running("b", dep=DONE.id, draining=True),
             running("cc", dep=DONE.id), running("dd", dep=DONE.id)]
    p = plan(Spec(4, 50, 100), [DONE], tasks, NOW)
    assert {s.reason for s in p.stops} == {DRAIN_REASON} and stopped(p) == {"a", "b"}
    assert started(p) == 2  # as ECS documents it: stop two, start two (the room the stops free)


def test_a_pending_task_on_a_draining_instance_stops_at_once_and_a_protected_one_waits() -> None:
    tasks = [pending("p", dep=DONE.id, draining=True), running("x", dep=DONE.id, draining=True,
                                                               protected_until=NOW + 60)]
    p = plan(Spec(2), [DONE], tasks, NOW)
    assert stopped(p) == {"p"} and started(p) == 2 and p.wake_at == NOW + 60

def test_a_kept_deployment_keeps_its_tasks_while_the_new_one_scales_to_full_size():
    spec = Spec(desired=2, max_percent=200, keep=(OLD.id,))
    tasks = [running("a1", OLD.id), running("a2", OLD.id), running("b1"), running("b2")]
    p = plan(spec, [NEW, OLD], tasks, NOW)
    assert p.stops == () and p.starts == () and not p.rollouts  # not COMPLETED while old tasks run
    unkept = plan(replace(spec, keep=()), [NEW, OLD], tasks, NOW)
    assert {s.task for s in unkept.stops} == {"a1", "a2"}


def test_a_held_deployment_starts_nothing():
    p = plan(Spec(desired=2, hold=True, keep=(OLD.id,)), [NEW, OLD], [running("a1", OLD.id)], NOW)
    assert p.starts == () and p.stops == ()
