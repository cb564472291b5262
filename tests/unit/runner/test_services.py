"""Service helpers that are pure: event history bounds, deployments (tags by ARN: test_tags.py)."""

from __future__ import annotations

import pytest

from runner import services
from runner.errors import InvalidParameterException


def test_events_keep_the_newest_hundred_newest_first() -> None:
    events: list[dict] = []
    for i in range(150):
        events = services.add_event(events, f"m{i}", float(i))
    assert len(events) == services.MAX_EVENTS and events[0]["message"] == "m149"
    assert len({e["id"] for e in events}) == services.MAX_EVENTS


def test_a_new_deployment_has_an_ecs_id_and_starts_in_progress() -> None:
    dep = services.new_deployment({"taskDefinitionArn": "arn:td:1"}, {"launchType": "FARGATE"}, 5.0)
    assert dep["id"].startswith("ecs-svc/") and len(dep["id"]) == len("ecs-svc/") + 19
    assert (dep["status"], dep["rolloutState"], dep["platformVersion"]) == (
        "PRIMARY",
        "IN_PROGRESS",
        "1.4.0",
    )


@pytest.mark.parametrize(
    "value,strategy",
    [
        ({"maximumPercent": 50}, "REPLICA"),
        ({"minimumHealthyPercent": 101}, "REPLICA"),
        ({"maximumPercent": 200}, "DAEMON"),
        ({"deploymentCircuitBreaker": {"enable": "yes"}}, "REPLICA"),
        ("fast", "REPLICA"),
    ],
)
def test_bad_deployment_configurations_are_refused(value: object, strategy: str) -> None:
    with pytest.raises(InvalidParameterException):
        services.deployment_configuration(value, strategy)


def test_deployment_configuration_defaults_follow_the_scheduling_strategy() -> None:
    assert services.deployment_configuration(None, "REPLICA")["maximumPercent"] == 200
    assert services.deployment_configuration(None, "DAEMON")["minimumHealthyPercent"] == 0


def test_a_new_strategy_does_not_keep_the_old_strategys_fields() -> None:
    old = services.deployment_configuration(
        {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5,
         "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}]}, "REPLICA")
    new = services.deployment_configuration({"strategy": "CANARY", "canaryConfiguration": {}}, "REPLICA", old)
    assert "lifecycleHooks" not in new and "bakeTimeInMinutes" not in new and new["strategy"] == "CANARY"
    same = services.deployment_configuration({"bakeTimeInMinutes": 2}, "REPLICA", old)
    assert same["lifecycleHooks"] == old["lifecycleHooks"] and same["bakeTimeInMinutes"] == 2
