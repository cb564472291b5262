"""One task's worker on its own (no supervisor) against the fake Docker transport.

A real store holds the task (:func:`runner.data.record_tasks`); :class:`TaskWorker` drives it
on a :class:`Host` over :class:`FakeDocker`: start, an essential container exiting, a stop
request, adoption after a restart of the control plane.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import Config
from dockyard.store import Store
from runner import data, part
from runner.agent.host import Host
from runner.agent.worker import DEFAULT_STOP_TIMEOUT, TaskWorker
from runner.data import Task
from tests.unit.runner.fakedocker import FakeDocker

CONFIG = Config(docker_host="fake://local", registry_port=5000)
REGISTRY = "127.0.0.1:5000"


def _defn(*containers: dict[str, Any]) -> dict[str, Any]:
    return {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:3",
        "family": "f",
        "revision": 3,
        "networkMode": "bridge",
        "containerDefinitions": list(containers)
        or [{"name": "web", "image": "app:1", "memory": 64, "portMappings": [{"containerPort": 80}]}],
    }


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.db", part.MIGRATIONS)
    yield s
    s.close()


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker(registry={f"{REGISTRY}/app:1", f"{REGISTRY}/db:1"})


@pytest.fixture
async def host(fake: FakeDocker) -> AsyncIterator[Host]:
    h = Host("fake://local", fake.connection())
    yield h
    await h.close()


async def _record(store: Store, defn: dict[str, Any]) -> str:
    tid = uuid.uuid4().hex
    new = data.NewTask(tid, "c", "i-1", defn, "EC2", time.time(), group="family:f")
    (task,) = await data.record_tasks(store, lambda: [new])
    assert task.last_status == "PROVISIONING" and task.desired_status == "RUNNING"
    return tid


def _worker(store: Store, host: Host, tid: str) -> TaskWorker:
    return TaskWorker(store, CONFIG, host, tid, registry=REGISTRY, owner="owner-1")


async def _abandon(worker: TaskWorker, run: asyncio.Task[None]) -> None:
    """The control plane stopping: the worker ends by cancellation, touching nothing."""
    worker.abandon()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(run, 10)


async def _until(store: Store, tid: str, check: Callable[[Task], bool], timeout: float = 10) -> Task:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        task = data.task(store, tid)
        if task is not None and check(task):
            return task
        if loop.time() > deadline:
            raise AssertionError(f"the task never reached the state; last: {task}")
        await store.changes(store.revision, [data.TASK_TOPIC], timeout=0.2)


async def test_the_worker_starts_the_task_and_reports_its_container_running(store, fake, host):
    tid = await _record(store, _defn())
    worker = _worker(store, host, tid)
    run = asyncio.create_task(worker.run())
    try:
        task = await _until(store, tid, lambda t: t.last_status == "RUNNING")
        assert fake.pulls == [(f"{REGISTRY}/app:1", None)]
        assert fake.started == [f"dy-{tid}-web"]
        (created,) = fake.created
        assert created.labels["dockyard.owner"] == "owner-1"
        assert created.labels["dockyard.task-arn"].endswith(f":task/c/{tid}")
        web = task.state_of("web")
        assert (web.last_status, web.image) == ("RUNNING", f"{REGISTRY}/app:1")
        assert web.runtime_id == fake.by_name(f"dy-{tid}-web")["Id"]
        assert task.pull_started_at and task.pull_stopped_at and task.started_at and task.connectivity_at
        assert not run.done()  # it watches the running task
    finally:
        await _abandon(worker, run)
    # Abandoning (the control plane stopping) leaves the container running and the task RUNNING.
    assert fake.stopped == [] and data.task(store, tid).last_status == "RUNNING"


async def test_an_essential_container_exiting_stops_the_task_with_its_exit_code(store, fake, host):
    tid = await _record(store, _defn())
    worker = _worker(store, host, tid)
    run = asyncio.create_task(worker.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    fake.exit(f"dy-{tid}-web", 3)
    worker.wake()  # what the supervisor does on the container's Docker event
    await asyncio.wait_for(run, 10)
    task = data.task(store, tid)
    assert (task.last_status, task.desired_status) == ("STOPPED", "STOPPED")
    assert task.stop_code == "EssentialContainerExited"
    assert task.stopped_reason == "Essential container in task exited (web: exit code 3)"
    web = task.state_of("web")
    assert (web.last_status, web.exit_code) == ("STOPPED", 3)
    assert task.stopped_at and task.execution_stopped_at


async def test_a_stop_request_stops_the_containers_dependents_first(store, fake, host):
    defn = _defn(
        {"name": "db", "image": "db:1", "memory": 32},
        {"name": "web", "image": "app:1", "memory": 32, "stopTimeout": 5,
         "dependsOn": [{"containerName": "db", "condition": "START"}]},
    )
    tid = await _record(store, defn)
    worker = _worker(store, host, tid)
    run = asyncio.create_task(worker.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    assert fake.started == [f"dy-{tid}-db", f"dy-{tid}-web"]  # dependsOn: db first
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    worker.wake()
    await asyncio.wait_for(run, 10)
    # web depends on db, so web stops first, with its own stopTimeout.
    assert fake.stopped == [(f"dy-{tid}-web", 5), (f"dy-{tid}-db", DEFAULT_STOP_TIMEOUT)]
    task = data.task(store, tid)
    assert (task.last_status, task.stop_code, task.stopped_reason) == ("STOPPED", "UserInitiated", "bye")
    assert [(c.name, c.last_status, c.exit_code) for c in task.containers] == [
        ("db", "STOPPED", 143),
        ("web", "STOPPED", 143),
    ]


async def test_a_worker_started_again_adopts_the_running_containers(store, fake, host):
    tid = await _record(store, _defn())
    first = _worker(store, host, tid)
    run = asyncio.create_task(first.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    await _abandon(first, run)
    second = _worker(store, host, tid)
    run = asyncio.create_task(second.run())
    await asyncio.sleep(0.2)
    assert len(fake.created) == 1 and fake.started == [f"dy-{tid}-web"]  # nothing created again
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    second.wake()
    await asyncio.wait_for(run, 10)
    assert fake.stopped == [(f"dy-{tid}-web", DEFAULT_STOP_TIMEOUT)]
    assert data.task(store, tid).last_status == "STOPPED"


async def test_a_pull_that_fails_stops_the_task_as_failed_to_start(store, fake, host):
    tid = await _record(store, _defn({"name": "web", "image": "nowhere:1", "memory": 32}))
    await asyncio.wait_for(_worker(store, host, tid).run(), 10)
    task = data.task(store, tid)
    assert (task.last_status, task.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert task.stopped_reason.startswith("CannotPullContainerError:")
    assert fake.created == [] and task.state_of("web").last_status == "STOPPED"


class RecordingShipper:
    """A ``runner.seams.LogShipper`` that records what the worker asks of it."""

    def __init__(self, refuse: str = "") -> None:
        self.refuse = refuse
        self.calls: list[tuple[Any, ...]] = []

    async def prepare(self, log_configuration: Any) -> str:
        self.calls.append(("prepare", log_configuration))
        return self.refuse if log_configuration else ""

    async def follow(self, docker_url: str, cid: str, task_id: str, container: str, lc: Any) -> None:
        self.calls.append(("follow", docker_url, cid, task_id, container, lc))

    async def drained(self, cid: str, timeout: float) -> bool:
        self.calls.append(("drained", cid))
        return True


AWSLOGS = {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/g", "awslogs-create-group": "true"}}


async def test_awslogs_containers_are_prepared_followed_and_drained_before_removal(store, fake, host):
    tid = await _record(store, _defn({"name": "web", "image": "app:1", "memory": 64,
                                      "logConfiguration": AWSLOGS}))
    shipper = RecordingShipper()
    worker = TaskWorker(store, CONFIG, host, tid, registry=REGISTRY, owner="owner-1", logs=shipper)
    run = asyncio.create_task(worker.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    cid = fake.by_name(f"dy-{tid}-web")["Id"]
    assert ("prepare", AWSLOGS) in shipper.calls
    assert ("follow", "fake://local", cid, tid, "web", AWSLOGS) in shipper.calls
    fake.exit(f"dy-{tid}-web", 0)
    worker.wake()
    await asyncio.wait_for(run, 10)
    assert ("drained", cid) in shipper.calls
    assert data.task(store, tid).last_status == "STOPPED"


async def test_a_missing_log_group_fails_the_start_with_ecs_reason(store, fake, host):
    tid = await _record(store, _defn({"name": "web", "image": "app:1", "memory": 64,
                                      "logConfiguration": AWSLOGS}))
    shipper = RecordingShipper(refuse="The specified log group does not exist")
    worker = TaskWorker(store, CONFIG, host, tid, registry=REGISTRY, owner="owner-1", logs=shipper)
    await asyncio.wait_for(worker.run(), 10)
    task = data.task(store, tid)
    assert task.last_status == "STOPPED" and fake.created == []
    assert task.stopped_reason == (
        "CannotStartContainerError: ResourceInitializationError: The specified log group does not exist")
