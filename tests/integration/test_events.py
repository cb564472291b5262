"""EventBridge through the real aws CLI and boto3, with tasks on the real Docker Engine: rules and
targets round trip, bad input gets EventBridge's errors, a stopped task's event runs a target's
task with an InputTransformer's overrides, a rate() rule starts tasks on time (the session
server's minute is 2 s), and a failing target is retried, dead-lettered and never holds back
another target of its rule."""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from botocore.exceptions import ClientError

from dockyard.client import Client
from tests.support.images import busybox_image
from tests.support.registry import docker_push

ROLE = "arn:aws:iam::000000000000:role/ecsEventsRole"


class Setup:
    def __init__(self, dockyard: Any, cluster: str, job: str, trigger: str) -> None:
        self.dockyard = dockyard
        self.cluster = cluster
        self.cluster_arn = f"arn:aws:ecs:us-east-1:000000000000:cluster/{cluster}"
        self.job = job  # a task definition ARN: exits 0 at once (or as its overrides say)
        self.trigger = trigger  # exits 1 at once
        self.ecs = dockyard.client("ecs")
        self.events = dockyard.client("events")
        self.own = Client(dockyard.control_url, *dockyard.credentials)

    def target(self, ident: str, **extra: Any) -> dict[str, Any]:
        return {
            "Id": ident,
            "Arn": self.cluster_arn,
            "RoleArn": ROLE,
            "EcsParameters": {"TaskDefinitionArn": self.job, "TaskCount": 1},
            **extra,
        }

    def started_by(self, rule: str) -> list[dict[str, Any]]:
        arns = self.ecs.list_tasks(cluster=self.cluster, startedBy=f"events-rule/{rule}")["taskArns"]
        arns += self.ecs.list_tasks(
            cluster=self.cluster, startedBy=f"events-rule/{rule}", desiredStatus="STOPPED"
        )["taskArns"]
        arns = list(dict.fromkeys(arns))  # a task that stopped between the two listings is in both
        return self.ecs.describe_tasks(cluster=self.cluster, tasks=arns)["tasks"] if arns else []

    def drop(self, rule: str) -> None:
        ids = [t["Id"] for t in self.events.list_targets_by_rule(Rule=rule)["Targets"]]
        if ids:
            self.events.remove_targets(Rule=rule, Ids=ids)
        self.events.delete_rule(Name=rule)


def wait_for(what: Callable[[], Any], timeout: float = 60.0, message: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.3)
    pytest.fail(f"not within {timeout}s: {message}")


@pytest.fixture(scope="module")
def setup(dockyard: Any) -> Iterator[Setup]:
    cluster = f"ev-{uuid.uuid4().hex[:6]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=cluster)
    docker_push(dockyard, busybox_image(), "ev-busybox:latest")

    def definition(family: str, command: list[str]) -> str:
        return ecs.register_task_definition(
            family=family,
            containerDefinitions=[
                {
                    "name": "c",
                    "image": "ev-busybox:latest",
                    "memory": 16,
                    "command": command,
                    "stopTimeout": 1,
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]

    job = definition(f"{cluster}-job", ["sh", "-c", "exit 0"])
    trigger = definition(f"{cluster}-trigger", ["sh", "-c", "exit 1"])
    yield Setup(dockyard, cluster, job, trigger)
    for arn in ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]:
        ecs.stop_task(cluster=cluster, task=arn)


def _error(dockyard: Any, *args: str) -> str:
    proc = dockyard.aws("events", *args, check=False)
    assert proc.returncode != 0, (args, proc.stdout)
    return proc.stderr


def test_rules_and_targets_round_trip_through_the_cli(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-round"
    arn = dockyard.aws(
        "events",
        "put-rule",
        "--name",
        name,
        "--event-pattern",
        json.dumps({"source": ["my.app"]}),
        "--description",
        "d",
        "--tags",
        "Key=team,Value=web",
    )["RuleArn"]
    assert arn == f"arn:aws:events:us-east-1:000000000000:rule/{name}"
    rule = dockyard.aws("events", "describe-rule", "--name", name)
    assert (rule["State"], rule["Description"], rule["EventBusName"], json.loads(rule["EventPattern"])) == (
        "ENABLED",
        "d",
        "default",
        {"source": ["my.app"]},
    )
    dockyard.aws("events", "disable-rule", "--name", name)
    listed = dockyard.aws("events", "list-rules", "--name-prefix", setup.cluster)["Rules"]
    assert [(r["Name"], r["State"]) for r in listed] == [(name, "DISABLED")]
    dockyard.aws("events", "enable-rule", "--name", name)
    dockyard.aws("events", "tag-resource", "--resource-arn", arn, "--tags", "Key=env,Value=test")
    tags = dockyard.aws("events", "list-tags-for-resource", "--resource-arn", arn)["Tags"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("env", "test"), ("team", "web")]

    out = dockyard.aws(
        "events",
        "put-targets",
        "--rule",
        name,
        "--targets",
        json.dumps(
            [
                setup.target("a", RetryPolicy={"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 120}),
                setup.target("b", Input=json.dumps({"containerOverrides": []})),
            ]
        ),
    )
    assert out["FailedEntryCount"] == 0
    shown = dockyard.aws("events", "list-targets-by-rule", "--rule", name)["Targets"]
    assert [t["Id"] for t in shown] == ["a", "b"]
    assert shown[0]["EcsParameters"]["TaskDefinitionArn"] == setup.job
    assert shown[0]["RetryPolicy"] == {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 120}
    assert dockyard.aws("events", "list-rule-names-by-target", "--target-arn", setup.cluster_arn)[
        "RuleNames"
    ] == [name]
    assert "has targets" in _error(dockyard, "delete-rule", "--name", name)
    out = dockyard.aws("events", "remove-targets", "--rule", name, "--ids", "a", "b", "zz")
    assert [(f["TargetId"], f["ErrorCode"]) for f in out["FailedEntries"]] == [
        ("zz", "ResourceNotFoundException")
    ]
    dockyard.aws("events", "delete-rule", "--name", name)
    assert "ResourceNotFoundException" in _error(dockyard, "describe-rule", "--name", name)
    bus = dockyard.aws("events", "describe-event-bus")
    assert bus == {"Name": "default", "Arn": "arn:aws:events:us-east-1:000000000000:event-bus/default"}


def _code(call: Callable[[], Any]) -> tuple[str, str]:
    """The AWS error code and message ``call`` (a boto3 call) is answered with."""
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    pytest.fail("no error")


def test_bad_input_gets_eventbridge_errors_and_writes_nothing(dockyard: Any, setup: Setup) -> None:
    name, ev = f"{setup.cluster}-bad", setup.events
    err = _error(dockyard, "put-rule", "--name", name, "--event-pattern", "{not json")  # the real CLI too
    assert "InvalidEventPatternException" in err and "not valid JSON" in err, err
    patterns = [
        (json.dumps({"a": [{"fuzzy": "x"}]}), "fuzzy"),
        (json.dumps({"a": "x"}), "inside an array"),
        ("[]", "JSON object"),
        (json.dumps({"a": [{"numeric": [">", "x"]}]}), "numeric"),
    ]
    for pattern, words in patterns:
        code, message = _code(lambda p=pattern: ev.put_rule(Name=name, EventPattern=p))
        assert code == "InvalidEventPatternException" and words in message, (pattern, message)
    for expression in (
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 seconds)",
        "cron(0 12 * * ?)",
        "cron(0 12 * * * *)",
        "at(2030-01-01T00:00:00)",
        "every day",
    ):
        code, message = _code(lambda e=expression: ev.put_rule(Name=name, ScheduleExpression=e))
        assert (code, message) == ("ValidationException", "Parameter ScheduleExpression is not valid."), (
            expression
        )
    assert "EventPattern or ScheduleExpression" in _code(lambda: ev.put_rule(Name=name))[1]
    assert (
        _code(lambda: ev.put_rule(Name="bad name", ScheduleExpression="rate(5 minutes)"))[0]
        == "ValidationException"
    )
    assert _code(
        lambda: ev.put_rule(Name=name, EventBusName="other", ScheduleExpression="rate(5 minutes)")
    ) == ("ResourceNotFoundException", "Event bus other does not exist.")
    assert ev.list_rules(NamePrefix=name)["Rules"] == []
    for call in (
        lambda: ev.describe_rule(Name=name),
        lambda: ev.enable_rule(Name=name),
        lambda: ev.list_targets_by_rule(Rule=name),
        lambda: ev.put_targets(Rule=name, Targets=[setup.target("a")]),
    ):
        assert _code(call) == (
            "ResourceNotFoundException",
            f"Rule {name} does not exist on EventBus default.",
        )

    ev.put_rule(Name=name, ScheduleExpression="cron(0 12 ? * MON-FRI *)", State="DISABLED")
    try:
        six = [setup.target(f"t{i}") for i in range(6)]
        assert _code(lambda: ev.put_targets(Rule=name, Targets=six))[0] == "LimitExceededException"
        gone = setup.target("t", EcsParameters={"TaskDefinitionArn": f"{setup.cluster}-nothing:1"})
        bad_targets = [
            ([setup.target("ok"), gone], "does not exist"),
            ([setup.target("a", Arn="arn:aws:lambda:us-east-1:000000000000:function:f")], "ECS targets only"),
            ([{k: v for k, v in setup.target("a").items() if k != "RoleArn"}], "RoleArn is required"),
            ([setup.target("a", Input="{no")], "not valid JSON"),
            (
                [
                    setup.target(
                        "a", InputTransformer={"InputPathsMap": {"x": "detail"}, "InputTemplate": "<x>"}
                    )
                ],
                "JSON path",
            ),
            ([setup.target("a", Input="{}", InputPath="$.detail")], "Only one of"),
            ([setup.target("a", RetryPolicy={"MaximumRetryAttempts": 200})], "MaximumRetryAttempts"),
        ]
        for entries, words in bad_targets:
            code, message = _code(lambda t=entries: ev.put_targets(Rule=name, Targets=t))
            assert code == "ValidationException" and words in message, (entries, message)
        assert ev.list_targets_by_rule(Rule=name)["Targets"] == []
        # five fit; a sixth does not, and the five stay
        ev.put_targets(Rule=name, Targets=six[:5])
        assert _code(lambda: ev.put_targets(Rule=name, Targets=six[5:]))[0] == "LimitExceededException"
        assert len(ev.list_targets_by_rule(Rule=name)["Targets"]) == 5
    finally:
        setup.drop(name)
    out = ev.put_events(
        Entries=[
            {"Source": "aws.ecs", "DetailType": "x", "Detail": "{}"},
            {"Source": "my.app", "DetailType": "x", "Detail": "[1]"},
            {"Source": "my.app", "Detail": "{}"},
            {"Source": "my.app", "DetailType": "x", "Detail": "{}"},
        ]
    )
    assert out["FailedEntryCount"] == 3
    assert [e.get("ErrorCode") for e in out["Entries"]] == [
        "NotAuthorizedForSourceException",
        "MalformedDetail",
        "InvalidArgument",
        None,
    ]


def test_a_stopped_task_runs_the_target_with_the_transformed_input(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-on-stop"
    family = setup.trigger.rsplit("/", 1)[1].split(":")[0]
    pattern = {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "lastStatus": ["STOPPED"],
            "group": [f"family:{family}"],
            "containers": {"exitCode": [{"anything-but": 0}]},
        },
    }
    dockyard.aws("events", "put-rule", "--name", name, "--event-pattern", json.dumps(pattern))
    # the job's command checks that the overrides reached its container: it exits 0 only if FROM
    # holds the stopped task's ARN
    template = (
        '{"containerOverrides": [{"name": "c", "environment": [{"name": "FROM", "value": <task>}], '
        '"command": ["sh", "-c", "test \\"$FROM\\" = <task>"]}]}'
    )
    transformer = {"InputPathsMap": {"task": "$.detail.taskArn"}, "InputTemplate": template}
    dockyard.aws(
        "events",
        "put-targets",
        "--rule",
        name,
        "--targets",
        json.dumps([setup.target("job", InputTransformer=transformer)]),
    )
    try:
        trigger = setup.ecs.run_task(cluster=setup.cluster, taskDefinition=setup.trigger)["tasks"][0][
            "taskArn"
        ]
        [job] = wait_for(
            lambda: [t for t in setup.started_by(name) if t["lastStatus"] == "STOPPED"],
            90,
            "the target's task ran and stopped",
        )
        env = job["overrides"]["containerOverrides"][0]["environment"]
        assert env == [{"name": "FROM", "value": trigger}]
        assert job["containers"][0]["exitCode"] == 0, job
        assert job["group"] == f"family:{job['taskDefinitionArn'].rsplit('/', 1)[1].split(':')[0]}"
        runs = setup.own.call("AWSEvents", "ListRuleInvocations", {"Rule": name})["Invocations"]
        assert [(r["TargetId"], r["Status"], r["Message"]) for r in runs] == [
            ("job", "SUCCEEDED", job["taskArn"])
        ]
        # the job's own stop (exit 0, another family) matched nothing: still one run
        time.sleep(1.0)
        assert len(setup.started_by(name)) == 1
    finally:
        setup.drop(name)


def test_a_rate_rule_starts_its_tasks_on_time(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-every"
    started = time.time()
    dockyard.aws("events", "put-rule", "--name", name, "--schedule-expression", "rate(1 minute)")
    dockyard.aws("events", "put-targets", "--rule", name, "--targets", json.dumps([setup.target("job")]))
    try:
        tasks = wait_for(
            lambda: len(setup.started_by(name)) >= 2 and setup.started_by(name), 30, "two scheduled runs"
        )
        elapsed = time.time() - started
        created = sorted(t["createdAt"].timestamp() for t in tasks)
        # on its 2 s grid from the rule's creation: never before it, never more runs than minutes
        assert created[0] >= started + 1.5 and len(created) <= elapsed / 2 + 1, (created, started, elapsed)
        dockyard.aws("events", "disable-rule", "--name", name)
        time.sleep(1.5)  # a run that had begun when it was disabled has started its task
        count = len(setup.started_by(name))
        time.sleep(3.0)  # one and a half of its minutes: a disabled rule does not fire
        assert len(setup.started_by(name)) == count
    finally:
        setup.drop(name)


def test_a_failing_target_is_retried_then_dead_lettered_and_never_holds_the_others(
    dockyard: Any, setup: Setup
) -> None:
    name = f"{setup.cluster}-retry"
    source = f"dockyard.test.{setup.cluster}"
    dockyard.aws(
        "events",
        "put-rule",
        "--name",
        name,
        "--event-pattern",
        json.dumps({"source": [source], "detail": {"n": [{"numeric": [">", 5]}]}}),
    )
    nowhere = {
        "TaskDefinitionArn": setup.job,
        "PlacementConstraints": [{"type": "memberOf", "expression": "attribute:dockyard.test == nowhere"}],
    }
    targets = [
        setup.target(
            "unplaceable",
            EcsParameters=nowhere,
            RetryPolicy={"MaximumRetryAttempts": 2},
            DeadLetterConfig={"Arn": "arn:aws:sqs:us-east-1:000000000000:dlq"},
        ),
        setup.target("no-cluster", Arn="arn:aws:ecs:us-east-1:000000000000:cluster/ev-none-such"),
        setup.target("good"),
    ]
    dockyard.aws("events", "put-targets", "--rule", name, "--targets", json.dumps(targets))
    try:
        out = setup.events.put_events(
            Entries=[
                {"Source": source, "DetailType": "t", "Detail": json.dumps({"n": 3})},
                {"Source": source, "DetailType": "t", "Detail": json.dumps({"n": 7})},
            ]
        )
        event_id = out["Entries"][1]["EventId"]
        wait_for(lambda: setup.started_by(name), 60, "the good target ran")

        def dead() -> list[dict[str, Any]]:
            found = setup.own.call("AWSEvents", "ListDeadLetters", {"Rule": name})["DeadLetters"]
            return found if len(found) == 2 else []

        letters = {d["Attributes"]["TARGET_ID"]: d for d in wait_for(dead, 60, "two dead letters")}
        unplaced = letters["unplaceable"]
        assert unplaced["Event"]["id"] == event_id and unplaced["Event"]["detail"] == {"n": 7}
        assert unplaced["DeadLetterArn"] == "arn:aws:sqs:us-east-1:000000000000:dlq"
        attrs = unplaced["Attributes"]
        assert (attrs["EXHAUSTED_RETRY_CONDITION"], attrs["RETRY_ATTEMPTS"], attrs["ERROR_CODE"]) == (
            "MaximumRetryAttempts",
            2,
            "ECSRunTaskFailures",
        )
        assert attrs["RULE_ARN"].endswith(f":rule/{name}") and attrs["TARGET_ARN"] == setup.cluster_arn
        missing = letters["no-cluster"]["Attributes"]
        assert (missing["ERROR_CODE"], missing["RETRY_ATTEMPTS"], missing["EXHAUSTED_RETRY_CONDITION"]) == (
            "ClusterNotFoundException",
            0,
            "",
        )
        runs = setup.own.call("AWSEvents", "ListRuleInvocations", {"Rule": name})["Invocations"]
        tries = sorted((r["Attempt"], r["Status"]) for r in runs if r["TargetId"] == "unplaceable")
        assert tries == [(0, "RETRYING"), (1, "RETRYING"), (2, "FAILED")]
        assert [r["Status"] for r in runs if r["TargetId"] == "good"] == ["SUCCEEDED"]  # n=3 matched nothing
        # dockyard rules: the rule with its targets, last run and dead letters; --dead-letters
        proc = dockyard.cli("rules", "--data-dir", str(dockyard.data_dir), "--json")
        assert proc.returncode == 0, proc.stderr
        [mine] = [r for r in json.loads(proc.stdout) if r["rule"] == name]
        assert (mine["targets"], mine["dead letters"], mine["state"]) == (3, 2, "ENABLED")
        assert mine["status"] in ("SUCCEEDED", "FAILED") and mine["last run"] != "-"
        proc = dockyard.cli("rules", "--data-dir", str(dockyard.data_dir), "--dead-letters")
        assert proc.returncode == 0, proc.stderr
        lines = [line for line in proc.stdout.splitlines() if f"rule/{name}" in line]
        assert len(lines) == 2 and any("MaximumRetryAttempts" in line for line in lines), proc.stdout
    finally:
        setup.drop(name)


def test_a_service_deployment_completing_runs_the_target(dockyard: Any, setup: Setup) -> None:
    """ECS Deployment State Change and ECS Service Action events of a real service's rollout."""
    name = f"{setup.cluster}-deployed"
    service = f"{setup.cluster}-web"
    arn = f"arn:aws:ecs:us-east-1:000000000000:service/{setup.cluster}/{service}"
    pattern = {
        "source": ["aws.ecs"],
        "resources": [arn],
        "$or": [
            {
                "detail-type": ["ECS Deployment State Change"],
                "detail": {"eventName": ["SERVICE_DEPLOYMENT_COMPLETED"]},
            },
            {"detail-type": ["ECS Service Action"], "detail": {"eventName": ["SERVICE_STEADY_STATE"]}},
        ],
    }
    dockyard.aws("events", "put-rule", "--name", name, "--event-pattern", json.dumps(pattern))
    # the job gets the event's detail-type and eventName as its command's arguments
    template = (
        '{"containerOverrides": [{"name": "c", "environment": [{"name": "KIND", "value": <kind>}, '
        '{"name": "NAME", "value": <event>}]}]}'
    )
    transformer = {
        "InputPathsMap": {"kind": "$.detail-type", "event": "$.detail.eventName"},
        "InputTemplate": template,
    }
    dockyard.aws(
        "events",
        "put-targets",
        "--rule",
        name,
        "--targets",
        json.dumps([setup.target("job", InputTransformer=transformer)]),
    )
    sleeper = setup.ecs.register_task_definition(
        family=f"{setup.cluster}-sleep",
        containerDefinitions=[
            {
                "name": "c",
                "image": "ev-busybox:latest",
                "memory": 16,
                "command": ["sleep", "600"],
                "stopTimeout": 1,
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    setup.ecs.create_service(
        cluster=setup.cluster, serviceName=service, taskDefinition=sleeper, desiredCount=1
    )
    try:

        def seen() -> set[tuple[str, str]]:
            found = set()
            for t in setup.started_by(name):
                env = {e["name"]: e["value"] for e in t["overrides"]["containerOverrides"][0]["environment"]}
                found.add((env["KIND"], env["NAME"]))
            return found if len(found) >= 2 else set()

        assert wait_for(seen, 90, "the deployment completed and the service reached a steady state") == {
            ("ECS Deployment State Change", "SERVICE_DEPLOYMENT_COMPLETED"),
            ("ECS Service Action", "SERVICE_STEADY_STATE"),
        }
    finally:
        setup.drop(name)
        setup.ecs.delete_service(cluster=setup.cluster, service=service, force=True)


def _schedule_target(setup: Setup, **extra: Any) -> dict[str, Any]:
    target = setup.target("x", **extra)
    del target["Id"]
    return target


def test_scheduler_schedules_round_trip_and_refuse_bad_input(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-sched"
    target = json.dumps(_schedule_target(setup))
    off = json.dumps({"Mode": "OFF"})
    arn = dockyard.aws(
        "scheduler",
        "create-schedule",
        "--name",
        name,
        "--schedule-expression",
        "cron(30 2 ? * MON-FRI *)",
        "--schedule-expression-timezone",
        "Europe/Paris",
        "--flexible-time-window",
        json.dumps({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 15}),
        "--target",
        target,
        "--description",
        "nightly",
    )["ScheduleArn"]
    assert arn == f"arn:aws:scheduler:us-east-1:000000000000:schedule/default/{name}"
    got = dockyard.aws("scheduler", "get-schedule", "--name", name)
    assert (
        got["ScheduleExpressionTimezone"],
        got["State"],
        got["FlexibleTimeWindow"]["MaximumWindowInMinutes"],
        got["Target"]["EcsParameters"]["TaskDefinitionArn"],
        got["Description"],
    ) == ("Europe/Paris", "ENABLED", 15, setup.job, "nightly")
    dockyard.aws(
        "scheduler",
        "update-schedule",
        "--name",
        name,
        "--schedule-expression",
        "rate(5 minutes)",
        "--flexible-time-window",
        off,
        "--target",
        target,
        "--state",
        "DISABLED",
    )
    listed = dockyard.aws("scheduler", "list-schedules", "--name-prefix", setup.cluster)["Schedules"]
    assert [(s["Name"], s["State"], s["Target"]["Arn"]) for s in listed] == [
        (name, "DISABLED", setup.cluster_arn)
    ]
    assert dockyard.aws("scheduler", "get-schedule-group", "--name", "default")["State"] == "ACTIVE"

    sched = dockyard.client("scheduler")
    plain = {
        "ScheduleExpression": "rate(5 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": json.loads(target),
    }
    assert _code(lambda: sched.create_schedule(Name=name, **plain)) == (
        "ConflictException",
        f"Schedule {name} already exists.",
    )
    other = f"{name}-2"
    for expression, zone in (
        ("rate(0 minutes)", "UTC"),
        ("cron(0 12 * * *)", "UTC"),
        ("at(2030-13-01T00:00:00)", "UTC"),
        ("every day", "UTC"),
        ("rate(5 minutes)", "Mars/Olympus"),
    ):
        code, message = _code(
            lambda e=expression, z=zone: sched.create_schedule(
                Name=other, **{**plain, "ScheduleExpression": e, "ScheduleExpressionTimezone": z}
            )
        )
        assert code == "ValidationException" and expression in message, (
            expression,
            message,
        )
    code, message = _code(
        lambda: sched.create_schedule(Name=other, **{**plain, "FlexibleTimeWindow": {"Mode": "FLEXIBLE"}})
    )
    assert code == "ValidationException" and "MaximumWindowInMinutes" in message
    missing = _schedule_target(setup, EcsParameters={"TaskDefinitionArn": f"{setup.cluster}-no:1"})
    code, message = _code(lambda: sched.create_schedule(Name=other, **{**plain, "Target": missing}))
    assert code == "ValidationException" and "does not exist" in message
    assert (
        _code(lambda: sched.create_schedule(Name=other, GroupName="elsewhere", **plain))[0]
        == "ResourceNotFoundException"
    )
    assert sched.list_schedules(NamePrefix=other)["Schedules"] == []
    dockyard.aws("scheduler", "delete-schedule", "--name", name)
    proc = dockyard.aws("scheduler", "get-schedule", "--name", name, check=False)
    assert proc.returncode != 0 and "ResourceNotFoundException" in proc.stderr
    assert _code(lambda: sched.delete_schedule(Name=name))[0] == "ResourceNotFoundException"


def test_a_one_time_schedule_in_a_time_zone_runs_its_task_and_deletes_itself(
    dockyard: Any, setup: Setup
) -> None:
    name = f"{setup.cluster}-once"
    zone = "America/New_York"
    soon = dt.datetime.now(ZoneInfo(zone)) + dt.timedelta(seconds=6)  # after create-schedule returns
    overrides = {
        "containerOverrides": [
            {"name": "c", "environment": [{"name": "WHEN", "value": "<aws.scheduler.scheduled-time>"}]}
        ]
    }
    dockyard.aws(
        "scheduler",
        "create-schedule",
        "--name",
        name,
        "--schedule-expression",
        f"at({soon.strftime('%Y-%m-%dT%H:%M:%S')})",
        "--schedule-expression-timezone",
        zone,
        "--flexible-time-window",
        json.dumps({"Mode": "OFF"}),
        "--action-after-completion",
        "DELETE",
        "--target",
        json.dumps(_schedule_target(setup, Input=json.dumps(overrides))),
    )
    [task] = wait_for(
        lambda: (
            setup.ecs.list_tasks(
                cluster=setup.cluster, startedBy=f"scheduler/{name}", desiredStatus="STOPPED"
            )["taskArns"]
            or setup.ecs.list_tasks(cluster=setup.cluster, startedBy=f"scheduler/{name}")["taskArns"]
        ),
        60,
        "the one-time schedule ran",
    )
    [shown] = setup.ecs.describe_tasks(cluster=setup.cluster, tasks=[task])["tasks"]
    assert shown["createdAt"].timestamp() >= soon.replace(microsecond=0).timestamp() - 0.1  # not before at()
    [env] = shown["overrides"]["containerOverrides"][0]["environment"]
    assert env["value"] == soon.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    wait_for(
        lambda: not dockyard.aws("scheduler", "list-schedules", "--name-prefix", name)["Schedules"],
        30,
        "the schedule deleted itself after completion",
    )


def test_a_rate_schedule_with_a_flexible_window_starts_tasks(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-flex"
    dockyard.aws(
        "scheduler",
        "create-schedule",
        "--name",
        name,
        "--schedule-expression",
        "rate(1 minute)",
        "--flexible-time-window",
        json.dumps({"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 1}),
        "--target",
        json.dumps(_schedule_target(setup)),
    )
    try:

        def runs() -> list[dict[str, Any]]:
            found = setup.own.call("AWSEvents", "ListRuleInvocations", {"Schedule": name})["Invocations"]
            return found if len([r for r in found if r["Status"] == "SUCCEEDED"]) >= 2 else []

        done = wait_for(runs, 60, "two runs of rate(1 minute) within their windows")
        assert all(r["Message"].startswith("arn:aws:ecs:") for r in done if r["Status"] == "SUCCEEDED")
        proc = dockyard.cli("rules", "--data-dir", str(dockyard.data_dir), "--json")
        assert proc.returncode == 0, proc.stderr
        [mine] = [r for r in json.loads(proc.stdout) if r["rule"] == f"schedule/{name}"]
        assert (mine["trigger"], mine["targets"], mine["dead letters"]) == ("rate(1 minute)", 1, 0)
        assert (
            len(
                setup.ecs.list_tasks(cluster=setup.cluster, startedBy=f"scheduler/{name}")["taskArns"]
                + setup.ecs.list_tasks(
                    cluster=setup.cluster, startedBy=f"scheduler/{name}", desiredStatus="STOPPED"
                )["taskArns"]
            )
            >= 2
        )
    finally:
        dockyard.aws("scheduler", "delete-schedule", "--name", name)


def test_an_image_push_and_delete_run_targets_with_ecr_image_actions(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-on-push"
    repo = f"{setup.cluster}-app"
    pattern = {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Action"],
        "detail": {"repository-name": [repo], "action-type": ["PUSH", "DELETE"], "result": ["SUCCESS"]},
    }
    dockyard.aws("events", "put-rule", "--name", name, "--event-pattern", json.dumps(pattern))
    template = (
        '{"containerOverrides": [{"name": "c", "environment": [{"name": "ACTION", "value": <action>}, '
        '{"name": "TAG", "value": <tag>}, {"name": "REPO", "value": "<repo>"}]}]}'
    )
    transformer = {
        "InputPathsMap": {
            "action": "$.detail.action-type",
            "tag": "$.detail.image-tag",
            "repo": "$.resources[0]",
        },
        "InputTemplate": template,
    }
    dockyard.aws(
        "events",
        "put-targets",
        "--rule",
        name,
        "--targets",
        json.dumps([setup.target("deploy", InputTransformer=transformer)]),
    )
    try:
        docker_push(dockyard, busybox_image(), f"{repo}:v1")

        def runs() -> set[tuple[str, str, str]]:
            out = set()
            for t in setup.started_by(name):
                env = {e["name"]: e["value"] for e in t["overrides"]["containerOverrides"][0]["environment"]}
                out.add((env["ACTION"], env["TAG"], env["REPO"]))
            return out

        arn = f"arn:aws:ecr:us-east-1:000000000000:repository/{repo}"
        assert wait_for(runs, 60, "the push ran the target") == {("PUSH", "v1", arn)}
        dockyard.aws("ecr", "batch-delete-image", "--repository-name", repo, "--image-ids", "imageTag=v1")
        assert wait_for(lambda: len(runs()) == 2 and runs(), 60, "the delete ran the target") == {
            ("PUSH", "v1", arn),
            ("DELETE", "v1", arn),
        }
    finally:
        setup.drop(name)
        dockyard.aws("ecr", "delete-repository", "--repository-name", repo, "--force", check=False)


def test_a_scan_on_push_ending_sends_ecr_image_scan(dockyard: Any, setup: Setup) -> None:
    name = f"{setup.cluster}-on-scan"
    repo = f"{setup.cluster}-scanned"
    dockyard.aws(
        "ecr",
        "create-repository",
        "--repository-name",
        repo,
        "--image-scanning-configuration",
        "scanOnPush=true",
    )
    pattern = {
        "source": ["aws.ecr"],
        "detail-type": ["ECR Image Scan"],
        "detail": {"repository-name": [repo]},
    }
    dockyard.aws("events", "put-rule", "--name", name, "--event-pattern", json.dumps(pattern))
    template = (
        '{"containerOverrides": [{"name": "c", "environment": [{"name": "STATUS", "value": <status>}, '
        '{"name": "TAGS", "value": "<tags>"}, {"name": "DIGEST", "value": <digest>}]}]}'
    )
    transformer = {
        "InputPathsMap": {
            "status": "$.detail.scan-status",
            "tags": "$.detail.image-tags",
            "digest": "$.detail.image-digest",
        },
        "InputTemplate": template,
    }
    dockyard.aws(
        "events",
        "put-targets",
        "--rule",
        name,
        "--targets",
        json.dumps([setup.target("report", InputTransformer=transformer)]),
    )
    try:
        docker_push(dockyard, busybox_image(), f"{repo}:v2")
        # one task per scan that ended (more if the session's registry scanning configuration,
        # another module's, also scans the repository continuously)
        tasks = wait_for(lambda: setup.started_by(name), 90, "the scan's end ran the target")
        envs = [{e["name"]: e["value"] for e in t["overrides"]["containerOverrides"][0]["environment"]}
                for t in tasks]
        [image] = dockyard.aws("ecr", "describe-images", "--repository-name", repo)["imageDetails"]
        scan = dockyard.aws(
            "ecr",
            "describe-image-scan-findings",
            "--repository-name",
            repo,
            "--image-id",
            f"imageDigest={image['imageDigest']}",
        )["imageScanStatus"]["status"]
        expected = {"STATUS": scan, "TAGS": '["v2"]', "DIGEST": image["imageDigest"]}
        assert all(env == expected for env in envs), envs
        assert scan in ("COMPLETE", "FAILED")
    finally:
        setup.drop(name)
        dockyard.aws("ecr", "delete-repository", "--repository-name", repo, "--force", check=False)
