"""Task scale-in protection through the real aws CLI, and from inside a task through
``$ECS_AGENT_URI/task-protection/v1/state`` (curl on the host, busybox wget in the task): a
scale-in and a deployment keep protected tasks until their protection ends; bad requests
change nothing."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_services import service_cluster, service_tasks, wait_for
from tests.support.images import busybox_image
from tests.support.registry import docker_push

PROBE = 'wget -q -O - "$ECS_AGENT_URI/task-protection/v1/state"; echo; exec sleep 3600'


@pytest.fixture(scope="module")
def image(dockyard: Any) -> str:
    docker_push(dockyard, busybox_image(), "prot-busybox:latest")
    return "prot-busybox:latest"


@pytest.fixture
def cluster(dockyard: Any) -> Iterator[str]:
    with service_cluster(dockyard, "prot") as name:
        yield name


def _definition(ecs: Any, image: str, family: str) -> str:
    c = {"name": "main", "image": image, "memory": 16, "command": ["sh", "-c", PROBE], "stopTimeout": 1}
    return ecs.register_task_definition(family=family, containerDefinitions=[c])["taskDefinition"][
        "taskDefinitionArn"]


def _running_ids(ecs: Any, cluster: str, service: str) -> set[str]:
    return {t["taskArn"].rsplit("/", 1)[-1] for t in service_tasks(ecs, cluster, service)
            if t["lastStatus"] == "RUNNING"}


def _agent_uri(ecs: Any, cluster: str, task: str) -> str:
    described = ecs.describe_tasks(cluster=cluster, tasks=[task])["tasks"][0]
    inspected = json.loads(subprocess.run(["docker", "inspect", described["containers"][0]["runtimeId"]],
                                          capture_output=True, text=True, check=True).stdout)
    env = dict(v.split("=", 1) for v in inspected[0]["Config"]["Env"])
    return env["ECS_AGENT_URI"]


def _curl(*args: str) -> tuple[int, dict[str, Any]]:
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                         check=True).stdout
    body, _, code = out.rpartition("\n")
    return int(code), json.loads(body)


def test_protected_tasks_outlive_a_scale_in_and_a_deployment(dockyard, cluster, image):
    ecs = dockyard.client("ecs")
    td = _definition(ecs, image, f"{cluster}-td")
    ecs.create_service(cluster=cluster, serviceName="web", taskDefinition=td, desiredCount=3)
    ids = wait_for(lambda: len(r := _running_ids(ecs, cluster, "web")) == 3 and r, 120,
                   what="three running tasks")
    one, two, three = sorted(ids)

    # from inside the task: its own state, unprotected at first (busybox wget printed it)
    runtime = ecs.describe_tasks(cluster=cluster, tasks=[one])["tasks"][0]["containers"][0]["runtimeId"]
    printed = wait_for(lambda: subprocess.run(["docker", "logs", runtime], capture_output=True,
                                              text=True).stdout.strip(), 30, what="the task's probe")
    assert json.loads(printed)["protection"]["ProtectionEnabled"] is False

    out = dockyard.aws("ecs", "update-task-protection", "--cluster", cluster, "--tasks", one,
                       "--protection-enabled", "--expires-in-minutes", "60")
    assert out["failures"] == [] and out["protectedTasks"][0]["protectionEnabled"] is True
    assert out["protectedTasks"][0]["taskArn"].endswith(f"/{cluster}/{one}")
    # the agent endpoint, as an app calls it (the host reaches it as the tasks do)
    uri = _agent_uri(ecs, cluster, two)
    state = f"{uri}/task-protection/v1/state"
    code, body = _curl("-X", "PUT", "-H", "Content-Type: application/json", "--data",
                       '{"ProtectionEnabled": true, "ExpiresInMinutes": 5}', state)
    assert code == 200 and body["protection"]["ProtectionEnabled"] is True, body
    until = time.mktime(time.strptime(body["protection"]["ExpirationDate"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert 240 < until - time.mktime(time.gmtime()) <= 301
    code, body = _curl(f"{uri[:-8]}deadbeef/task-protection/v1/state")  # someone else's path
    assert code == 403 and body["error"]["Code"] == "AccessDeniedException"
    code, body = _curl("-X", "PUT", "--data", '{"ProtectionEnabled": true, "ExpiresInMinutes": 9999}', state)
    assert code == 400 and body["error"]["Code"] == "InvalidParameterException"

    got = dockyard.aws("ecs", "get-task-protection", "--cluster", cluster, "--tasks", one, two, three)
    assert [t["protectionEnabled"] for t in got["protectedTasks"]] == [True, True, False]

    # scale in to 1: only the unprotected task goes
    ecs.update_service(cluster=cluster, service="web", desiredCount=1)
    wait_for(lambda: _running_ids(ecs, cluster, "web") == {one, two}, 90, what="the unprotected task to stop")
    time.sleep(3)  # a few more service-loop passes (TICK is 2 s) change nothing
    assert _running_ids(ecs, cluster, "web") == {one, two}
    # the protection of two ends: then it goes too
    dockyard.aws("ecs", "update-task-protection", "--cluster", cluster, "--tasks", two,
                 "--no-protection-enabled")
    wait_for(lambda: _running_ids(ecs, cluster, "web") == {one}, 90, what="the unprotected surplus to stop")

    # a deployment keeps the protected task of the old revision
    ecs.update_service(cluster=cluster, service="web", forceNewDeployment=True)
    wait_for(lambda: len(_running_ids(ecs, cluster, "web")) == 2, 90, what="the new revision's task")
    time.sleep(3)
    s = ecs.describe_services(cluster=cluster, services=["web"])["services"][0]
    assert one in _running_ids(ecs, cluster, "web") and len(s["deployments"]) == 2
    assert s["deployments"][0]["rolloutState"] == "IN_PROGRESS"
    dockyard.aws("ecs", "update-task-protection", "--cluster", cluster, "--tasks", one,
                 "--no-protection-enabled")
    wait_for(lambda: one not in _running_ids(ecs, cluster, "web"), 90, what="the old task to stop")
    wait_for(lambda: ecs.describe_services(cluster=cluster, services=["web"])["services"][0][
        "deployments"][0]["rolloutState"] == "COMPLETED", 90, what="the deployment to complete")


def test_bad_protection_requests_are_refused_and_change_nothing(dockyard, cluster, image):
    ecs = dockyard.client("ecs")
    td = _definition(ecs, image, f"{cluster}-bad")
    standalone = ecs.run_task(cluster=cluster, taskDefinition=td)["tasks"][0]["taskArn"]
    too_long = dockyard.aws("ecs", "update-task-protection", "--cluster", cluster, "--tasks", standalone,
                            "--protection-enabled", "--expires-in-minutes", "2881", check=False)
    assert too_long.returncode != 0 and "InvalidParameterException" in too_long.stderr
    assert "between 1 and 2880" in too_long.stderr
    out = dockyard.aws("ecs", "update-task-protection", "--cluster", cluster, "--tasks", standalone,
                       "no-such-task", "--protection-enabled")
    assert out["protectedTasks"] == []
    assert [(f["reason"], f["arn"].rsplit("/", 1)[-1]) for f in out["failures"]] == [
        ("TASK_NOT_VALID", standalone.rsplit("/", 1)[-1]), ("MISSING", "no-such-task")]
    assert "belong to a service" in out["failures"][0]["detail"]
    missing = dockyard.aws("ecs", "update-task-protection", "--cluster", "no-such-cluster", "--tasks", "x",
                           "--protection-enabled", check=False)
    assert "ClusterNotFoundException" in missing.stderr
    got = dockyard.aws("ecs", "get-task-protection", "--cluster", cluster, "--tasks", standalone)
    assert got["protectedTasks"][0]["protectionEnabled"] is False
    ecs.stop_task(cluster=cluster, task=standalone)
