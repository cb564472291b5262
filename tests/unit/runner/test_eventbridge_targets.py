"""ECS targets: the checks PutTargets makes, the RunTask request of an invocation, and the retry
decisions of RetryPolicy."""

from __future__ import annotations

import pytest

from runner.eventbridge.targets import (
    MAX_DELAY,
    Retry,
    TargetError,
    check_target,
    cluster_of,
    next_try,
    run_task_request,
)

CLUSTER = "arn:aws:ecs:us-east-1:000000000000:cluster/jobs"
TARGET = {
    "Id": "run",
    "Arn": CLUSTER,
    "RoleArn": "arn:aws:iam::000000000000:role/ecsEvents",
    "EcsParameters": {"TaskDefinitionArn": "job:1"},
}


def test_the_cluster_of_an_ecs_target() -> None:
    assert cluster_of(CLUSTER) == "jobs"
    assert cluster_of("arn:aws:lambda:us-east-1:000000000000:function:f") is None


@pytest.mark.parametrize(
    "change, words",
    [
        ({"Id": "a b"}, "Target Id"),
        ({"Arn": "arn:aws:sqs:us-east-1:000000000000:q"}, "ECS targets only"),
        ({"RoleArn": None}, "RoleArn is required"),
        ({"EcsParameters": {}}, "TaskDefinitionArn"),
        ({"EcsParameters": {"TaskDefinitionArn": "job:1", "TaskCount": 11}}, "TaskCount"),
        ({"RetryPolicy": {"MaximumRetryAttempts": 186}}, "MaximumRetryAttempts"),
        ({"RetryPolicy": {"MaximumEventAgeInSeconds": 59}}, "MaximumEventAgeInSeconds"),
    ],
)
def test_put_targets_refuses(change: dict, words: str) -> None:
    with pytest.raises(TargetError, match=words):
        check_target({**TARGET, **change})


def test_a_good_target_passes() -> None:
    check_target({**TARGET, "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}})


def test_the_run_task_request_carries_the_ecs_parameters() -> None:
    target = {
        **TARGET,
        "EcsParameters": {
            "TaskDefinitionArn": "job:1",
            "TaskCount": 2,
            "LaunchType": "FARGATE",
            "Group": "batch",
            "NetworkConfiguration": {
                "awsvpcConfiguration": {
                    "Subnets": ["s-1"],
                    "SecurityGroups": ["sg-1"],
                    "AssignPublicIp": "DISABLED",
                }
            },
            "PlacementConstraints": [{"type": "memberOf", "expression": "attribute:x == y"}],
            "Tags": [{"Key": "k", "Value": "v"}],
            "PropagateTags": "TASK_DEFINITION",
        },
    }
    req = run_task_request(target, "events-rule/nightly", None)
    assert req == {
        "cluster": "jobs",
        "taskDefinition": "job:1",
        "count": 2,
        "startedBy": "events-rule/nightly",
        "launchType": "FARGATE",
        "group": "batch",
        "propagateTags": "TASK_DEFINITION",
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:x == y"}],
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": ["s-1"],
                "securityGroups": ["sg-1"],
                "assignPublicIp": "DISABLED",
            }
        },
        "tags": [{"key": "k", "value": "v"}],
    }


def test_an_input_of_task_overrides_becomes_the_overrides_and_any_other_is_ignored() -> None:
    overrides = {"containerOverrides": [{"name": "c", "command": ["echo", "hi"]}]}
    assert run_task_request(TARGET, "r", overrides)["overrides"] == overrides
    assert "overrides" not in run_task_request(TARGET, "r", {"detail-type": "x", "detail": {}})
    assert "overrides" not in run_task_request(TARGET, "r", "text")


def test_retries_back_off_until_the_attempts_run_out() -> None:
    policy = {"MaximumRetryAttempts": 2}
    assert next_try(policy, 0, 0.0, 1.0, "ECSRunTaskFailures") == Retry(1.0)
    assert next_try(policy, 1, 1.0, 1.0, "ECSRunTaskFailures") == Retry(2.0)
    assert next_try(policy, 2, 3.0, 1.0, "ECSRunTaskFailures") == Retry(None, "MaximumRetryAttempts")


def test_retries_stop_when_the_event_is_too_old() -> None:
    assert next_try({"MaximumEventAgeInSeconds": 60}, 3, 55.0, 1.0, "X") == Retry(
        None, "MaximumEventAgeInSeconds"
    )


def test_the_default_policy_retries_with_a_capped_delay() -> None:
    assert next_try(None, 184, 86000.0, 1.0, "X") == Retry(None, "MaximumEventAgeInSeconds")
    assert next_try(None, 20, 0.0, 1.0, "X") == Retry(MAX_DELAY)
    assert next_try(None, 185, 0.0, 1.0, "X") == Retry(None, "MaximumRetryAttempts")


def test_errors_another_try_cannot_mend_are_not_retried() -> None:
    assert next_try(None, 0, 0.0, 1.0, "ClusterNotFoundException") == Retry(None, "")
