"""A ``dockerd`` restarted with ``--live-restore``: its tasks are found again, not replaced.

An engine of this module's own (``tests/support/dockerd.py``, number 5, started with
``--live-restore``) is the only container instance of a Dockyard left off the local engine
(``DOCKYARD_DOCKER_HOST=none``); the main engine is never restarted. Containers keep running
while that dockerd stops and starts again, so the control plane must adopt them as they are:
same task ARNs and container ids, still RUNNING, nothing started twice, and still watched
(a container killed after the restart ends its task and its service replaces it).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_tasks import register, until_status, wait_for
from tests.integration.test_ecs_tasks_hosts import _agent
from tests.support.dockerd import ExtraDockerd, extra_dockerds
from tests.support.images import busybox_image
from tests.support.server import Dockyard

CLUSTER = "live"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[ExtraDockerd]:
    base = tmp_path_factory.mktemp("live-restore")
    with extra_dockerds(base, 1, images=(busybox_image(),), first=5, live_restore=True) as (found,):
        yield found


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, engine: ExtraDockerd) -> Iterator[Dockyard]:
    d = Dockyard(tmp_path_factory.mktemp("live") / "data", env={"DOCKYARD_DOCKER_HOST": "none"}).start()
    agent = None
    try:
        d.aws("ecs", "create-cluster", "--cluster-name", CLUSTER)
        agent = _agent(d, engine, CLUSTER)
        yield d
    finally:
        ecs = d.client("ecs")
        for arn in ecs.list_services(cluster=CLUSTER)["serviceArns"]:
            ecs.delete_service(cluster=CLUSTER, service=arn, force=True)
        for arn in ecs.list_tasks(cluster=CLUSTER)["taskArns"]:
            ecs.stop_task(cluster=CLUSTER, task=arn)
        wait_for(lambda: not ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"], 60, "stop")
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        d.stop()


def _sleeper(ecs: Any, family: str, **extra: Any) -> str:
    c = {"name": "s", "image": busybox_image(), "memory": 16, "command": ["sleep", "600"], "stopTimeout": 1}
    return register(ecs, family, c, **extra)


def _running(engine: ExtraDockerd) -> set[str]:
    return set(engine.docker("ps", "-q", "--no-trunc").stdout.split())


def _tasks(ecs: Any, status: str = "RUNNING") -> dict[str, dict[str, Any]]:
    arns = ecs.list_tasks(cluster=CLUSTER, desiredStatus=status)["taskArns"]
    found = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return {t["taskArn"]: t for t in found}


def test_after_a_live_restore_restart_the_same_containers_are_adopted_and_still_watched(
    server: Dockyard, engine: ExtraDockerd
) -> None:
    ecs = server.client("ecs")
    bridge = _sleeper(ecs, "live-bridge")
    awsvpc = _sleeper(ecs, "live-awsvpc", networkMode="awsvpc")
    ecs.create_service(cluster=CLUSTER, serviceName="web", taskDefinition=bridge, desiredCount=2)
    alone = ecs.run_task(cluster=CLUSTER, taskDefinition=awsvpc)["tasks"][0]["taskArn"]
    wait_for(
        lambda: len(ts := _tasks(ecs)) == 3 and all(t["lastStatus"] == "RUNNING" for t in ts.values()),
        60,
        "three RUNNING tasks",
    )
    before = {arn: t["containers"][0]["runtimeId"] for arn, t in _tasks(ecs).items()}
    containers = _running(engine)  # the three task containers and the awsvpc task's pause container
    assert set(before.values()) < containers and len(containers) == 4

    engine.restart(down_for=3)  # long enough for every reconnection attempt to fail first
    assert _running(engine) == containers  # live-restore: nothing stopped

    # The control plane drives the restarted engine again: a new task starts there ...
    probe = ecs.run_task(cluster=CLUSTER, taskDefinition=awsvpc)["tasks"][0]["taskArn"]
    until_status(ecs, CLUSTER, probe, "RUNNING")
    # ... and what ran before is adopted as it was: same tasks, same containers, none replaced.
    after = _tasks(ecs)
    assert set(after) == {*before, probe}
    for arn, cid in before.items():
        assert after[arn]["lastStatus"] == "RUNNING" and after[arn]["containers"][0]["runtimeId"] == cid
    assert _tasks(ecs, "STOPPED") == {}
    assert containers < _running(engine) and len(_running(engine)) == 6  # + the probe and its pause
    svc = ecs.describe_services(cluster=CLUSTER, services=["web"])["services"][0]
    assert (svc["runningCount"], svc["desiredCount"]) == (2, 2)
    assert sum("has started 2 tasks" in e["message"] for e in svc["events"]) == 1
    assert not any("has started 1 tasks" in e["message"] for e in svc["events"])

    # Still watched: a service task's container killed now ends its task, and it is replaced.
    victim = next(arn for arn in before if arn != alone)
    subprocess.run(["docker", "-H", engine.url, "kill", before[victim]], check=True, capture_output=True)
    stopped = until_status(ecs, CLUSTER, victim, "STOPPED")
    assert stopped["stopCode"] == "EssentialContainerExited"
    wait_for(
        lambda: len([a for a, t in _tasks(ecs).items() if t.get("group") == "service:web"
                     and t["lastStatus"] == "RUNNING" and a != victim]) == 2,
        60,
        "the service to replace the killed task",
    )
    for arn in (alone, probe):
        ecs.stop_task(cluster=CLUSTER, task=arn)
        until_status(ecs, CLUSTER, arn, "STOPPED")
    # Nothing failed on the way: the engine's event stream was followed again after the outage
    # (a connection refused while dockerd was down once killed its thread for good).
    log = (server.data_dir.parent / f"{server.data_dir.name}.log").read_text()
    assert "Traceback" not in log and "docker events failed" not in log
