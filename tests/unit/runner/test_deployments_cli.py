"""``dockyard deployments``' rendering (runner.deployments_cli), on answers shaped as botocore's
ECS model shapes DescribeServiceDeployments."""

from __future__ import annotations

import json
from pathlib import Path

import botocore

from runner.deployments_cli import STAGES, stage_line, summary, traffic_line

ARN = "arn:aws:ecs:us-east-1:000000000000"
DEPLOYMENT = {
    "serviceDeploymentArn": f"{ARN}:service-deployment/c/web/abc123",
    "status": "IN_PROGRESS",
    "lifecycleStage": "PRODUCTION_TRAFFIC_SHIFT",
    "sourceServiceRevisions": [{"arn": f"{ARN}:service-revision/c/web/1",
                                "requestedProductionTrafficWeight": 90.0, "requestedTestTrafficWeight": 0.0}],
    "targetServiceRevision": {"arn": f"{ARN}:service-revision/c/web/2",
                              "requestedProductionTrafficWeight": 10.0, "requestedTestTrafficWeight": 100.0},
    "deploymentConfiguration": {"strategy": "CANARY"},
    "lifecycleHookDetails": [{"hookId": "hook-1", "targetType": "PAUSE", "status": "AWAITING_ACTION"}],
    "alarms": {"status": "MONITORING", "alarmNames": ["web-5xx"], "triggeredAlarmNames": []},
}


def test_the_stages_match_ecs_model() -> None:
    model = Path(botocore.__file__).parent / "data/ecs/2014-11-13/service-2.json"
    if not model.exists():  # the aws CLI's own botocore
        import awscli

        model = Path(awscli.__file__).parent / "botocore/data/ecs/2014-11-13/service-2.json"
    shapes = json.loads(model.read_text())["shapes"]
    assert list(STAGES) == shapes["ServiceDeploymentLifecycleStage"]["enum"]
    members = set(shapes["ServiceDeployment"]["members"])
    assert {"lifecycleStage", "sourceServiceRevisions", "targetServiceRevision", "alarms", "rollback",
            "lifecycleHookDetails", "statusReason"} <= members


def test_the_current_stage_is_bracketed() -> None:
    line = stage_line(DEPLOYMENT)
    assert "POST_TEST_TRAFFIC_SHIFT > [PRODUCTION_TRAFFIC_SHIFT] > POST_PRODUCTION_TRAFFIC_SHIFT" in line
    assert line.startswith("PRE_SCALE_UP > SCALE_UP")
    assert stage_line({}) == "-"


def test_the_traffic_split_names_each_revision() -> None:
    assert traffic_line(DEPLOYMENT) == "1 90% / 2 10% (test 100%)"
    assert traffic_line({}) == "-"
    names = {f"{ARN}:service-revision/c/web/1": "web:1", f"{ARN}:service-revision/c/web/2": "web:2"}
    assert traffic_line(DEPLOYMENT, names) == "web:1 90% / web:2 10% (test 100%)"


def test_the_summary_shows_hooks_alarms_and_rollback() -> None:
    lines = summary(DEPLOYMENT)
    assert lines[0] == "abc123  IN_PROGRESS  CANARY"
    assert "  hook     hook-1 PAUSE AWAITING_ACTION" in lines
    assert "  alarms   MONITORING web-5xx (triggered: none)" in lines
    rolled = {**DEPLOYMENT, "status": "ROLLBACK_SUCCESSFUL", "statusReason": "Alarm web-5xx fired",
              "alarms": {"status": "TRIGGERED", "alarmNames": ["web-5xx"],
                         "triggeredAlarmNames": ["web-5xx"]},
              "rollback": {"reason": "alarm", "serviceRevisionArn": f"{ARN}:service-revision/c/web/1"}}
    lines = summary(rolled)
    assert "  reason   Alarm web-5xx fired" in lines
    assert "  alarms   TRIGGERED web-5xx (triggered: web-5xx)" in lines
    assert "  rollback alarm -> 1" in lines
