"""ECS's guard rails on clusters, services and task definitions, with the real aws CLI and boto3:
DescribeClusters counts what a cluster holds, DeleteCluster refuses a cluster that still holds
services, tasks or registered hosts, a deleted service is DRAINING until its tasks have stopped,
and RunTask/StartTask refuse a revision that is no longer ACTIVE.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_services import delete_cluster, drain
from tests.integration.test_ecs_tasks import describe, register, run, until_status, wait_for
from tests.support.images import busybox_image
from tests.support.server import BIN, Dockyard


@pytest.fixture
def cluster(dockyard: Dockyard) -> Iterator[str]:
    """A cluster of the test's own; whatever it still holds is stopped and removed afterwards."""
    name = f"guard-{uuid.uuid4().hex[:8]}"
    dockyard.aws("ecs", "create-cluster", "--cluster-name", name)
    try:
        yield name
    finally:
        ecs = dockyard.client("ecs")
        if name in {c["clusterName"] for c in ecs.describe_clusters(clusters=[name])["clusters"]
                    if c["status"] == "ACTIVE"}:
            for arn in ecs.list_tasks(cluster=name)["taskArns"]:
                ecs.stop_task(cluster=name, task=arn)
            drain(ecs, name)


def sleeper(ecs: Any, family: str, stop_timeout: int = 2) -> str:
    """busybox sleeping (it ignores SIGTERM, so a stop takes ``stop_timeout`` seconds)."""
    return register(
        ecs, family,
        {"name": "main", "image": busybox_image(), "memory": 32, "command": ["sleep", "3600"],
         "stopTimeout": stop_timeout},
    )


def refused(dockyard: Dockyard, *args: str) -> str:
    """The error code an aws CLI command fails with."""
    proc = dockyard.aws(*args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr.split("(", 1)[1].split(")", 1)[0] if "(" in proc.stderr else proc.stderr


def cluster_of(dockyard: Dockyard, name: str) -> dict[str, Any]:
    [c] = dockyard.aws("ecs", "describe-clusters", "--clusters", name, "--include", "STATISTICS")["clusters"]
    return c


def test_describe_clusters_counts_tasks_services_and_instances_with_statistics(dockyard, cluster):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, f"{cluster}-count")
    task = run(ecs, cluster, arn)
    ecs.create_service(cluster=cluster, serviceName="svc", taskDefinition=arn, desiredCount=1)
    until_status(ecs, cluster, task, "RUNNING")
    wait_for(lambda: cluster_of(dockyard, cluster)["runningTasksCount"] == 2, 60, "the service's task")

    c = cluster_of(dockyard, cluster)
    assert c["clusterArn"] in dockyard.aws("ecs", "list-clusters")["clusterArns"]
    assert (c["runningTasksCount"], c["pendingTasksCount"]) == (2, 0)
    assert (c["activeServicesCount"], c["registeredContainerInstancesCount"]) == (1, 1)  # the local engine
    assert c["statistics"] == [
        {"name": "runningEC2TasksCount", "value": "2"},
        {"name": "runningFargateTasksCount", "value": "0"},
        {"name": "pendingEC2TasksCount", "value": "0"},
        {"name": "pendingFargateTasksCount", "value": "0"},
        {"name": "activeEC2ServiceCount", "value": "1"},
        {"name": "activeFargateServiceCount", "value": "0"},
        {"name": "drainingEC2ServiceCount", "value": "0"},
        {"name": "drainingFargateServiceCount", "value": "0"},
    ]
    [plain] = dockyard.aws("ecs", "describe-clusters", "--clusters", cluster)["clusters"]
    assert plain["statistics"] == [] and plain["runningTasksCount"] == 2


def test_delete_cluster_is_refused_while_it_holds_services_then_tasks(dockyard, cluster):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, f"{cluster}-del", stop_timeout=10)
    task = run(ecs, cluster, arn)
    ecs.create_service(cluster=cluster, serviceName="svc", taskDefinition=arn, desiredCount=1)
    until_status(ecs, cluster, task, "RUNNING")
    delete = ("ecs", "delete-cluster", "--cluster", cluster)
    assert refused(dockyard, *delete) == "ClusterContainsServicesException"

    # A deleted service is DRAINING until its task has stopped (10 s of SIGTERM grace), then INACTIVE.
    listed = wait_for(lambda: ecs.list_tasks(cluster=cluster, serviceName="svc")["taskArns"], 60, "svc task")
    svc_task = listed[0]
    until_status(ecs, cluster, svc_task, "RUNNING")
    deleted = dockyard.aws("ecs", "delete-service", "--cluster", cluster, "--service", "svc", "--force")
    assert deleted["service"]["status"] == "DRAINING"
    wait_for(lambda: describe(ecs, cluster, svc_task)["desiredStatus"] == "STOPPED", 30, "the stop request")
    with pytest.raises(ecs.exceptions.ClusterContainsServicesException):
        ecs.delete_cluster(cluster=cluster)  # well within the task's 10 s of grace
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 120  # the task's 10 s of grace, with room for a loaded machine
    while not seen or seen[-1][0] != "INACTIVE":
        status = ecs.describe_services(cluster=cluster, services=["svc"])["services"][0]["status"]
        last = describe(ecs, cluster, svc_task)["lastStatus"]  # read after: STOPPED never goes back
        seen.append((status, last))
        assert status == "DRAINING" or last == "STOPPED", seen[:3]
        assert time.monotonic() < deadline, seen[-3:]
    assert any(s == "DRAINING" and last != "STOPPED" for s, last in seen), seen[:3]

    # The task RunTask started still runs: refused until it has stopped.
    assert refused(dockyard, *delete) == "ClusterContainsTasksException"
    ecs.stop_task(cluster=cluster, task=task)
    until_status(ecs, cluster, task, "STOPPED")
    out = dockyard.aws(*delete)["cluster"]
    assert (out["status"], out["registeredContainerInstancesCount"]) == ("INACTIVE", 0)
    assert out["clusterArn"] not in dockyard.aws("ecs", "list-clusters")["clusterArns"]


def test_delete_cluster_is_refused_while_a_dockyard_agent_host_is_registered(dockyard, cluster):
    # The local engine again, under another URL: for the control plane a host of its own.
    agent = subprocess.run(
        [str(BIN / "dockyard"), "agent", "--data-dir", str(dockyard.data_dir), "--control-plane",
         dockyard.control_url, "--docker-host", "unix:///run/docker.sock", "--cluster", cluster, "--once"],
        capture_output=True, text=True, timeout=60,
    )
    assert "registered as arn:aws:ecs:" in agent.stdout, agent.stderr
    host = agent.stdout.split("registered as ", 1)[1].split()[0]
    assert cluster_of(dockyard, cluster)["registeredContainerInstancesCount"] == 2
    assert refused(dockyard, "ecs", "delete-cluster", "--cluster", cluster) == (
        "ClusterContainsContainerInstancesException")
    dockyard.aws("ecs", "deregister-container-instance", "--cluster", cluster, "--container-instance", host)
    assert cluster_of(dockyard, cluster)["registeredContainerInstancesCount"] == 1  # the local engine
    assert dockyard.aws("ecs", "delete-cluster", "--cluster", cluster)["cluster"]["status"] == "INACTIVE"


def test_run_task_and_start_task_refuse_an_inactive_or_deleted_revision(dockyard, cluster):
    ecs = dockyard.client("ecs")
    arn = sleeper(ecs, f"{cluster}-td")
    [instance] = ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    dockyard.aws("ecs", "deregister-task-definition", "--task-definition", arn)
    for status in ("INACTIVE", "DELETE_IN_PROGRESS"):
        assert ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]["status"] == status
        run_task = dockyard.aws(
            "ecs", "run-task", "--cluster", cluster, "--task-definition", arn, check=False
        )
        start_task = dockyard.aws(
            "ecs", "start-task", "--cluster", cluster, "--task-definition", arn,
            "--container-instances", instance, check=False,
        )
        for proc in (run_task, start_task):
            assert proc.returncode != 0, proc.stdout
            assert "(ClientException)" in proc.stderr and "TaskDefinition is inactive" in proc.stderr
        dockyard.aws("ecs", "delete-task-definitions", "--task-definitions", arn)
    assert ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"] == []
    assert ecs.list_tasks(cluster=cluster, desiredStatus="STOPPED")["taskArns"] == []
    delete_cluster(ecs, cluster, timeout=10)
