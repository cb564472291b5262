"""Application Auto Scaling's API for ECS services through the real aws CLI: scalable targets,
target tracking and step policies, scheduled actions, tags, and AWS's errors for bad input."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

AAS = "application-autoscaling"


@pytest.fixture(scope="module")
def service(dockyard: Any) -> Iterator[str]:
    """An ECS service with no task (the API needs it to exist): its ResourceId."""
    cluster = f"aas-{uuid.uuid4().hex[:6]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    td = ecs.register_task_definition(family=f"{cluster}-td", containerDefinitions=[
        {"name": "c", "image": "busybox", "memory": 16}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=td, desiredCount=0)
    try:
        yield f"service/{cluster}/web"
    finally:
        ecs.delete_service(cluster=cluster, service="web", force=True)


def _ids(resource: str) -> list[str]:
    return ["--service-namespace", "ecs", "--resource-id", resource, "--scalable-dimension",
            "ecs:service:DesiredCount"]


def _error(dockyard: Any, *args: str) -> str:
    proc = dockyard.aws(AAS, *args, check=False)
    assert proc.returncode != 0, (args, proc.stdout)
    return proc.stderr


def test_targets_policies_and_schedules_round_trip(dockyard: Any, service: str) -> None:
    arn = dockyard.aws(AAS, "register-scalable-target", *_ids(service), "--min-capacity", "1",
                       "--max-capacity", "10", "--tags", "team=web")["ScalableTargetARN"]
    assert arn.startswith("arn:aws:application-autoscaling:us-east-1:000000000000:scalable-target/")
    [target] = dockyard.aws(AAS, "describe-scalable-targets", "--service-namespace", "ecs", "--resource-ids",
                            service)["ScalableTargets"]
    assert (target["MinCapacity"], target["MaxCapacity"], target["ScalableTargetARN"]) == (1, 10, arn)
    assert set(target["SuspendedState"].values()) == {False} and len(target["SuspendedState"]) == 3
    # an update keeps what it does not name
    dockyard.aws(AAS, "register-scalable-target", *_ids(service), "--max-capacity", "8")
    listed = dockyard.aws(AAS, "describe-scalable-targets", "--service-namespace", "ecs")["ScalableTargets"]
    [target] = [t for t in listed if t["ResourceId"] == service]
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 8)

    tracking = {"TargetValue": 60.0, "PredefinedMetricSpecification": {
        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}, "ScaleInCooldown": 120}
    out = dockyard.aws(AAS, "put-scaling-policy", *_ids(service), "--policy-name", "cpu60", "--policy-type",
                       "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
                       json.dumps(tracking))
    assert ":scalingPolicy:" in out["PolicyARN"] and out["PolicyARN"].endswith(":policyName/cpu60")
    assert [a["AlarmName"].split("-")[-2] for a in out["Alarms"]] == ["AlarmHigh", "AlarmLow"]
    steps = {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 50, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 50, "ScalingAdjustment": 3}]}
    dockyard.aws(AAS, "put-scaling-policy", *_ids(service), "--policy-name", "queue", "--policy-type",
                 "StepScaling", "--step-scaling-policy-configuration", json.dumps(steps))
    policies = dockyard.aws(AAS, "describe-scaling-policies", "--service-namespace", "ecs", "--resource-id",
                            service)["ScalingPolicies"]
    assert [p["PolicyName"] for p in policies] == ["cpu60", "queue"]
    shown = policies[0]["TargetTrackingScalingPolicyConfiguration"]
    assert (shown["ScaleInCooldown"], shown["ScaleOutCooldown"], shown["DisableScaleIn"]) == (120, 300, False)

    dockyard.aws(AAS, "put-scheduled-action", *_ids(service), "--scheduled-action-name", "mornings",
                 "--schedule", "cron(0 8 ? * MON-FRI *)", "--timezone", "Europe/Paris",
                 "--scalable-target-action", "MinCapacity=4,MaxCapacity=8")
    [action] = dockyard.aws(AAS, "describe-scheduled-actions", "--service-namespace", "ecs", "--resource-id",
                            service)["ScheduledActions"]
    assert (action["Schedule"], action["Timezone"]) == ("cron(0 8 ? * MON-FRI *)", "Europe/Paris")
    assert action["ScalableTargetAction"] == {"MinCapacity": 4, "MaxCapacity": 8}

    assert dockyard.aws(AAS, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == {"team": "web"}
    dockyard.aws(AAS, "tag-resource", "--resource-arn", arn, "--tags", "env=dev")
    dockyard.aws(AAS, "untag-resource", "--resource-arn", arn, "--tag-keys", "team")
    assert dockyard.aws(AAS, "list-tags-for-resource", "--resource-arn", arn)["Tags"] == {"env": "dev"}

    dockyard.aws(AAS, "delete-scaling-policy", *_ids(service), "--policy-name", "queue")
    dockyard.aws(AAS, "delete-scheduled-action", *_ids(service), "--scheduled-action-name", "mornings")
    # deregistering removes the target's remaining policies too, as AWS does
    dockyard.aws(AAS, "deregister-scalable-target", *_ids(service))
    assert dockyard.aws(AAS, "describe-scaling-policies", "--service-namespace", "ecs", "--resource-id",
                        service)["ScalingPolicies"] == []
    assert "ObjectNotFoundException" in _error(dockyard, "deregister-scalable-target", *_ids(service))


def test_bad_requests_get_application_auto_scalings_errors(dockyard: Any, service: str) -> None:
    ids = _ids(service)
    assert "ECS service doesn't exist" in _error(
        dockyard, "register-scalable-target", *_ids("service/none/none"), "--min-capacity", "1",
        "--max-capacity", "2")
    assert "ServiceNamespace must be ecs" in _error(
        dockyard, "register-scalable-target", "--service-namespace", "dynamodb", "--resource-id", "table/t",
        "--scalable-dimension", "dynamodb:table:ReadCapacityUnits", "--min-capacity", "1",
        "--max-capacity", "2")
    assert "MinCapacity and MaxCapacity are required" in _error(dockyard, "register-scalable-target", *ids)
    assert "cannot be greater" in _error(dockyard, "register-scalable-target", *ids, "--min-capacity", "5",
                                         "--max-capacity", "2")
    assert "ObjectNotFoundException" in _error(
        dockyard, "put-scaling-policy", *ids, "--policy-name", "p", "--policy-type", "StepScaling",
        "--step-scaling-policy-configuration", json.dumps({"AdjustmentType": "ChangeInCapacity",
                                                           "StepAdjustments": [{"ScalingAdjustment": 1}]}))
    dockyard.aws(AAS, "register-scalable-target", *ids, "--min-capacity", "1", "--max-capacity", "3")
    try:
        cases = [
            (["--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
              json.dumps({"TargetValue": 50, "PredefinedMetricSpecification": {
                  "PredefinedMetricType": "DynamoDBReadCapacityUtilization"}})],
             "Unsupported predefined metric"),
            (["--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
              json.dumps({"TargetValue": 50, "PredefinedMetricSpecification": {
                  "PredefinedMetricType": "ALBRequestCountPerTarget"}})], "needs a ResourceLabel"),
            (["--policy-type", "StepScaling", "--step-scaling-policy-configuration", json.dumps(
                {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
                    {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 10, "ScalingAdjustment": 1},
                    {"MetricIntervalLowerBound": 20, "ScalingAdjustment": 2}]})], "gaps"),
            (["--policy-type", "PredictiveScaling", "--predictive-scaling-policy-configuration", json.dumps(
                {"MetricSpecifications": [{"TargetValue": 50, "PredefinedMetricPairSpecification": {
                    "PredefinedMetricType": "ECSServiceCPUUtilization"}}]})],
             "does not support the PredictiveScaling"),
        ]
        for args, says in cases:
            assert says in _error(dockyard, "put-scaling-policy", *ids, "--policy-name", "bad", *args), says
        for schedule, says in (("cron(0 8 * * * *)", "exactly one of day-of-month"),
                               ("rate(1 minutes)", "singular"), ("at(2026-02-30T00:00:00)", "day")):
            assert says in _error(dockyard, "put-scheduled-action", *ids, "--scheduled-action-name", "bad",
                                  "--schedule", schedule, "--scalable-target-action",
                                  "MinCapacity=1"), schedule
        assert "Unknown time zone" in _error(
            dockyard, "put-scheduled-action", *ids, "--scheduled-action-name", "bad", "--schedule",
            "rate(5 minutes)", "--timezone", "Mars/Base", "--scalable-target-action", "MinCapacity=1")
        left = dockyard.aws(AAS, "describe-scaling-policies", "--service-namespace", "ecs")["ScalingPolicies"]
        assert [p for p in left if p["ResourceId"] == service] == []
    finally:
        dockyard.aws(AAS, "deregister-scalable-target", *ids)
