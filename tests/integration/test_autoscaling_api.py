"""Application Auto Scaling's API for ECS services through the real aws CLI: scalable targets,
target tracking and step policies, scheduled actions, tags, and AWS's errors for bad input."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.images import busybox_image
from tests.support.registry import docker_push

AAS = "application-autoscaling"


@pytest.fixture(scope="module")
def service(dockyard: Any) -> Iterator[str]:
    """An ECS service with no task (the API needs it to exist): its ResourceId."""
    cluster = f"aas-{uuid.uuid4().hex[:6]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    docker_push(dockyard, busybox_image(), "aas-busybox:latest")
    td = ecs.register_task_definition(family=f"{cluster}-td", containerDefinitions=[
        {"name": "c", "image": "aas-busybox:latest", "memory": 16, "command": ["sleep", "600"],
         "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=td, desiredCount=0)
    try:
        yield f"service/{cluster}/web"
    finally:
        ecs.delete_service(cluster=cluster, service="web", force=True)
        deadline = time.monotonic() + 60
        while ecs.list_tasks(cluster=cluster)["taskArns"] and time.monotonic() < deadline:
            time.sleep(0.5)


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
            (["--policy-type", "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
              json.dumps({"TargetValue": 50, "PredefinedMetricSpecification": {
                  "PredefinedMetricType": "ALBRequestCountPerTarget", "ResourceLabel": "targetgroup/tg/1"}})],
             "ResourceLabel must be app/"),
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


def test_a_scheduled_action_sets_the_bounds_and_moves_the_desired_count(dockyard: Any, service: str) -> None:
    ids = _ids(service)
    _, cluster, name = service.split("/")
    ecs = dockyard.client("ecs")
    dockyard.aws(AAS, "register-scalable-target", *ids, "--min-capacity", "0", "--max-capacity", "4")
    try:
        when = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
        dockyard.aws(AAS, "put-scheduled-action", *ids, "--scheduled-action-name", "soon", "--schedule",
                     f"at({when})", "--scalable-target-action", "MinCapacity=2,MaxCapacity=4")
        deadline = time.monotonic() + 60
        while ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"] != 2:
            assert time.monotonic() < deadline, "the scheduled action never raised the desired count"
            time.sleep(0.5)
        [target] = [t for t in dockyard.aws(AAS, "describe-scalable-targets", "--service-namespace", "ecs")[
            "ScalableTargets"] if t["ResourceId"] == service]
        assert (target["MinCapacity"], target["MaxCapacity"]) == (2, 4)
        activities = dockyard.aws(AAS, "describe-scaling-activities", "--service-namespace", "ecs",
                                  "--resource-id", service)["ScalingActivities"]
        causes = [(a["Description"], a["Cause"]) for a in activities]
        want = ("Setting min capacity to 2 and max capacity to 4", "scheduled action name soon was triggered")
        assert want in causes, causes
        assert any(a["Description"] == "Setting desired count to 2." for a in activities), causes
    finally:
        dockyard.aws(AAS, "deregister-scalable-target", *ids)
        ecs.update_service(cluster=cluster, service=name, desiredCount=0)


def test_target_tracking_on_a_custom_metric_scales_the_service_out(dockyard: Any, service: str) -> None:
    """The queue-depth pattern: a metric the user sends with PutMetricData, three periods above
    the target (the session server's ``autoscaling_period`` is 10 s) scale the service out."""
    ids = _ids(service)
    _, cluster, name = service.split("/")
    ecs = dockyard.client("ecs")
    queue = f"jobs-{uuid.uuid4().hex[:6]}"
    dockyard.aws(AAS, "register-scalable-target", *ids, "--min-capacity", "1", "--max-capacity", "4")
    try:
        spec = {"TargetValue": 50.0, "CustomizedMetricSpecification": {
            "MetricName": "QueueDepth", "Namespace": "Dockyard/Test", "Statistic": "Average",
            "Dimensions": [{"Name": "Queue", "Value": queue}]}, "ScaleOutCooldown": 600}
        dockyard.aws(AAS, "put-scaling-policy", *ids, "--policy-name", "depth", "--policy-type",
                     "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
                     json.dumps(spec))

        def desired() -> int:
            return ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"]

        deadline = time.monotonic() + 30
        while desired() != 1:  # MinCapacity 1 lifts the service from 0 first
            assert time.monotonic() < deadline, "MinCapacity never applied"
            time.sleep(0.5)
        # in the last three complete 10 s periods and the current one, so that the next pass
        # finds three full periods above the target whichever period it falls in
        edge = time.time() // 10 * 10
        data = [{"MetricName": "QueueDepth", "Dimensions": [{"Name": "Queue", "Value": queue}],
                 "Timestamp": edge + offset, "Value": 200.0} for offset in (-25, -15, -5, 5)]
        dockyard.client("cloudwatch").put_metric_data(Namespace="Dockyard/Test", MetricData=data)
        deadline = time.monotonic() + 60
        while desired() != 4:
            assert time.monotonic() < deadline, "three periods at 4x the target never scaled the service out"
            time.sleep(0.5)
        activities = dockyard.aws(AAS, "describe-scaling-activities", "--service-namespace", "ecs",
                                  "--resource-id", service)["ScalingActivities"]
        cause = (f"monitor alarm TargetTracking-{service}-AlarmHigh-depth in state ALARM triggered policy "
                 "depth changing the desired capacity from 1 to 4")
        shown = [(a["Cause"], a["Description"]) for a in activities]
        assert (cause, "Setting desired count to 4.") in shown, shown
    finally:
        dockyard.aws(AAS, "deregister-scalable-target", *ids)
        ecs.update_service(cluster=cluster, service=name, desiredCount=0)


def test_a_step_policy_invoked_by_an_alarm_action_scales_by_the_step_of_the_breach(
    dockyard: Any, service: str
) -> None:
    """Step scaling as AWS wires it: PutMetricAlarm's ``AlarmActions`` names the policy's ARN;
    the alarm goes to ALARM on a metric sent with PutMetricData (the session server judges
    alarms every second), and the breach (100 over a threshold of 10) falls in the +3 step."""
    ids = _ids(service)
    _, cluster, name = service.split("/")
    ecs, cw = dockyard.client("ecs"), dockyard.client("cloudwatch")
    queue, alarm = f"steps-{uuid.uuid4().hex[:6]}", f"backlog-{uuid.uuid4().hex[:6]}"
    dockyard.aws(AAS, "register-scalable-target", *ids, "--min-capacity", "1", "--max-capacity", "5")
    try:
        spec = {"AdjustmentType": "ChangeInCapacity", "Cooldown": 600, "MetricAggregationType": "Maximum",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 50,
                                     "ScalingAdjustment": 1},
                                    {"MetricIntervalLowerBound": 50, "ScalingAdjustment": 3}]}
        arn = dockyard.aws(AAS, "put-scaling-policy", *ids, "--policy-name", "backlog", "--policy-type",
                           "StepScaling", "--step-scaling-policy-configuration",
                           json.dumps(spec))["PolicyARN"]
        dockyard.aws("cloudwatch", "put-metric-alarm", "--alarm-name", alarm, "--namespace", "Dockyard/Test",
                     "--metric-name", "Backlog", "--dimensions", f"Name=Queue,Value={queue}",
                     "--statistic", "Maximum", "--period", "10", "--evaluation-periods", "1",
                     "--threshold", "10", "--comparison-operator", "GreaterThanThreshold",
                     "--alarm-actions", arn)

        def desired() -> int:
            return ecs.describe_services(cluster=cluster, services=[name])["services"][0]["desiredCount"]

        deadline = time.monotonic() + 30
        while desired() != 1:  # MinCapacity 1 lifts the service from 0 first
            assert time.monotonic() < deadline, "MinCapacity never applied"
            time.sleep(0.5)
        edge = time.time() // 10 * 10  # the last complete period and the current one
        cw.put_metric_data(Namespace="Dockyard/Test", MetricData=[
            {"MetricName": "Backlog", "Dimensions": [{"Name": "Queue", "Value": queue}],
             "Timestamp": edge + offset, "Value": 100.0} for offset in (-5, 5)])
        deadline = time.monotonic() + 60
        while desired() != 4:
            if time.monotonic() > deadline:
                [a] = cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
                acts = dockyard.aws(AAS, "describe-scaling-activities", "--service-namespace", "ecs",
                                    "--resource-id", service)["ScalingActivities"]
                raise AssertionError("the alarm's action never scaled the service by +3: " + json.dumps(
                    [desired(), a["StateValue"], a["StateReason"], [x["Cause"] for x in acts]]))
            time.sleep(0.5)
        [shown] = cw.describe_alarms(AlarmNames=[alarm])["MetricAlarms"]
        assert shown["AlarmActions"] == [arn] and shown["StateValue"] == "ALARM"
        activities = dockyard.aws(AAS, "describe-scaling-activities", "--service-namespace", "ecs",
                                  "--resource-id", service)["ScalingActivities"]
        cause = (f"monitor alarm {alarm} in state ALARM triggered policy backlog changing the desired "
                 "capacity from 1 to 4")
        assert (cause, "Setting desired count to 4.") in [(a["Cause"], a["Description"]) for a in activities]
    finally:
        dockyard.aws("cloudwatch", "delete-alarms", "--alarm-names", alarm)
        dockyard.aws(AAS, "deregister-scalable-target", *ids)
        ecs.update_service(cluster=cluster, service=name, desiredCount=0)


BURN = "while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 0.05; done"


def test_target_tracking_on_the_services_cpu_scales_it_out(dockyard: Any) -> None:
    """The predefined metric end to end: a task that keeps part of a core busy against its
    128 CPU units reports CPUUtilization (from the Docker Engine's stats) far above a 50 %
    target, and the service is scaled out to its maximum; once its tasks only sleep, the
    metric stays below 90 % of the target for AlarmLow's 15 periods and it is scaled back in."""
    cluster = f"aas-cpu-{uuid.uuid4().hex[:6]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    docker_push(dockyard, busybox_image(), "aas-busybox:latest")
    td = ecs.register_task_definition(family=f"{cluster}-burn", cpu="128", containerDefinitions=[
        {"name": "c", "image": "aas-busybox:latest", "memory": 16, "command": ["sh", "-c", BURN],
         "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName="burn", taskDefinition=td, desiredCount=1)
    resource = f"service/{cluster}/burn"
    ids = _ids(resource)

    def scaled(count: int, alarm: str, timeout: float) -> None:
        """Wait for the desired ``count``, then find the activity ``alarm`` caused."""
        deadline = time.monotonic() + timeout
        [svc] = ecs.describe_services(cluster=cluster, services=["burn"])["services"]
        while svc["desiredCount"] != count:
            [svc] = ecs.describe_services(cluster=cluster, services=["burn"])["services"]
            assert time.monotonic() < deadline, f"the service never went to {count} task(s)"
            time.sleep(1)
        activities = dockyard.aws(AAS, "describe-scaling-activities", "--service-namespace", "ecs",
                                  "--resource-id", resource)["ScalingActivities"]
        cause = f"monitor alarm TargetTracking-{resource}-{alarm}-cpu in state ALARM triggered policy cpu"
        assert any(a["Cause"].startswith(cause) for a in activities), activities
    try:
        dockyard.aws(AAS, "register-scalable-target", *ids, "--min-capacity", "1", "--max-capacity", "2")
        spec = {"TargetValue": 50.0, "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ECSServiceAverageCPUUtilization"}, "ScaleOutCooldown": 600,
            "ScaleInCooldown": 0}
        dockyard.aws(AAS, "put-scaling-policy", *ids, "--policy-name", "cpu", "--policy-type",
                     "TargetTrackingScaling", "--target-tracking-scaling-policy-configuration",
                     json.dumps(spec))
        scaled(2, "AlarmHigh", 120)
        # the metric it acted on is the one CloudWatch shows
        now = int(time.time())
        points = dockyard.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/ECS", MetricName="CPUUtilization", StartTime=now - 600, EndTime=now + 60,
            Period=60, Statistics=["Average"],
            Dimensions=[{"Name": "ClusterName", "Value": cluster}, {"Name": "ServiceName", "Value": "burn"}],
        )["Datapoints"]
        assert points and max(p["Average"] for p in points) > 50, points
        # dockyard scaling: the target, the policy's metric against its target, the activity
        common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url,
                  "--cluster", cluster]
        shown = dockyard.cli("scaling", "burn", *common)
        assert shown.returncode == 0, shown.stderr
        lines = shown.stdout.splitlines()
        assert lines[0].startswith(f"{resource}: min 1  max 2  desired 2"), shown.stdout
        [row] = [line.split() for line in lines if line.startswith("cpu ")]
        assert row[1:3] == ["TargetTrackingScaling", "ECSServiceAverageCPUUtilization"]
        assert float(row[3]) > 50 and row[4] == "50", row
        assert "Setting desired count to 2." in shown.stdout
        answer = json.loads(dockyard.cli("scaling", "burn", "--json", *common).stdout)
        assert answer["ScalableTarget"]["MaxCapacity"] == 2 and answer["CurrentValues"]["cpu"] > 50
        missing = dockyard.cli("scaling", "nope", *common)
        assert missing.returncode == 0 and "no scalable target" in missing.stdout
        # the load stops: a revision that only sleeps; scale-in comes after 15 quiet periods
        quiet = ecs.register_task_definition(family=f"{cluster}-burn", cpu="128", containerDefinitions=[
            {"name": "c", "image": "aas-busybox:latest", "memory": 16, "command": ["sleep", "600"],
             "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
        ecs.update_service(cluster=cluster, service="burn", taskDefinition=quiet)
        scaled(1, "AlarmLow", 360)
    finally:
        dockyard.aws(AAS, "deregister-scalable-target", *ids, check=False)
        ecs.delete_service(cluster=cluster, service="burn", force=True)
        deadline = time.monotonic() + 60
        while ecs.list_tasks(cluster=cluster)["taskArns"] and time.monotonic() < deadline:
            time.sleep(0.5)
