"""runner.servicedeployments.record (pure), runner.connect.traffic_split and the CLI's rows."""

from __future__ import annotations

from dockyard.config import Config
from runner import connect, shift
from runner.deployments_cli import row
from runner.servicedeployments import deployment_arn, record, revision_arn

CFG = Config(deployment_minute_seconds=1.0)
CONFIG = {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 10, "canaryBakeTimeInMinutes": 5},
          "alarms": {"alarmNames": ["errors"], "enable": True, "rollback": True},
          "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}]}
BLUE = {"id": "ecs-svc/111", "status": "ACTIVE", "taskDefinition": "arn:td/web:1", "createdAt": 1.0,
        "rolloutState": "COMPLETED", "definition": {"family": "web", "revision": 1}}


def green(state: shift.State) -> dict:
    return {"id": "ecs-svc/222", "status": "PRIMARY", "taskDefinition": "arn:td/web:2", "createdAt": 10.0,
            "rolloutState": "IN_PROGRESS",
            "definition": {"family": "web", "revision": 2,
                           "containerDefinitions": [{"name": "app", "image": "i"}]},
            "shift": {"state": shift.state_json(state), "source": BLUE["id"], "config": CONFIG}}


def test_a_canary_at_its_hook_then_rolled_back_by_its_alarm():
    spec = {"desiredCount": 2, "deploymentConfiguration": CONFIG}
    counts = {"ecs-svc/222": {"running": 2, "pending": 0}, "ecs-svc/111": {"running": 2, "pending": 0}}
    held = green(shift.State(stage="POST_SCALE_UP", hook="hook-1", hook_since=20.0))
    rec = record(CFG, "c", "web", spec, held, [held, BLUE], counts, 21.0)
    assert rec.arn == deployment_arn(CFG, "c", "web", "ecs-svc/222")
    assert rec.arn.endswith(":service-deployment/c/web/222") and rec.revision_arn.endswith("/c/web/222")
    b = rec.body
    assert (b["status"], b["lifecycleStage"]) == ("IN_PROGRESS", "POST_SCALE_UP")
    assert b["lifecycleHookDetails"] == [{"hookId": "hook-1", "targetType": "PAUSE",
                                          "status": "AWAITING_ACTION", "expiresAt": 20.0 + 1440,
                                          "timeoutAction": "ROLLBACK"}]
    assert b["alarms"] == {"status": "MONITORING", "alarmNames": ["errors"], "triggeredAlarmNames": []}
    [source] = b["sourceServiceRevisions"]
    assert source["arn"] == revision_arn(CFG, "c", "web", BLUE["id"])
    assert source["requestedProductionTrafficWeight"] == 100 and b["targetServiceRevision"][
        "requestedProductionTrafficWeight"] == 0
    assert b["revision"]["containerImages"] == [{"containerName": "app", "image": "i"}]

    rolled = green(shift.State(stage="PRODUCTION_TRAFFIC_SHIFT", step=0, outcome="ROLLBACK",
                               reason="Alarm(s) errors", triggered=("errors",), ended_at=30.0))
    rec = record(CFG, "c", "web", spec, rolled, [rolled, BLUE], counts, 31.0)
    assert rec.body["status"] == "ROLLBACK_IN_PROGRESS" and "finishedAt" not in rec.body
    alarms = rec.body["alarms"]
    assert alarms["status"] == "TRIGGERED" and alarms["triggeredAlarmNames"] == ["errors"]
    assert rec.body["rollback"]["serviceRevisionArn"].endswith("/c/web/111")
    done = record(CFG, "c", "web", spec, rolled, [BLUE], counts, 40.0, previous=rec.body, retired=True)
    assert done.body["status"] == "ROLLBACK_SUCCESSFUL" and done.body["finishedAt"] == 40.0
    shown = row(done.body)
    assert (shown["status"], shown["alarms"], shown["deployment"]) == ("ROLLBACK_SUCCESSFUL", "errors", "222")


def test_a_rolling_deployment_is_successful_once_completed():
    dep = {"id": "ecs-svc/333", "status": "PRIMARY", "taskDefinition": "arn:td/web:3", "createdAt": 5.0,
           "rolloutState": "COMPLETED", "updatedAt": 9.0, "definition": {}}
    rec = record(CFG, "c", "web", {"desiredCount": 1, "deploymentConfiguration": {}}, dep, [dep], {}, 10.0)
    assert rec.body["status"] == "SUCCESSFUL" and rec.body["finishedAt"] == 9.0
    assert "lifecycleStage" not in rec.body


def test_a_rolling_deployment_shows_its_alarms_and_the_rollback_they_caused():
    config = {"strategy": "ROLLING", "alarms": {"alarmNames": ["errors"], "enable": True, "rollback": True}}
    spec = {"desiredCount": 1, "deploymentConfiguration": config}
    dep = {"id": "ecs-svc/444", "status": "PRIMARY", "taskDefinition": "arn:td/web:4", "createdAt": 5.0,
           "rolloutState": "IN_PROGRESS", "updatedAt": 5.0, "definition": {}}
    watched = record(CFG, "c", "web", spec, dep, [dep, BLUE], {}, 6.0).body
    assert watched["status"] == "IN_PROGRESS" and "rollback" not in watched
    assert watched["alarms"] == {"status": "MONITORING", "alarmNames": ["errors"], "triggeredAlarmNames": []}
    failed = {**dep, "status": "ACTIVE", "rolloutState": "FAILED", "updatedAt": 8.0,
              "alarmsTriggered": ["errors"],
              "rolloutStateReason": "Alarm(s) errors went into ALARM state during the service deployment."}
    back = {**BLUE, "id": "ecs-svc/555", "status": "PRIMARY", "createdAt": 8.0, "rolloutState": "IN_PROGRESS",
            "rollbackOf": dep["id"]}
    rec = record(CFG, "c", "web", spec, failed, [back, failed], {}, 9.0).body
    assert rec["status"] == "ROLLBACK_SUCCESSFUL"
    assert rec["alarms"] == {"status": "TRIGGERED", "alarmNames": ["errors"],
                             "triggeredAlarmNames": ["errors"]}
    assert rec["rollback"] == {"reason": failed["rolloutStateReason"], "startedAt": 8.0,
                               "serviceRevisionArn": revision_arn(CFG, "c", "web", "ecs-svc/555")}
    undo = record(CFG, "c", "web", spec, back, [back, failed], {}, 9.0).body
    assert undo["alarms"]["status"] == "DISABLED"  # a rollback is not judged by the alarms that caused it


def test_the_split_a_deployment_asks_for_reaches_each_entry_with_its_test_header():
    entry = connect.ConnectEntry("ns", "web", "web", "http",
                                 (connect.Alias("web.ns", 80, ("x-test", "green")),))
    deps = [{"id": "b"}, {"id": "a", connect.TRAFFIC: {"weights": [["web", 1, 9000], ["web", 2, 1000]],
                                                         "test": ["web", 2]}}]
    split = connect.traffic_split(deps, entry)
    weights = (connect.RevisionWeight("web", 1, 9000), connect.RevisionWeight("web", 2, 1000))
    assert split == connect.TrafficSplit(weights, "web", 2, (("x-test", "green"),))
    assert connect.traffic_split([{"id": "b"}], entry) is None
    no_test = connect.traffic_split([{connect.TRAFFIC: {"weights": [["web", 1, 1]], "test": None}}], entry)
    assert no_test is not None and no_test.test_revision is None and no_test.test_headers == ()
