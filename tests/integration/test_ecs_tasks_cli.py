"""``dockyard logs --follow`` and ``dockyard exec`` against real tasks (busybox, built locally)."""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_tasks import labelled, register, run, until_status, wait_for
from tests.support.images import busybox_image
from tests.support.server import BIN, Dockyard


@pytest.fixture(scope="module")
def cluster(dockyard: Dockyard) -> Iterator[str]:
    name = f"taskcli-{uuid.uuid4().hex[:8]}"
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
def ecs(dockyard: Dockyard) -> Any:
    return dockyard.client("ecs")


def _args(server: Dockyard, cluster: str) -> list[str]:
    return ["--data-dir", str(server.data_dir), "--endpoint-url", server.control_url, "--cluster", cluster]


def _task(ecs: Any, cluster: str, family: str, command: str) -> tuple[str, str]:
    """A running busybox task (one container, ``app``) running ``sh -c command``; (arn, id)."""
    td = register(ecs, family, {
        "name": "app", "image": busybox_image(), "memory": 16, "command": ["sh", "-c", command],
        "stopTimeout": 1,
    })
    arn = run(ecs, cluster, td)
    until_status(ecs, cluster, arn, "RUNNING")
    return arn, arn.rsplit("/", 1)[1]


def _container(arn: str) -> str:
    out = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=dockyard.task-arn={arn}",
         "--filter", "label=dockyard.container-name=app"], capture_output=True, text=True, check=True,
    )
    (cid,) = out.stdout.split()
    return cid


def test_logs_follow_prints_a_line_written_after_it_started_and_ends_when_the_task_stops(
    dockyard: Dockyard, cluster: str, ecs: Any
) -> None:
    arn, task_id = _task(ecs, cluster, "follow", "echo before; sleep 600")
    follow = subprocess.Popen(
        [str(BIN / "dockyard"), "logs", task_id, "--follow", "--interval", "0.2", *_args(dockyard, cluster)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "before\n" in lines, 30, "the first line")
        time.sleep(0.5)  # a few polls with nothing new
        cid = _container(arn)
        subprocess.run(["docker", "exec", cid, "sh", "-c", "echo after > /proc/1/fd/1"], check=True)
        wait_for(lambda: "after\n" in lines, 30, "the line written after --follow started")
        assert lines == ["before\n", "after\n"]  # each line once
        ecs.stop_task(cluster=cluster, task=arn)
        assert follow.wait(60) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
