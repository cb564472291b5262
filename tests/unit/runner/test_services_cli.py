"""``dockyard services NAME --watch``: the exit status of a watched deployment."""

import pytest

from runner import services_cli


class UserError(Exception):
    pass


class Ctx:
    UserError = UserError


def dep(id_: str, status: str, rollout: str, td: str = "arn:td/app:1", n: int = 1) -> dict:
    return {"id": id_, "status": status, "taskDefinition": td, "desiredCount": n, "runningCount": n,
            "pendingCount": 0, "rolloutState": rollout}


def svc(deps: list[dict], events: list[tuple[str, float, str]] = ()) -> dict:
    return {"deployments": deps, "runningCount": 1, "desiredCount": 1, "pendingCount": 0,
            "events": [{"id": i, "createdAt": t, "message": m} for i, t, m in events]}


class Client:
    """Answers DescribeServices with each of ``states`` in turn (the last one repeated)."""

    def __init__(self, states: list[dict]) -> None:
        self.states = states

    def call(self, target: str, operation: str, params: dict) -> dict:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"services": [state]}


def dep_created(d: dict, at: float) -> dict:
    return {**d, "createdAt": at}


def test_a_rolled_back_deployment_exits_1_even_though_the_service_ends_steady(capsys):
    new = dep_created(dep("ecs-svc/new", "PRIMARY", "IN_PROGRESS", "arn:td/app:2"), 10)
    old = dep_created(dep("ecs-svc/old", "ACTIVE", "COMPLETED"), 1)
    back = dep_created(dep("ecs-svc/back", "PRIMARY", "COMPLETED"), 20)
    failed = "(service app) deployment ecs-svc/new deployment failed: tasks failed to start."
    states = [
        svc([new, old]),
        svc([new, old]),
        # the failed deployment is already retired when we look again: only its event tells
        svc([back], [("e2", 21, "(service app) has reached a steady state."), ("e1", 20, failed)]),
    ]
    assert services_cli.watch(Client(states), "default", "app", Ctx(), timeout=30, interval=0) == 1
    out = capsys.readouterr().out
    assert "deployment ecs-svc/new failed" in out and "rolled back" in out.splitlines()[-1]


def test_the_watched_deployment_completing_exits_0(capsys):
    new = dep_created(dep("ecs-svc/new", "PRIMARY", "IN_PROGRESS"), 10)
    done = dep_created(dep("ecs-svc/new", "PRIMARY", "COMPLETED"), 10)
    assert services_cli.watch(Client([svc([new]), svc([new]), svc([done])]), "d", "app", Ctx(), 30, 0) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "service app is steady: 1/1 running"


@pytest.mark.parametrize("status", ["PRIMARY", "ACTIVE"])
def test_watched_failed_sees_the_deployment_failed_whatever_its_status(status):
    s = svc([dep("ecs-svc/new", status, "FAILED"), dep("ecs-svc/back", "PRIMARY", "IN_PROGRESS")])
    assert services_cli.watched_failed(s, "ecs-svc/new", [])
    assert not services_cli.watched_failed(s, "ecs-svc/back", [])


def test_an_event_line_carries_the_time_of_its_change_not_now():
    import time

    from runner.tasks_cli import _describe_event

    at = time.time() - 3 * 3600
    line = _describe_event({"type": "service", "serviceName": "web", "time": at, "deployments": []})
    assert line.startswith(time.strftime("%H:%M:%S", time.localtime(at)) + " service web")


def _event(message, at):
    return {"id": str(at) + message[:5], "createdAt": at, "message": message}


def test_a_watch_begun_during_a_rollback_follows_the_deployment_that_failed():
    s = {"events": [
        _event("(service b) rolling back to deployment ecs-svc/good (taskDefinition td:1).", 99.5),
        _event("(service b) deployment ecs-svc/bad deployment failed: tasks failed to start.", 99.5),
        _event("(service b) deployment ecs-svc/older deployment failed: tasks failed to start.", 10.0),
    ]}
    assert services_cli.rollback_origin(s, 100.0) == "ecs-svc/bad"
    assert services_cli.rollback_origin(s, 200.0) == ""  # a later deployment is not a rollback
    s["events"] = s["events"][1:]
    assert services_cli.rollback_origin(s, 100.0) == ""  # a failure without rollback: not one
