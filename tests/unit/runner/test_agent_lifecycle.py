"""runner.agent.lifecycle: dependsOn, health, essential exits, stop order (pure)."""

from __future__ import annotations

from runner.agent.lifecycle import (
    Observed,
    container_status,
    dependency_verdict,
    essential_exit,
    next_to_start,
    observe,
    stop_waves,
    task_health,
)

RUNNING = Observed(started=True, running=True)
EXITED_0 = Observed(started=True, exit_code=0)
EXITED_1 = Observed(started=True, exit_code=1)
HEALTHY = Observed(started=True, running=True, health="HEALTHY")


def test_dependency_conditions_follow_ecs() -> None:
    assert dependency_verdict("START", Observed()) == "wait"
    assert dependency_verdict("START", RUNNING) == "ok"
    assert dependency_verdict("COMPLETE", RUNNING) == "wait"
    assert dependency_verdict("COMPLETE", EXITED_1) == "ok"
    assert dependency_verdict("SUCCESS", EXITED_0) == "ok"
    assert dependency_verdict("SUCCESS", EXITED_1) == "failed"
    assert dependency_verdict("HEALTHY", RUNNING) == "wait"
    assert dependency_verdict("HEALTHY", HEALTHY) == "ok"
    assert dependency_verdict("HEALTHY", EXITED_0) == "failed"


def test_containers_start_once_their_dependencies_are_met() -> None:
    defs = [
        {
            "name": "app",
            "dependsOn": [
                {"containerName": "init", "condition": "SUCCESS"},
                {"containerName": "db", "condition": "HEALTHY"},
            ],
        },
        {"name": "init", "essential": False},
        {"name": "db"},
    ]
    assert next_to_start(defs, {}, set()) == (["init", "db"], "")
    seen = {"init": EXITED_0, "db": RUNNING}
    assert next_to_start(defs, seen, {"init", "db"}) == ([], "")
    seen["db"] = HEALTHY
    assert next_to_start(defs, seen, {"init", "db"}) == (["app"], "")


def test_a_failed_dependency_is_reported() -> None:
    defs = [
        {"name": "app", "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}]},
        {"name": "init"},
    ]
    ready, failed = next_to_start(defs, {"init": EXITED_1}, {"init"})
    assert ready == [] and "init" in failed and "SUCCESS" in failed


def test_dependents_stop_before_what_they_depend_on() -> None:
    defs = [{"name": "app", "dependsOn": [{"containerName": "db"}]}, {"name": "db"}, {"name": "side"}]
    assert stop_waves(defs) == [["app", "side"], ["db"]]


def test_only_an_essential_containers_exit_stops_the_task() -> None:
    defs = [{"name": "init", "essential": False}, {"name": "app"}]
    assert essential_exit(defs, {"init": EXITED_0, "app": RUNNING}) == ""
    assert essential_exit(defs, {"init": EXITED_0, "app": EXITED_1}) == "app"


def test_task_health_comes_from_essential_containers_with_health_checks() -> None:
    hc = {"command": ["CMD", "true"]}
    defs = [{"name": "a", "healthCheck": hc}, {"name": "b", "healthCheck": hc}, {"name": "c"}]
    assert task_health(defs, {"a": HEALTHY, "b": RUNNING}) == "UNKNOWN"
    assert task_health(defs, {"a": HEALTHY, "b": HEALTHY}) == "HEALTHY"
    assert task_health(defs, {"a": HEALTHY, "b": Observed(started=True, health="UNHEALTHY")}) == "UNHEALTHY"
    assert task_health([{"name": "c"}], {"c": RUNNING}) == "UNKNOWN"


def test_docker_inspect_states_are_observed() -> None:
    assert (
        observe(
            {
                "State": {
                    "Status": "created",
                    "Running": False,
                    "StartedAt": "0001-01-01T00:00:00Z",
                    "ExitCode": 0,
                }
            }
        )
        == Observed()
    )
    o = observe(
        {
            "State": {
                "Status": "exited",
                "Running": False,
                "StartedAt": "2026-01-01T00:00:00Z",
                "ExitCode": 137,
                "OOMKilled": True,
            }
        }
    )
    assert o.exit_code == 137 and o.oom and "OutOfMemoryError" in o.reason
    assert container_status(o) == "STOPPED"
    running = observe(
        {
            "State": {
                "Status": "running",
                "Running": True,
                "StartedAt": "2026-01-01T00:00:00Z",
                "Health": {"Status": "healthy"},
            }
        }
    )
    assert running.health == "HEALTHY" and container_status(running) == "RUNNING"
    gone = observe(None)
    assert gone.exit_code == 137 and container_status(gone) == "STOPPED"
