"""ECS's events in EventBridge's envelope: task and container-instance state changes, and the
Service Action and Deployment State Change events told from two views of a service; rules of
AWS's documented examples match them."""

from __future__ import annotations

from runner.eventbridge import pattern
from runner.eventbridge.envelope import (
    envelope,
    instance_event,
    iso,
    service_events,
    service_view,
    task_event,
)

CLUSTER = "arn:aws:ecs:us-east-1:000000000000:cluster/c"
SERVICE = "arn:aws:ecs:us-east-1:000000000000:service/c/web"
TASK = {
    "taskArn": "arn:aws:ecs:us-east-1:000000000000:task/c/abc",
    "clusterArn": CLUSTER,
    "lastStatus": "STOPPED",
    "desiredStatus": "STOPPED",
    "createdAt": 1764694800.25,
    "stoppedAt": 1764694860.0,
    "group": "family:job",
    "stopCode": "EssentialContainerExited",
    "containers": [{"name": "c", "exitCode": 1}],
    "tags": [],
}


def test_times_are_written_as_eventbridge_writes_them() -> None:
    assert iso(1764694800.25) == "2025-12-02T17:00:00.250Z"
    assert iso(1764694800.25, millis=False) == "2025-12-02T17:00:00Z"


def test_a_task_state_change_has_the_task_as_detail() -> None:
    kind, detail, resources = task_event(TASK, 1764694861.0)
    assert kind == "ECS Task State Change" and resources == [TASK["taskArn"]]
    assert (
        detail["createdAt"] == "2025-12-02T17:00:00.250Z"
        and detail["updatedAt"] == "2025-12-02T17:01:01.000Z"
    )
    assert detail["stopCode"] == "EssentialContainerExited" and "tags" not in detail
    event = envelope("id-1", kind, "aws.ecs", detail, resources, "000000000000", "us-east-1", 1764694861.0)
    assert event["time"] == "2025-12-02T17:01:01Z" and event["version"] == "0"
    # AWS's example: a rule on tasks stopped because an essential container exited
    rule = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "lastStatus": ["STOPPED"],
            "stopCode": ["EssentialContainerExited"],
            "containers": {"exitCode": [{"anything-but": 0}]},
        },
    }
    assert pattern.matches(pattern.parse(__import__("json").dumps(rule)), event)
    assert not pattern.matches({"detail": {"lastStatus": ["RUNNING"]}}, event)


def test_a_container_instance_state_change_names_its_cluster() -> None:
    kind, detail, resources = instance_event(
        {"containerInstanceArn": "arn:ci", "status": "DRAINING", "registeredAt": 1764694800.0},
        CLUSTER,
        1764694801.0,
    )
    assert kind == "ECS Container Instance State Change" and resources == ["arn:ci"]
    assert detail["clusterArn"] == CLUSTER and detail["registeredAt"] == "2025-12-02T17:00:00.000Z"


def _service(events: list[dict], deployments: list[dict]) -> dict:
    return {"serviceArn": SERVICE, "clusterArn": CLUSTER, "events": events, "deployments": deployments}


def test_a_new_service_tells_its_deployment_in_progress() -> None:
    shape = _service([], [{"id": "ecs-svc/1", "rolloutState": "IN_PROGRESS"}])
    [(kind, detail, resources)] = service_events(None, shape, 1764694800.0)
    assert kind == "ECS Deployment State Change" and resources == [SERVICE]
    assert detail == {
        "eventType": "INFO",
        "eventName": "SERVICE_DEPLOYMENT_IN_PROGRESS",
        "deploymentId": "ecs-svc/1",
        "updatedAt": "2025-12-02T17:00:00.000Z",
        "reason": "ECS deployment ecs-svc/1 in progress.",
    }


def test_steady_state_and_completion_are_told_once() -> None:
    before = service_view(_service([], [{"id": "ecs-svc/1", "rolloutState": "IN_PROGRESS"}]))
    shape = _service(
        [{"id": "e1", "createdAt": 1764694800.0, "message": "(service web) has reached a steady state."}],
        [
            {
                "id": "ecs-svc/1",
                "rolloutState": "COMPLETED",
                "rolloutStateReason": "ECS deployment ecs-svc/1 completed.",
            }
        ],
    )
    out = service_events(before, shape, 1764694801.0)
    assert [(k, d["eventName"]) for k, d, _ in out] == [
        ("ECS Service Action", "SERVICE_STEADY_STATE"),
        ("ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED"),
    ]
    assert out[0][1] == {
        "eventType": "INFO",
        "eventName": "SERVICE_STEADY_STATE",
        "clusterArn": CLUSTER,
        "createdAt": "2025-12-02T17:00:00.000Z",
    }
    assert service_events(service_view(shape), shape, 1764694802.0) == []


def test_a_placement_failure_is_an_error_with_its_reason_and_a_failed_deployment_too() -> None:
    before = service_view(_service([], [{"id": "ecs-svc/2", "rolloutState": "IN_PROGRESS"}]))
    shape = _service(
        [
            {
                "id": "e2",
                "message": "(service web) was unable to place a task because no container "
                "instance met all of its requirements.",
            }
        ],
        [
            {
                "id": "ecs-svc/2",
                "rolloutState": "FAILED",
                "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start.",
            }
        ],
    )
    placement, failed = service_events(before, shape, 1764694801.0)
    assert (
        placement[1]["eventType"] == "ERROR" and placement[1]["eventName"] == "SERVICE_TASK_PLACEMENT_FAILURE"
    )
    assert placement[1]["reason"].startswith("because no container instance")
    assert failed[1]["eventType"] == "ERROR" and failed[1]["eventName"] == "SERVICE_DEPLOYMENT_FAILED"
    assert failed[1]["reason"] == "ECS deployment circuit breaker: tasks failed to start."


def test_other_service_messages_are_not_events() -> None:
    shape = _service([{"id": "e3", "message": "(service web) has started 1 tasks: (task abc)."}], [])
    assert service_events(service_view(_service([], [])), shape, 1.0) == []
