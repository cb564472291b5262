"""``dockyard scaling``'s rendering, with answers shaped as botocore's application-autoscaling
model shapes them (pure)."""

from __future__ import annotations

from dockyard.cli import table
from runner.autoscaling.cli import activity_row, policy_row, render, scheduled_row, target_line

TRACKING = {
    "PolicyName": "cpu", "PolicyType": "TargetTrackingScaling",
    "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 50.0, "ScaleOutCooldown": 60, "ScaleInCooldown": 300,
        "PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}},
}
STEP = {
    "PolicyName": "burst", "PolicyType": "StepScaling",
    "StepScalingPolicyConfiguration": {"AdjustmentType": "ChangeInCapacity", "StepAdjustments": [
        {"MetricIntervalLowerBound": 0.0, "MetricIntervalUpperBound": 20.0, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 20.0, "ScalingAdjustment": 3}]},
    "Alarms": [{"AlarmName": "queue-high", "AlarmARN": "arn:aws:cloudwatch:us-east-1:0:alarm:queue-high"}],
}


def test_the_target_line_shows_bounds_counts_and_what_is_suspended():
    target = {"MinCapacity": 1, "MaxCapacity": 4, "SuspendedState": {
        "DynamicScalingInSuspended": True, "DynamicScalingOutSuspended": False,
        "ScheduledScalingSuspended": False}}
    assert target_line(target, 2, 1) == "min 1  max 4  desired 2  running 1  suspended: DynamicScalingIn"
    assert target_line(None, 2, 2).startswith("no scalable target")


def test_policies_show_their_metric_against_the_target():
    assert policy_row(TRACKING, 73.25) == {
        "policy": "cpu", "type": "TargetTrackingScaling", "metric": "ECSServiceAverageCPUUtilization",
        "current": "73.25", "target": "50", "detail": "out cooldown 60s, in cooldown 300s"}
    custom = {**TRACKING, "TargetTrackingScalingPolicyConfiguration": {
        "TargetValue": 10, "DisableScaleIn": True, "CustomizedMetricSpecification": {
            "MetricName": "QueueDepth", "Namespace": "Shop", "Statistic": "Average"}}}
    row = policy_row(custom, None)
    assert (row["metric"], row["current"], row["detail"]) == ("Shop/QueueDepth", "-", "scale-in disabled")
    step = policy_row(STEP, None)
    assert step["metric"] == "alarm queue-high"
    assert step["detail"] == "ChangeInCapacity: [0, 20) +1, [20, +inf) +3"


def test_scheduled_actions_and_activities():
    action = {"ScheduledActionName": "night", "Schedule": "cron(0 22 * * ? *)", "Timezone": "Europe/Paris",
              "ScalableTargetAction": {"MinCapacity": 0, "MaxCapacity": 1}}
    assert scheduled_row(action) == {"action": "night", "schedule": "cron(0 22 * * ? *)",
                                     "timezone": "Europe/Paris", "min": 0, "max": 1}
    activity = {"StartTime": 1764700000.0, "StatusCode": "Successful",
                "Description": "Setting desired count to 4.",
                "Cause": "monitor alarm X in state ALARM triggered policy cpu"}
    assert activity_row(activity)["time"] == "2025-12-02 18:26:40Z"
    text = render({"ResourceId": "service/c/web", "ScalableTarget": {"MinCapacity": 1, "MaxCapacity": 4},
                   "Service": {"desiredCount": 4, "runningCount": 4}, "ScalingPolicies": [TRACKING, STEP],
                   "CurrentValues": {"cpu": 80.0}, "ScheduledActions": [action],
                   "ScalingActivities": [activity]}, table)
    lines = text.splitlines()
    assert lines[0] == "service/c/web: min 1  max 4  desired 4  running 4"
    assert any(line.startswith("cpu ") and " 80 " in line for line in lines), text
    assert "Setting desired count to 4." in text and "night" in text
