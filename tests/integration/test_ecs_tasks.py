"""ECS tasks on the real Docker Engine, driven by the real aws CLI and boto3.

Images come from Dockyard's own registry (pushed with the docker CLI, then untagged locally so
that only a pull can bring them back) or from the local engine.

Longer than 500 lines because its tests share module-scoped fixtures (a cluster whose
containers are all removed at the end, images pushed once): the file is one scenario of the
task API end to end, and each helper it has is used by several tests.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.support.images import busybox_image, echo_image
from tests.support.registry import docker_push, docker_rmi
from tests.support.server import BIN, Dockyard


def wait_for(check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def inspect(container: str) -> dict[str, Any]:
    out = subprocess.run(["docker", "inspect", container], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)[0]


def labelled(cluster: str, all_: bool = False) -> list[str]:
    args = ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=dockyard.cluster={cluster}"]
    out = subprocess.run([*args, *(["-a"] if all_ else [])], capture_output=True, text=True, check=True)
    return out.stdout.split()


@contextlib.contextmanager
def own_cluster(dockyard: Dockyard, prefix: str) -> Iterator[str]:
    """A new cluster ``<prefix>-<random>``; its tasks are stopped and every container of it is
    removed afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    dockyard.aws("ecs", "create-cluster", "--cluster-name", name)
    try:
        yield name
    finally:
        ecs = dockyard.client("ecs")
        for arn in ecs.list_tasks(cluster=name)["taskArns"]:
            ecs.stop_task(cluster=name, task=arn)
        ids = labelled(name, all_=True)
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


@pytest.fixture(scope="module")
def cluster(dockyard: Dockyard) -> Iterator[str]:
    """A cluster of this module's own; every container of it is removed afterwards."""
    with own_cluster(dockyard, "tasks") as name:
        yield name


@pytest.fixture(scope="module")
def ecs(dockyard: Dockyard) -> Any:
    return dockyard.client("ecs")


def register(ecs: Any, family: str, *containers: dict[str, Any], **extra: Any) -> str:
    return ecs.register_task_definition(family=family, containerDefinitions=list(containers), **extra)[
        "taskDefinition"
    ]["taskDefinitionArn"]


def describe(ecs: Any, cluster: str, arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]


def until_status(ecs: Any, cluster: str, arn: str, status: str, timeout: float = 60) -> dict[str, Any]:
    return wait_for(
        lambda: (t := describe(ecs, cluster, arn))["lastStatus"] == status and t,
        timeout,
        f"task {arn} to be {status}",
    )


def run(ecs: Any, cluster: str, taskdef: str, **kw: Any) -> str:
    out = ecs.run_task(cluster=cluster, taskDefinition=taskdef, **kw)
    assert out["failures"] == [], out["failures"]
    return out["tasks"][0]["taskArn"]


def test_a_fargate_task_runs_from_dockyards_registry_in_its_own_network_namespace(
    dockyard: Dockyard, cluster: str
) -> None:
    name = f"tasks-echo-{uuid.uuid4().hex[:6]}"
    remote = docker_push(dockyard, echo_image(), f"{name}:latest")
    docker_rmi(remote)  # only a pull from the registry can bring it back
    dockyard.aws(
        "ecs",
        "register-task-definition",
        "--family",
        name,
        "--network-mode",
        "awsvpc",
        "--requires-compatibilities",
        "FARGATE",
        "--cpu",
        "256",
        "--memory",
        "512",
        "--container-definitions",
        json.dumps(
            [
                {
                    "name": "web",
                    "image": f"{name}:latest",
                    "portMappings": [{"containerPort": 80, "hostPort": 80}],
                    "environment": [{"name": "VERSION", "value": "v1"}, {"name": "PORT", "value": "80"}],
                    "stopTimeout": 2,
                }
            ]
        ),
    )
    out = dockyard.aws(
        "ecs",
        "run-task",
        "--cluster",
        cluster,
        "--task-definition",
        name,
        "--count",
        "2",
        "--launch-type",
        "FARGATE",
        "--network-configuration",
        '{"awsvpcConfiguration":{"subnets":["subnet-abc123"],"securityGroups":["sg-1"],"assignPublicIp":"ENABLED"}}',
    )
    arns = [t["taskArn"] for t in out["tasks"]]
    assert len(arns) == 2 and all(
        a.startswith(f"arn:aws:ecs:us-east-1:000000000000:task/{cluster}/") for a in arns
    )
    assert {t["lastStatus"] for t in out["tasks"]} == {"PROVISIONING"}
    dockyard.aws("ecs", "wait", "tasks-running", "--cluster", cluster, "--tasks", *arns)
    tasks = dockyard.aws("ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns)["tasks"]
    ips = set()
    for t in tasks:
        (c,) = t["containers"]
        assert c["image"] == remote and c["lastStatus"] == "RUNNING"
        assert t["launchType"] == "FARGATE" and t["cpu"] == "256" and t["memory"] == "512"
        ip = c["networkInterfaces"][0]["privateIpv4Address"]
        ips.add(ip)
        # Both tasks listen on port 80: each has an address of its own.
        body = wait_for(lambda ip=ip: _get(f"http://{ip}:80/"), 20, "the app to answer")
        assert body.strip() == "v1"
        info = inspect(c["runtimeId"])
        assert info["HostConfig"]["NetworkMode"].startswith("container:")
        assert info["HostConfig"]["NanoCpus"] == 250_000_000
        assert info["HostConfig"]["Memory"] == 512 * 1024 * 1024
        assert info["Config"]["Labels"]["dockyard.task-arn"] == t["taskArn"]
    assert len(ips) == 2
    for arn in arns:
        dockyard.aws("ecs", "stop-task", "--cluster", cluster, "--task", arn, "--reason", "done here")
    dockyard.aws("ecs", "wait", "tasks-stopped", "--cluster", cluster, "--tasks", *arns)
    for t in dockyard.aws("ecs", "describe-tasks", "--cluster", cluster, "--tasks", *arns)["tasks"]:
        assert (t["stopCode"], t["stoppedReason"], t["desiredStatus"]) == (
            "UserInitiated",
            "done here",
            "STOPPED",
        )
        assert t["containers"][0]["exitCode"] in (143, 137) and t["stoppedAt"] >= t["startedAt"]
    assert labelled(cluster) == []


def _get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except OSError:
        return ""


def test_a_missing_image_stops_the_task_with_cannot_pull_container_error(ecs: Any, cluster: str) -> None:
    td = register(ecs, "tasks-missing", {"name": "x", "image": "no-such-image-anywhere:1", "memory": 32})
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "STOPPED")
    assert t["stopCode"] == "TaskFailedToStart"
    assert t["stoppedReason"].startswith("CannotPullContainerError:")
    assert labelled(cluster, all_=True) == [] or all(
        inspect(c)["Config"]["Labels"]["dockyard.task-arn"] != arn for c in labelled(cluster, all_=True)
    )


def test_limits_ports_and_health_checks_reach_docker(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "tasks-bridge",
        {
            "name": "web",
            "image": echo_image(),
            "cpu": 128,
            "memory": 64,
            "memoryReservation": 32,
            "portMappings": [{"containerPort": 8080, "hostPort": 0}],
            "stopTimeout": 2,
            "environment": [{"name": "VERSION", "value": "bridge"}],
            "healthCheck": {
                "command": ["CMD-SHELL", "wget -q -O - http://127.0.0.1:8080/ || exit 1"],
                "interval": 5,
                "timeout": 2,
                "retries": 2,
            },
        },
    )
    arn = run(ecs, cluster, td)
    t = wait_for(lambda: (x := describe(ecs, cluster, arn))["healthStatus"] == "HEALTHY" and x, 60, "HEALTHY")
    (c,) = t["containers"]
    assert c["healthStatus"] == "HEALTHY"
    info = inspect(c["runtimeId"])
    assert info["HostConfig"]["CpuShares"] == 128
    assert info["HostConfig"]["Memory"] == 64 * 1024 * 1024
    assert info["HostConfig"]["MemoryReservation"] == 32 * 1024 * 1024
    assert info["Config"]["Healthcheck"]["Interval"] == 5_000_000_000
    (binding,) = [b for b in c["networkBindings"] if b["bindIP"] == "0.0.0.0"]
    assert binding["containerPort"] == 8080 and binding["hostPort"] > 0
    assert _get(f"http://127.0.0.1:{binding['hostPort']}/").strip() == "bridge"
    ecs.stop_task(cluster=cluster, task=arn)
    until_status(ecs, cluster, arn, "STOPPED")


def test_an_essential_container_exit_stops_the_task_with_its_exit_code(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "tasks-exit",
        {"name": "job", "image": busybox_image(), "memory": 32, "command": ["sh", "-c", "sleep 1; exit 3"]},
    )
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "STOPPED")
    assert t["stopCode"] == "EssentialContainerExited"
    assert t["containers"][0]["exitCode"] == 3 and t["containers"][0]["lastStatus"] == "STOPPED"


def test_task_scoped_volumes_are_shared_by_its_containers_and_removed_when_it_stops(
    ecs: Any, cluster: str
) -> None:
    shared = f"dy-test-shared-{uuid.uuid4().hex[:8]}"
    mounts = [
        {"sourceVolume": "scratch", "containerPath": "/scratch"},
        {"sourceVolume": "cache", "containerPath": "/cache"},
        {"sourceVolume": shared, "containerPath": "/keep"},
    ]
    writer = "echo hi > /scratch/f; echo hi > /cache/f; echo hi > /keep/f; sleep 600"
    td = register(
        ecs,
        "tasks-volumes",
        {
            "name": "w",
            "image": busybox_image(),
            "memory": 32,
            "command": ["sh", "-c", writer],
            "mountPoints": mounts,
            "stopTimeout": 1,
        },
        {
            "name": "r",
            "image": busybox_image(),
            "memory": 32,
            "stopTimeout": 1,
            "mountPoints": mounts[:1],
            "command": ["sh", "-c", "until test -f /scratch/f; do sleep 0.2; done; echo seen; sleep 600"],
        },
        volumes=[
            {"name": "scratch"},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
            {"name": shared, "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True}},
        ],
    )
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "RUNNING")
    task_id = arn.rsplit("/", 1)[1]
    own = [f"dy-{task_id}-scratch", f"dy-{task_id}-cache"]

    def volumes() -> set[str]:
        out = subprocess.run(["docker", "volume", "ls", "-q"], capture_output=True, text=True, check=True)
        return set(out.stdout.split())

    try:
        assert set(own) | {shared} <= volumes()
        reader = next(c["runtimeId"] for c in t["containers"] if c["name"] == "r")
        wait_for(
            lambda: (
                "seen" in subprocess.run(["docker", "logs", reader], capture_output=True, text=True).stdout
            ),
            30,
            "the second container to see the first one's file",
        )
        ecs.stop_task(cluster=cluster, task=arn)
        until_status(ecs, cluster, arn, "STOPPED")
        left = volumes()
        assert not set(own) & left and shared in left
    finally:
        subprocess.run(["docker", "volume", "rm", "-f", shared], capture_output=True)


def test_logs_of_a_stopped_task_whose_containers_went_with_its_volumes_stay_readable(
    dockyard: Dockyard, ecs: Any, cluster: str
) -> None:
    td = register(
        ecs,
        "tasks-volume-logs",
        {
            "name": "w",
            "image": busybox_image(),
            "memory": 32,
            # stderr first, well apart: Docker copies stdout and stderr separately, so lines
            # written to both at once may be logged in either order
            "command": ["sh", "-c", "echo to stderr >&2; sleep 1; for i in 1 2 3; do echo line $i; done; "
                        "sleep 600"],
            "mountPoints": [{"sourceVolume": "scratch", "containerPath": "/scratch"}],
            "stopTimeout": 1,
        },
        volumes=[{"name": "scratch"}],
    )
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "RUNNING")
    cid = t["containers"][0]["runtimeId"]
    task_id = arn.rsplit("/", 1)[1]
    cli = [str(BIN / "dockyard"), "logs", task_id, "--data-dir", str(dockyard.data_dir),
           "--endpoint-url", dockyard.control_url]

    def logs(*more: str) -> str:
        proc = subprocess.run([*cli, *more], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    wait_for(lambda: "line 3" in logs(), 10, "the task's output")
    ecs.stop_task(cluster=cluster, task=arn)
    until_status(ecs, cluster, arn, "STOPPED")
    gone = subprocess.run(["docker", "inspect", cid], capture_output=True, text=True)
    assert gone.returncode != 0  # removed with the task's volume
    assert logs().splitlines() == ["to stderr", "line 1", "line 2", "line 3"]
    assert logs("--tail", "2").splitlines() == ["line 2", "line 3"]


def test_stop_sends_sigterm_then_sigkill_after_stop_timeout(ecs: Any, cluster: str) -> None:
    # PID 1 with no handler ignores SIGTERM: only the SIGKILL after stopTimeout ends it.
    td = register(
        ecs,
        "tasks-stubborn",
        {"name": "s", "image": busybox_image(), "memory": 32, "command": ["sleep", "600"], "stopTimeout": 2},
    )
    arn = run(ecs, cluster, td)
    until_status(ecs, cluster, arn, "RUNNING")
    asked = time.monotonic()
    ecs.stop_task(cluster=cluster, task=arn, reason="enough")
    t = until_status(ecs, cluster, arn, "STOPPED")
    assert time.monotonic() - asked >= 2
    assert t["containers"][0]["exitCode"] == 137


def test_a_container_killed_behind_dockyards_back_stops_its_task_at_once(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "tasks-kill",
        {"name": "s", "image": busybox_image(), "memory": 32, "command": ["sleep", "600"], "stopTimeout": 1},
    )
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "RUNNING")
    subprocess.run(["docker", "kill", t["containers"][0]["runtimeId"]], check=True, capture_output=True)
    # Services replace such a task within 3 s; the task itself must be STOPPED well before.
    t = until_status(ecs, cluster, arn, "STOPPED", timeout=2)
    assert t["stopCode"] == "EssentialContainerExited" and t["containers"][0]["exitCode"] == 137


def test_depends_on_starts_a_container_after_its_dependency_succeeded(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "tasks-order",
        {
            "name": "app",
            "image": busybox_image(),
            "memory": 32,
            "command": ["sleep", "600"],
            "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
            "stopTimeout": 1,
        },
        {
            "name": "init",
            "image": busybox_image(),
            "memory": 32,
            "essential": False,
            "command": ["sh", "-c", "sleep 1"],
        },
    )
    arn = run(ecs, cluster, td)
    t = until_status(ecs, cluster, arn, "RUNNING")
    by_name = {c["name"]: c for c in t["containers"]}
    init, app = inspect(by_name["init"]["runtimeId"]), inspect(by_name["app"]["runtimeId"])
    assert init["State"]["ExitCode"] == 0
    assert app["State"]["StartedAt"] >= init["State"]["FinishedAt"]
    ecs.stop_task(cluster=cluster, task=arn)
    until_status(ecs, cluster, arn, "STOPPED")


def test_the_local_engine_is_a_container_instance_with_capacity_and_attributes(
    dockyard: Dockyard, ecs: Any, cluster: str
) -> None:
    arns = wait_for(
        lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"], 5, "instance"
    )
    (inst,) = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    info = json.loads(
        subprocess.run(
            ["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True, check=True
        ).stdout
    )
    registered = {r["name"]: r for r in inst["registeredResources"]}
    assert registered["CPU"]["integerValue"] == info["NCPU"] * 1024
    assert registered["MEMORY"]["integerValue"] == info["MemTotal"] // (1024 * 1024)
    attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
    assert attrs["ecs.os-type"] == "linux" and attrs["ecs.cpu-architecture"] == "x86_64"
    assert "ecs.capability.task-eni" in attrs and inst["agentConnected"] and inst["status"] == "ACTIVE"
    dockyard.aws(
        "ecs",
        "put-attributes",
        "--cluster",
        cluster,
        "--attributes",
        f"name=stack,value=blue,targetType=container-instance,targetId={arns[0]}",
    )
    listed = dockyard.aws(
        "ecs",
        "list-attributes",
        "--cluster",
        cluster,
        "--target-type",
        "container-instance",
        "--attribute-name",
        "stack",
    )["attributes"]
    assert listed == [
        {"name": "stack", "value": "blue", "targetType": "container-instance", "targetId": arns[0]}
    ]
    assert (
        ecs.list_container_instances(cluster=cluster, filter="attribute:stack == blue")[
            "containerInstanceArns"
        ]
        == arns
    )
    ecs.delete_attributes(cluster=cluster, attributes=[{"name": "stack", "targetId": arns[0]}])
    assert (
        ecs.list_attributes(cluster=cluster, targetType="container-instance", attributeName="stack")[
            "attributes"
        ]
        == []
    )
    td = register(
        ecs,
        "tasks-reserve",
        {
            "name": "s",
            "image": busybox_image(),
            "memory": 100,
            "cpu": 300,
            "command": ["sleep", "600"],
            "stopTimeout": 1,
        },
    )
    arn = run(ecs, cluster, td)
    inst2 = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"][
        0
    ]
    remaining = {r["name"]: r for r in inst2["remainingResources"]}
    before = {r["name"]: r for r in inst["remainingResources"]}
    assert remaining["CPU"]["integerValue"] == before["CPU"]["integerValue"] - 300
    assert remaining["MEMORY"]["integerValue"] == before["MEMORY"]["integerValue"] - 100
    ecs.stop_task(cluster=cluster, task=arn)
    until_status(ecs, cluster, arn, "STOPPED")


def test_instances_advertise_what_the_engine_supports_and_tasks_needing_more_fail_placement(
    dockyard: Dockyard, ecs: Any, cluster: str
) -> None:
    arns = wait_for(
        lambda: ecs.list_container_instances(cluster=cluster)["containerInstanceArns"], 5, "instance"
    )
    (inst,) = ecs.describe_container_instances(cluster=cluster, containerInstances=arns)["containerInstances"]
    names = {a["name"] for a in inst["attributes"]}
    engine = json.loads(
        subprocess.run(
            ["docker", "version", "--format", "{{json .Server}}"], capture_output=True, text=True, check=True
        ).stdout
    )
    top = int(engine["ApiVersion"].split(".")[1])
    api = "com.amazonaws.ecs.capability.docker-remote-api."
    assert {f"{api}1.{n}" for n in range(17, top + 1)} <= names and f"{api}1.{top + 1}" not in names
    drivers = json.loads(
        subprocess.run(
            ["docker", "info", "--format", "{{json .Plugins.Log}}"], capture_output=True, text=True,
            check=True,
        ).stdout
    )
    prefix = "com.amazonaws.ecs.capability.logging-driver."
    logging = {n.removeprefix(prefix) for n in names if n.startswith(prefix)}
    assert logging == {*drivers, "none", "awslogs"}

    # awsfirelens is ECS's FireLens router, not a Docker log driver: no engine has it.
    dockyard.aws(
        "ecs", "register-task-definition", "--family", "tasks-firelens", "--container-definitions",
        json.dumps([{"name": "app", "image": busybox_image(), "memory": 32, "command": ["true"],
                     "logConfiguration": {"logDriver": "awsfirelens"}}]),
    )
    described = ecs.describe_task_definition(taskDefinition="tasks-firelens")["taskDefinition"]
    needed = "com.amazonaws.ecs.capability.logging-driver.awsfirelens"
    assert {"name": needed} in described["requiresAttributes"]
    out = dockyard.aws("ecs", "run-task", "--cluster", cluster, "--task-definition", "tasks-firelens")
    assert out["tasks"] == []
    [failure] = out["failures"]
    assert failure["reason"] == "ATTRIBUTE" and failure["arn"] == arns[0]
    assert failure["detail"].endswith(f"is missing an attribute required by your task ({needed}).")
    assert set(failure) == {"arn", "reason", "detail"}
    assert ecs.list_tasks(cluster=cluster, family="tasks-firelens")["taskArns"] == []
    # A definition needing only what the engine has places (a health check needs API 1.24).
    td = register(
        ecs, "tasks-capable",
        {"name": "app", "image": busybox_image(), "memory": 32, "command": ["sleep", "600"], "stopTimeout": 1,
         "logConfiguration": {"logDriver": "json-file"},
         "healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5}},
    )
    arn = run(ecs, cluster, td)
    ecs.stop_task(cluster=cluster, task=arn)
    until_status(ecs, cluster, arn, "STOPPED")


def test_tasks_are_listed_and_filtered_and_stopped_ones_stay_describable(ecs: Any, cluster: str) -> None:
    td = register(
        ecs,
        "tasks-list",
        {"name": "s", "image": busybox_image(), "memory": 16, "command": ["sleep", "600"], "stopTimeout": 1},
    )
    a = run(ecs, cluster, td, startedBy="me", group="batch")
    b = run(ecs, cluster, td)
    assert ecs.list_tasks(cluster=cluster, startedBy="me")["taskArns"] == [a]
    assert set(ecs.list_tasks(cluster=cluster, family="tasks-list")["taskArns"]) == {a, b}
    page = ecs.list_tasks(cluster=cluster, family="tasks-list", maxResults=1)
    assert len(page["taskArns"]) == 1 and page["nextToken"]
    assert describe(ecs, cluster, a)["group"] == "batch"
    ecs.stop_task(cluster=cluster, task=a.rsplit("/", 1)[1])
    until_status(ecs, cluster, a, "STOPPED")
    assert ecs.list_tasks(cluster=cluster, family="tasks-list")["taskArns"] == [b]
    assert a in ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"]
    ecs.stop_task(cluster=cluster, task=b)
    until_status(ecs, cluster, b, "STOPPED")


def test_bad_input_gets_aws_errors(ecs: Any, cluster: str) -> None:
    td = register(ecs, "tasks-bad", {"name": "s", "image": busybox_image(), "memory": 16})
    cases = [
        (lambda: ecs.run_task(cluster="no-such-cluster", taskDefinition=td), "ClusterNotFoundException"),
        (lambda: ecs.run_task(cluster=cluster, taskDefinition="no-such-family"), "ClientException"),
        (lambda: ecs.run_task(cluster=cluster, taskDefinition=td, count=11), "InvalidParameterException"),
        (
            lambda: ecs.run_task(cluster=cluster, taskDefinition=td, launchType="FARGATE"),
            "InvalidParameterException",
        ),
        (
            lambda: ecs.run_task(
                cluster=cluster, taskDefinition=td, overrides={"containerOverrides": [{"name": "nope"}]}
            ),
            "InvalidParameterException",
        ),
        (
            lambda: ecs.run_task(
                cluster=cluster,
                taskDefinition=td,
                placementConstraints=[{"type": "memberOf", "expression": "attribute:x =="}],
            ),
            "InvalidParameterException",
        ),
        (lambda: ecs.stop_task(cluster=cluster, task="0" * 32), "InvalidParameterException"),
        (
            lambda: ecs.describe_container_instances(cluster=cluster, containerInstances=[]),
            "InvalidParameterException",
        ),
        (
            lambda: ecs.put_attributes(cluster=cluster, attributes=[{"name": "a", "targetId": "nope"}]),
            "TargetNotFoundException",
        ),
        (
            lambda: ecs.put_attributes(
                cluster=cluster, attributes=[{"name": "ecs.os-type", "targetId": "x"}]
            ),
            "InvalidParameterException",
        ),
    ]
    for call, code in cases:
        with pytest.raises(ClientError) as e:
            call()
        assert e.value.response["Error"]["Code"] == code, e.value.response
    missing = ecs.describe_tasks(cluster=cluster, tasks=["f" * 32])
    assert missing["failures"][0]["reason"] == "MISSING" and missing["tasks"] == []
    huge = register(ecs, "tasks-huge", {"name": "s", "image": busybox_image(), "memory": 10**7})
    out = ecs.run_task(cluster=cluster, taskDefinition=huge)
    assert out["tasks"] == [] and out["failures"][0]["reason"] == "RESOURCE:MEMORY"


def test_service_changes_stream_as_server_sent_events(dockyard: Dockyard, ecs: Any, cluster: str) -> None:
    import threading

    from dockyard.client import Client
    from runner.tasks_cli import follow_events

    key, secret = dockyard.credentials
    seen: list[dict[str, Any]] = []
    steady = threading.Event()

    def follow() -> None:
        for e in follow_events(Client(dockyard.control_url, key, secret), None, cluster, timeout=60):
            seen.append(e)
            if e["type"] == "service" and e.get("runningCount") == 1:
                steady.set()
                return

    threading.Thread(target=follow, daemon=True).start()
    time.sleep(0.5)  # the stream starts "now": let it connect first
    register(
        ecs,
        "tasks-svc",
        {"name": "s", "image": busybox_image(), "memory": 16, "command": ["sleep", "600"], "stopTimeout": 1},
    )
    ecs.create_service(cluster=cluster, serviceName="evented", taskDefinition="tasks-svc", desiredCount=1)
    try:
        assert steady.wait(60)
        services = [e for e in seen if e["type"] == "service"]
        assert services[0]["serviceName"] == "evented" and services[0]["desiredCount"] == 1
        assert services[-1]["deployments"][0]["status"] == "PRIMARY"
        assert any(e["type"] == "task" and e.get("group") == "service:evented" for e in seen)
    finally:
        ecs.delete_service(cluster=cluster, service="evented", force=True)
        wait_for(lambda: not ecs.list_tasks(cluster=cluster, serviceName="evented")["taskArns"], 60, "drain")


@pytest.fixture(scope="module")
def host_cluster(dockyard: Dockyard) -> Iterator[str]:
    """A cluster where the session server allows host access (``host_access_clusters``)."""
    name = f"host-access-{uuid.uuid4().hex[:8]}"
    dockyard.aws("ecs", "create-cluster", "--cluster-name", name)
    try:
        yield name
    finally:
        dockyard.aws("ecs", "delete-cluster", "--cluster", name, check=False)


def test_host_access_is_refused_outside_the_clusters_that_allow_it(
    dockyard: Dockyard, cluster: str, tmp_path: Path
) -> None:
    image = busybox_image()
    cases = {
        "networkMode": {"networkMode": "host"},
        "pidMode": {"pidMode": "host"},
        "containerDefinitions[c].privileged": {"privileged": True},
        "volumes[root].host.sourcePath": {"volumes": [{"name": "root", "host": {"sourcePath": "/"}}]},
        "volumes[sock].host.sourcePath": {
            "volumes": [{"name": "sock", "host": {"sourcePath": "/var/run/docker.sock"}}]
        },
    }
    for field, extra in cases.items():
        container = {"name": "c", "image": image, "memory": 16, "command": ["true"]}
        if "privileged" in extra:
            container["privileged"] = True
        body = {"family": "tasks-trust", "containerDefinitions": [container],
                **{k: v for k, v in extra.items() if k != "privileged"}}
        (tmp_path / "td.json").write_text(json.dumps(body))
        arn = dockyard.aws("ecs", "register-task-definition", "--cli-input-json",
                           f"file://{tmp_path / 'td.json'}")["taskDefinition"]["taskDefinitionArn"]
        proc = dockyard.aws("ecs", "run-task", "--cluster", cluster, "--task-definition", arn, check=False)
        assert proc.returncode != 0
        assert "ClientException" in proc.stderr and f"{field} is refused" in proc.stderr, proc.stderr
        assert f"cluster {cluster}" in proc.stderr
    listed = dockyard.aws("ecs", "list-tasks", "--cluster", cluster, "--family", "tasks-trust")
    assert listed["taskArns"] == []


def test_host_and_none_network_modes_reach_docker(ecs: Any, host_cluster: str) -> None:
    cluster = host_cluster
    for mode in ("host", "none"):
        td = register(
            ecs,
            f"tasks-net-{mode}",
            {
                "name": "s",
                "image": busybox_image(),
                "memory": 16,
                "command": ["sleep", "600"],
                "stopTimeout": 1,
            },
            networkMode=mode,
        )
        arn = run(ecs, cluster, td)
        t = until_status(ecs, cluster, arn, "RUNNING")
        assert inspect(t["containers"][0]["runtimeId"])["HostConfig"]["NetworkMode"] == mode
        ecs.stop_task(cluster=cluster, task=arn)
        until_status(ecs, cluster, arn, "STOPPED")
