"""ECS services through the real aws CLI and boto3 against a real dockerd: the issue's three
commands, desiredCount held, rolling deployments, the circuit breaker, health-based
replacement, DAEMON, placement failures, bad input."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.images import build_image, busybox_image, echo_image
from tests.support.registry import docker_push

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
        capture_output=True, text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


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


@pytest.fixture
def cluster(dockyard: Any) -> Iterator[str]:
    name = f"svc-{uuid.uuid4().hex[:8]}"
    ecs = dockyard.client("ecs")
    ecs.create_cluster(clusterName=name)
    try:
        yield name
    finally:
        drain(ecs, name)
        ecs.delete_cluster(cluster=name)


@pytest.fixture(scope="module")
def issue_service(dockyard: Any, app_image: str) -> Iterator[str]:
    """The issue's three commands, verbatim plus --endpoint-url."""
    dockyard.aws("ecs", "create-cluster", "--cluster-name", "my-ecs-cluster")
    dockyard.aws(
        "ecs", "register-task-definition", "--family", "my-app-task", "--network-mode", "awsvpc",
        "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
        "--container-definitions",
        '[{"name":"my-app-container","image":"my-app-image:latest",'
        '"portMappings":[{"containerPort":80,"hostPort":80}]}]',
    )
    dockyard.aws(
        "ecs", "create-service", "--cluster", "my-ecs-cluster", "--service-name", "my-app-service",
        "--task-definition", "my-app-task", "--desired-count", "2", "--launch-type", "FARGATE",
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
        "ecs", "wait", "services-stable", "--cluster", "my-ecs-cluster", "--services", issue_service,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    s = service(ecs, "my-ecs-cluster", issue_service)
    assert s["serviceArn"] == "arn:aws:ecs:us-east-1:000000000000:service/my-ecs-cluster/my-app-service"
    assert (s["status"], s["desiredCount"], s["runningCount"], s["launchType"]) == ("ACTIVE", 2, 2, "FARGATE")
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
        out = subprocess.run(["wget", "-q", "-O", "-", f"http://{ip}:80/"], capture_output=True, text=True,
                             timeout=10) if False else None
        del out
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
    print(f"replacement RUNNING {elapsed:.2f} s after docker kill")
    assert elapsed < 3.0
    gone = ecs.describe_tasks(cluster="my-ecs-cluster", tasks=[victim["task"]])["tasks"][0]
    assert gone["desiredStatus"] == "STOPPED" and gone["stopCode"] == "EssentialContainerExited"
    wait_for(lambda: len(containers("my-ecs-cluster")) == 2, timeout=30, what="two containers again")
