"""ECS services through the real aws CLI and boto3 against a real dockerd: the issue's three
commands, desiredCount held, rolling deployments, the circuit breaker, health-based
replacement, DAEMON, placement failures, bad input.

Longer than 500 lines because its tests share module-scoped fixtures (the images pushed
once, the issue's service created once and read by several tests); discovery and restarts
have files of their own (``test_ecs_services_discovery.py``, ``test_ecs_services_restart.py``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.images import build_image, busybox_image, echo_image
from tests.support.registry import docker_push
from tests.support.server import BIN

APP_TAG = "dockyard-test/app80:latest"


# -- helpers ------------------------------------------------------------------------------------
def wait_for(check: Callable[[], Any], timeout: float = 60, interval: float = 0.2, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what or check.__name__}; last: {last!r}")


def containers(cluster: str, running_only: bool = True) -> list[dict[str, str]]:
    """Task containers (not pause containers) Docker runs for ``cluster``."""
    args = ["docker", "ps", "--no-trunc", "--filter", f"label=dockyard.cluster={cluster}"]
    if not running_only:
        args.append("-a")
    args += ["--format", '{{.ID}} {{.Label "dockyard.container-name"}} {{.Label "dockyard.task-arn"}}']
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    rows = [dict(zip(("id", "name", "task"), line.split(" "), strict=True)) for line in out.splitlines()]
    return [r for r in rows if r["name"] != "~pause"]


def service(ecs: Any, cluster: str, name: str) -> dict[str, Any]:
    return ecs.describe_services(cluster=cluster, services=[name])["services"][0]


def service_tasks(ecs: Any, cluster: str, name: str, status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = ecs.list_tasks(cluster=cluster, serviceName=name, desiredStatus=status)["taskArns"]
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"] if arns else []


def stable(ecs: Any, cluster: str, name: str) -> dict[str, Any] | None:
    s = service(ecs, cluster, name)
    ok = len(s["deployments"]) == 1 and s["runningCount"] == s["desiredCount"] and s["pendingCount"] == 0
    return s if ok and s["deployments"][0]["rolloutState"] == "COMPLETED" else None


def messages(s: dict[str, Any]) -> list[str]:
    return [e["message"] for e in s["events"]]


def drain(ecs: Any, cluster: str) -> None:
    """Delete every service of ``cluster``, wait for its tasks to stop, remove its containers."""
    for arn in ecs.list_services(cluster=cluster, maxResults=100)["serviceArns"]:
        ecs.delete_service(cluster=cluster, service=arn, force=True)
    wait_for(lambda: not ecs.list_tasks(cluster=cluster)["taskArns"], timeout=90, what="tasks to stop")
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dockyard.cluster={cluster}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def delete_cluster(ecs: Any, cluster: str, timeout: float = 90) -> dict[str, Any]:
    """DeleteCluster as soon as ECS allows it: once its services are INACTIVE and its tasks
    STOPPED (until then it is refused with ClusterContainsServicesException or
    ClusterContainsTasksException)."""
    refused = (ecs.exceptions.ClusterContainsServicesException, ecs.exceptions.ClusterContainsTasksException)

    def attempt() -> dict[str, Any] | None:
        try:
            return ecs.delete_cluster(cluster=cluster)["cluster"]
        except refused:
            return None

    return wait_for(attempt, timeout, what=f"cluster {cluster} to be deleted")


def sleeper(ecs: Any, family: str, image: str, **container: Any) -> str:
    """Register a cheap task definition (busybox sleeping) and return its ARN."""
    c = {"name": "main", "image": image, "memory": 32, "command": ["sleep", "3600"], **container}
    return ecs.register_task_definition(family=family, containerDefinitions=[c])["taskDefinition"][
        "taskDefinitionArn"
    ]


# -- fixtures -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app_image(dockyard: Any) -> str:
    """An image whose default command listens on port 80, pushed as my-app-image:latest."""
    build_image(APP_TAG, f"FROM {echo_image()}\nENV PORT=80\nEXPOSE 80\n")
    docker_push(dockyard, APP_TAG, "my-app-image:latest")
    return "my-app-image:latest"


@pytest.fixture(scope="module")
def small_image(dockyard: Any) -> str:
    """busybox in Dockyard's registry, for tasks that only sleep."""
    docker_push(dockyard, busybox_image(), "svc-busybox:latest")
    return "svc-busybox:latest"


@contextlib.contextmanager
def service_cluster(dockyard: Any, prefix: str) -> Iterator[str]:
    """A new cluster ``<prefix>-<random>``; its services are deleted, its tasks stopped and
    removed, and itself deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=name)
    try:
        yield name
    finally:
        drain(ecs, name)
        delete_cluster(ecs, name)


@pytest.fixture
def cluster(dockyard: Any) -> Iterator[str]:
    with service_cluster(dockyard, "svc") as name:
        yield name


@pytest.fixture(scope="module")
def issue_service(dockyard: Any, app_image: str) -> Iterator[str]:
    """The issue's three commands, verbatim plus --endpoint-url."""
    dockyard.aws("ecs", "create-cluster", "--cluster-name", "my-ecs-cluster")
    dockyard.aws(
        "ecs",
        "register-task-definition",
        "--family",
        "my-app-task",
        "--network-mode",
        "awsvpc",
        "--requires-compatibilities",
        "FARGATE",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        '[{"name":"my-app-container","image":"my-app-image:latest",'
        '"portMappings":[{"containerPort":80,"hostPort":80}]}]',
    )
    dockyard.aws(
        "ecs",
        "create-service",
        "--cluster",
        "my-ecs-cluster",
        "--service-name",
        "my-app-service",
        "--task-definition",
        "my-app-task",
        "--desired-count",
        "2",
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        '{"awsvpcConfiguration":{"subnets":["subnet-abc123","subnet-def456"],'
        '"securityGroups":["sg-123abc"],"assignPublicIp":"ENABLED"}}',
    )
    try:
        yield "my-app-service"
    finally:
        drain(dockyard.client("ecs"), "my-ecs-cluster")


# -- the issue's commands -------------------------------------------------------------------------
def test_the_issues_three_commands_end_with_two_running_containers(dockyard, issue_service):
    ecs = dockyard.client("ecs")
    wait_for(lambda: len(containers("my-ecs-cluster")) == 2, timeout=90, what="two containers")
    wait_for(lambda: stable(ecs, "my-ecs-cluster", issue_service), timeout=60, what="steady service")
    proc = dockyard.aws(
        "ecs",
        "wait",
        "services-stable",
        "--cluster",
        "my-ecs-cluster",
        "--services",
        issue_service,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    s = service(ecs, "my-ecs-cluster", issue_service)
    assert s["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/my-ecs-cluster/my-app-service"
    assert (s["status"], s["desiredCount"], s["runningCount"], s["launchType"]) == (
        "ACTIVE",
        2,
        2,
        "FARGATE",
    )
    assert s["networkConfiguration"]["awsvpcConfiguration"]["securityGroups"] == ["sg-123abc"]
    assert s["deploymentConfiguration"]["minimumHealthyPercent"] == 100
    assert s["deploymentConfiguration"]["maximumPercent"] == 200
    [dep] = s["deployments"]
    assert dep["id"].startswith("ecs-svc/") and dep["status"] == "PRIMARY"
    assert dep["rolloutState"] == "COMPLETED" and dep["runningCount"] == 2
    assert "(service my-app-service) has reached a steady state." in messages(s)
    assert any(m.startswith("(service my-app-service) has started 2 tasks: (task ") for m in messages(s))
    tasks = service_tasks(ecs, "my-ecs-cluster", issue_service)
    assert {t["group"] for t in tasks} == {"service:my-app-service"}
    assert {t["startedBy"] for t in tasks} == {dep["id"]}
    # awsvpc: each task has its own address, and both answer on port 80.
    ips = [t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] for t in tasks]
    assert len(set(ips)) == 2
    for ip in ips:
        with urllib.request.urlopen(f"http://{ip}:80/", timeout=10) as resp:
            assert resp.status == 200
    listed = dockyard.aws("ecs", "list-services", "--cluster", "my-ecs-cluster")
    assert listed["serviceArns"] == [s["serviceArn"]]


def test_a_container_killed_behind_dockyards_back_is_replaced_within_3_seconds(dockyard, issue_service):
    ecs = dockyard.client("ecs")
    wait_for(lambda: stable(ecs, "my-ecs-cluster", issue_service), timeout=90, what="steady service")
    before = {t["taskArn"] for t in service_tasks(ecs, "my-ecs-cluster", issue_service)}
    victim = containers("my-ecs-cluster")[0]
    started = time.monotonic()
    subprocess.run(["docker", "kill", victim["id"]], check=True, capture_output=True)

    def replaced() -> bool:
        tasks = service_tasks(ecs, "my-ecs-cluster", issue_service)
        fresh = [t for t in tasks if t["taskArn"] not in before and t["lastStatus"] == "RUNNING"]
        return len(fresh) == 1 and len([t for t in tasks if t["lastStatus"] == "RUNNING"]) == 2

    wait_for(replaced, timeout=30, interval=0.05, what="a replacement task")
    elapsed = time.monotonic() - started
    gone = ecs.describe_tasks(cluster="my-ecs-cluster", tasks=[victim["task"]])["tasks"][0]
    [fresh] = [t for t in service_tasks(ecs, "my-ecs-cluster", issue_service) if t["taskArn"] not in before]
    steps = {
        k: round(fresh[k].timestamp() - gone["stoppingAt"].timestamp(), 2)
        for k in ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt")
        if k in fresh
    }
    print(f"replacement RUNNING {elapsed:.2f} s after docker kill; after the stop request: {steps}")
    assert elapsed < 3.0, steps
    assert gone["desiredStatus"] == "STOPPED" and gone["stopCode"] == "EssentialContainerExited"
    wait_for(lambda: len(containers("my-ecs-cluster")) == 2, timeout=30, what="two containers again")


# -- deployments ----------------------------------------------------------------------------------
def test_a_rolling_deployment_replaces_every_task_within_min_and_max_percent(
    dockyard, cluster, small_image
):
    ecs = dockyard.client("ecs")
    one = sleeper(ecs, "roll", small_image)
    two = sleeper(ecs, "roll", small_image, environment=[{"name": "VERSION", "value": "2"}])
    ecs.create_service(
        cluster=cluster,
        serviceName="roll",
        taskDefinition=one,
        desiredCount=2,
        deploymentConfiguration={"minimumHealthyPercent": 50, "maximumPercent": 100},
    )
    wait_for(lambda: stable(ecs, cluster, "roll"), timeout=60, what="first deployment")
    old = {t["taskArn"] for t in service_tasks(ecs, cluster, "roll")}
    updated = ecs.update_service(cluster=cluster, service="roll", taskDefinition=two)["service"]
    assert [d["status"] for d in updated["deployments"]] == ["PRIMARY", "ACTIVE"]
    assert updated["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    assert updated["taskDefinition"] == two
    most_live, fewest_running = 0, 2
    deadline = time.monotonic() + 90
    while not stable(ecs, cluster, "roll"):
        assert time.monotonic() < deadline, service(ecs, cluster, "roll")
        live = service_tasks(ecs, cluster, "roll")
        most_live = max(most_live, len(live))
        fewest_running = min(fewest_running, sum(t["lastStatus"] == "RUNNING" for t in live))
        time.sleep(0.1)
    assert most_live <= 2 and fewest_running >= 1  # maximumPercent 100, minimumHealthyPercent 50
    tasks = service_tasks(ecs, cluster, "roll")
    assert {t["taskDefinitionArn"] for t in tasks} == {two} and not old & {t["taskArn"] for t in tasks}
    s = service(ecs, cluster, "roll")
    assert s["deployments"][0]["taskDefinition"] == two
    assert any(
        m.endswith("deployment completed.") and "(service roll) (deployment ecs-svc/" in m
        for m in messages(s)
    )
    assert any(m.startswith("(service roll) has stopped 1 running tasks: (task ") for m in messages(s))


def test_the_circuit_breaker_rolls_back_when_new_tasks_cannot_pull_their_image(
    dockyard, cluster, small_image
):
    ecs = dockyard.client("ecs")
    good = sleeper(ecs, "breaker", small_image)
    bad = sleeper(ecs, "breaker", "no-such-image-anywhere:404")
    ecs.create_service(
        cluster=cluster,
        serviceName="breaker",
        taskDefinition=good,
        desiredCount=1,
        deploymentConfiguration={"deploymentCircuitBreaker": {"enable": True, "rollback": True}},
    )
    wait_for(lambda: stable(ecs, cluster, "breaker"), timeout=60, what="first deployment")
    first = service(ecs, cluster, "breaker")["deployments"][0]["id"]
    ecs.update_service(cluster=cluster, service="breaker", taskDefinition=bad)
    # the watch follows the new deployment: it failed, so exit 1, though the rollback is steady
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]
    common += ["--cluster", cluster]
    watched = dockyard.cli("services", "breaker", "--watch", "--timeout", "120", *common)
    assert watched.returncode == 1, watched.stdout + watched.stderr
    assert "rolled back after deployment ecs-svc/" in watched.stdout.splitlines()[-1]

    def rolled_back() -> dict[str, Any] | None:
        s = stable(ecs, cluster, "breaker")
        return s if s and s["deployments"][0]["id"] != first and s["taskDefinition"] == good else None

    s = wait_for(rolled_back, timeout=120, interval=0.5, what="rollback")
    failed_msgs = [m for m in messages(s) if "deployment failed: tasks failed to start." in m]
    assert failed_msgs and failed_msgs[0].startswith("(service breaker) deployment ecs-svc/")
    stopped = service_tasks(ecs, cluster, "breaker", "STOPPED")
    bad_tasks = [t for t in stopped if t["taskDefinitionArn"] == bad]
    assert len(bad_tasks) >= 3
    assert all(t["stopCode"] == "TaskFailedToStart" for t in bad_tasks)
    assert all("CannotPullContainerError" in t["stoppedReason"] for t in bad_tasks)
    assert {t["taskDefinitionArn"] for t in service_tasks(ecs, cluster, "breaker")} == {good}


def test_an_unhealthy_task_is_replaced_and_the_replacement_starts_before_it_stops(
    dockyard, cluster, small_image
):
    ecs = dockyard.client("ecs")
    arn = sleeper(
        ecs,
        "health",
        small_image,
        command=["sh", "-c", "touch /tmp/ok; exec sleep 3600"],
        healthCheck={
            "command": ["CMD-SHELL", "test -f /tmp/ok"],
            "interval": 5,
            "timeout": 2,
            "retries": 1,
        },
    )
    ecs.create_service(cluster=cluster, serviceName="health", taskDefinition=arn, desiredCount=1)
    wait_for(lambda: stable(ecs, cluster, "health"), timeout=60, what="a healthy task")
    [sick] = service_tasks(ecs, cluster, "health")
    assert sick["healthStatus"] == "HEALTHY"
    cid = sick["containers"][0]["runtimeId"]
    subprocess.run(["docker", "exec", cid, "busybox", "rm", "/tmp/ok"], check=True, capture_output=True)
    stopped = wait_for(
        lambda: [
            t for t in service_tasks(ecs, cluster, "health", "STOPPED") if t["taskArn"] == sick["taskArn"]
        ],
        timeout=60,
        what="the unhealthy task to be stopped",
    )[0]
    assert stopped["stoppedReason"] == "Task failed container health checks"
    assert stopped["stopCode"] == "ServiceSchedulerInitiated"
    [fresh] = service_tasks(ecs, cluster, "health")
    assert fresh["taskArn"] != sick["taskArn"]
    assert fresh["startedAt"] < stopped["stoppingAt"]  # the replacement ran before the stop began
    wait_for(lambda: stable(ecs, cluster, "health"), timeout=60, what="steady again")


# -- scheduling -----------------------------------------------------------------------------------
def test_a_daemon_service_runs_one_task_on_every_container_instance(dockyard, cluster, small_image):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, "daemon", small_image)
    created = ecs.create_service(
        cluster=cluster, serviceName="daemon", taskDefinition=arn, schedulingStrategy="DAEMON"
    )["service"]
    assert created["schedulingStrategy"] == "DAEMON"
    assert created["deploymentConfiguration"]["minimumHealthyPercent"] == 0
    instances = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    s = wait_for(lambda: stable(ecs, cluster, "daemon"), timeout=60, what="daemon steady")
    assert s["desiredCount"] == len(instances) >= 1
    tasks = service_tasks(ecs, cluster, "daemon")
    assert sorted(t["containerInstanceArn"] for t in tasks) == sorted(instances)


def test_a_task_that_fits_nowhere_becomes_a_service_event_naming_the_reason(dockyard, cluster, small_image):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, "huge", small_image, memory=64 * 1024 * 1024)
    ecs.create_service(cluster=cluster, serviceName="huge", taskDefinition=arn, desiredCount=1)

    def placement_event() -> list[str]:
        return [m for m in messages(service(ecs, cluster, "huge")) if "unable to place" in m]

    [msg] = wait_for(placement_event, timeout=30, what="a placement event")
    assert msg.startswith(
        "(service huge) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance "
    )
    assert msg.endswith(
        "has insufficient memory available. For more information, see the Troubleshooting section of "
        "the Amazon ECS Developer Guide."
    )
    time.sleep(3)  # further attempts do not repeat the same event
    assert len(placement_event()) == 1
    assert service(ecs, cluster, "huge")["runningCount"] == 0


def test_a_task_needing_an_attribute_no_instance_has_becomes_a_service_event_naming_it(
    dockyard, cluster, small_image
):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, "firelens", small_image, logConfiguration={"logDriver": "awsfirelens"})
    ecs.create_service(cluster=cluster, serviceName="firelens", taskDefinition=arn, desiredCount=1)

    def placement_event() -> list[str]:
        return [m for m in messages(service(ecs, cluster, "firelens")) if "unable to place" in m]

    [msg] = wait_for(placement_event, timeout=30, what="a placement event")
    assert msg.startswith(
        "(service firelens) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance "
    )
    assert msg.endswith(
        "is missing an attribute required by your task "
        "(com.amazonaws.ecs.capability.logging-driver.awsfirelens). For more information, see the "
        "Troubleshooting section of the Amazon ECS Developer Guide."
    )
    assert service(ecs, cluster, "firelens")["runningCount"] == 0
    assert ecs.list_tasks(cluster=cluster, serviceName="firelens")["taskArns"] == []


def test_scaling_a_service_up_and_down_holds_the_desired_count(dockyard, cluster, small_image):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, "scale", small_image)
    ecs.create_service(cluster=cluster, serviceName="scale", taskDefinition=arn, desiredCount=1)
    wait_for(lambda: stable(ecs, cluster, "scale"), timeout=60)
    ecs.update_service(cluster=cluster, service="scale", desiredCount=3)
    s = wait_for(lambda: stable(ecs, cluster, "scale"), timeout=60, what="three tasks")
    assert len(s["deployments"]) == 1 and s["runningCount"] == 3
    ecs.update_service(cluster=cluster, service="scale", desiredCount=0)
    wait_for(lambda: not service_tasks(ecs, cluster, "scale"), timeout=60, what="scale to zero")
    deleted = ecs.delete_service(cluster=cluster, service="scale")["service"]
    assert deleted["status"] in ("DRAINING", "INACTIVE")
    # INACTIVE once its tasks have stopped: busybox sleep ignores SIGTERM, so after its 30 s stopTimeout
    wait_for(lambda: service(ecs, cluster, "scale")["status"] == "INACTIVE", timeout=75, what="INACTIVE")
    assert ecs.list_services(cluster=cluster)["serviceArns"] == []


# -- bad input ------------------------------------------------------------------------------------
def test_bad_service_requests_get_clear_aws_errors(dockyard, cluster, small_image):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, "errs", small_image)

    def error(fn: Callable[..., Any], **kw: Any) -> tuple[str, str]:
        with pytest.raises(ecs.exceptions.ClientError) as e:
            fn(**kw)
        return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]

    assert error(ecs.create_service, cluster="nope", serviceName="x", taskDefinition=arn)[0] == (
        "ClusterNotFoundException"
    )
    assert error(ecs.create_service, cluster=cluster, serviceName="x", taskDefinition="errs:99")[0] == (
        "ClientException"
    )
    code, msg = error(ecs.create_service, cluster=cluster, serviceName="bad name!", taskDefinition=arn)
    assert code == "InvalidParameterException" and "serviceName" in msg
    code, msg = error(
        ecs.create_service,
        cluster=cluster,
        serviceName="x",
        taskDefinition=arn,
        deploymentConfiguration={"maximumPercent": 50},
    )
    assert code == "InvalidParameterException" and "maximumPercent" in msg
    vpc = ecs.register_task_definition(
        family="errs-vpc",
        networkMode="awsvpc",
        containerDefinitions=[{"name": "c", "image": "x", "memory": 8}],
    )["taskDefinition"]["taskDefinitionArn"]
    code, msg = error(ecs.create_service, cluster=cluster, serviceName="x", taskDefinition=vpc)
    assert code == "InvalidParameterException" and "awsvpc" in msg
    ecs.create_service(cluster=cluster, serviceName="dup", taskDefinition=arn, desiredCount=0)
    code, msg = error(ecs.create_service, cluster=cluster, serviceName="dup", taskDefinition=arn)
    assert code == "InvalidParameterException" and "idempotent" in msg
    assert error(ecs.update_service, cluster=cluster, service="ghost", desiredCount=1)[0] == (
        "ServiceNotFoundException"
    )
    ecs.update_service(cluster=cluster, service="dup", desiredCount=1)
    code, msg = error(ecs.delete_service, cluster=cluster, service="dup")
    assert code == "InvalidParameterException" and "scaled above 0" in msg
    missing = ecs.describe_services(cluster=cluster, services=["ghost"])
    assert missing["failures"] == [
        {"arn": f"arn:aws:ecs:us-east-1:000000000000:service/{cluster}/ghost", "reason": "MISSING"}
    ]
    proc = dockyard.aws(
        "ecs",
        "create-service",
        "--cluster",
        cluster,
        "--service-name",
        "y",
        "--task-definition",
        arn,
        "--desired-count",
        "-3",
        check=False,
    )
    assert proc.returncode != 0 and "Traceback" not in proc.stderr


# -- CLI ------------------------------------------------------------------------------------------
def test_dockyard_services_lists_shows_and_follows_a_deployment_as_it_rolls(dockyard, cluster, small_image):
    ecs = dockyard.client("ecs")
    check = {"command": ["CMD-SHELL", "true"], "interval": 5, "timeout": 2, "retries": 1}  # a slower roll
    one = sleeper(ecs, "clisvc", small_image, healthCheck=check)
    two = sleeper(ecs, "clisvc", small_image, healthCheck=check, environment=[{"name": "V", "value": "2"}])
    ecs.create_service(cluster=cluster, serviceName="cli", taskDefinition=one, desiredCount=2)
    wait_for(lambda: stable(ecs, cluster, "cli"), timeout=60)
    common = [
        "--data-dir",
        str(dockyard.data_dir),
        "--endpoint-url",
        dockyard.control_url,
        "--cluster",
        cluster,
    ]
    listed = dockyard.cli("services", *common)
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "NAME",
        "STATUS",
        "TASK_DEFINITION",
        "DESIRED",
        "RUNNING",
        "PENDING",
        "ROLLOUT",
    ]
    assert row.split() == ["cli", "ACTIVE", one.rsplit("/", 1)[-1], "2", "2", "0", "COMPLETED"]
    shown = dockyard.cli("services", "cli", *common)
    assert "has reached a steady state." in shown.stdout and "PRIMARY" in shown.stdout

    ecs.update_service(cluster=cluster, service="cli", taskDefinition=two)
    watched = dockyard.cli("services", "cli", "--watch", "--timeout", "90", *common)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    lines = watched.stdout.splitlines()
    assert any("PRIMARY" in line and "IN_PROGRESS" in line for line in lines)
    assert any("ACTIVE" in line and "clisvc:" in line for line in lines)  # the old deployment draining
    assert any("has started 2 tasks" in line for line in lines)
    assert lines[-1] == "service cli is steady: 2/2 running"
    missing = dockyard.cli("services", "ghost", *common)
    assert missing.returncode == 1 and missing.stderr.startswith("dockyard: ")

    # a replay (--since) keeps each event's own time; a reader that goes away ends it quietly
    replay = ["events", "--since", "0", "--cluster", cluster, "--data-dir", str(dockyard.data_dir),
              "--endpoint-url", dockyard.control_url]
    asked = time.time()
    piped = subprocess.run(
        ["bash", "-o", "pipefail", "-c", '"$0" "$@" --json | head -n 3', str(BIN / "dockyard"), *replay],
        capture_output=True, text=True, timeout=60,
    )
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
    events = [json.loads(line) for line in piped.stdout.splitlines()]
    assert len(events) == 3 and all(e["time"] < asked for e in events)
    assert events[0]["time"] < asked - 1  # the service was created well before
    text = subprocess.run(
        ["bash", "-o", "pipefail", "-c", '"$0" "$@" | head -n 1', str(BIN / "dockyard"), *replay],
        capture_output=True, text=True, timeout=60,
    )
    assert text.returncode == 0 and text.stderr == "", text.stderr
    assert text.stdout.startswith(time.strftime("%H:%M:%S", time.localtime(events[0]["time"])))
