"""Service helpers that need only the store: tags by ARN, event history bounds, deployments."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from dockyard.store import Store
from runner import services
from runner.errors import InvalidParameterException

ARN = "arn:aws:ecs:us-east-1:000000000000:service/prod/web"


def store_with_service(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "db.sqlite", services.MIGRATIONS)

    async def insert() -> None:
        async with store.transaction() as tx:
            tx.execute(
                "INSERT INTO services (cluster, name, status, spec, created_at, updated_at)"
                " VALUES ('prod', 'web', 'ACTIVE', '{}', 0, 0)"
            )

    asyncio.run(insert())
    return store


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
