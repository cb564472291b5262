"""The supervisor and task workers against a faked Docker transport (no Docker, no network).

A real state store in a temp dir, the runner's migrations, and :class:`FakeDocker` behind
the transport seam: RunTask-style launches go through the whole lifecycle.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, instances, part, tasklogs, tasks
from runner.agent import spec
from runner.supervisor import Supervisor
from tests.unit.runner.fakedocker import FakeDocker

CONFIG = Config(docker_host="fake://local", registry_port=5000)
REGISTRY = "127.0.0.1:5000"


def _defn(*containers: dict[str, Any], **over: Any) -> dict[str, Any]:
    return {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:1",
        "family": "f",
        "revision": 1,
        "networkMode": "bridge",
        "containerDefinitions": list(containers) or [{"name": "web", "image": "app:1", "memory": 64}],
        **over,
    }


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.db", part.MIGRATIONS)
    await clusters.create(s, CONFIG, {"clusterName": "c"})
    yield s
    s.close()


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker(registry={f"{REGISTRY}/app:1", f"{REGISTRY}/db:1"})


@pytest.fixture
async def sup(store: Store, fake: FakeDocker) -> AsyncIterator[Supervisor]:
    s = Supervisor(store, CONFIG, transport_for=lambda url: fake.connection())
    await s.start()
    yield s
    await asyncio.wait_for(s.stop(), 10)


async def _until(store: Store, task_id: str, check: Callable[[Any], bool], timeout: float = 10) -> Any:
    """Wait for the task row to satisfy ``check`` (fails the test after ``timeout``)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        row = data.task(store, task_id)
        if row is not None and check(row):
            return row
        if loop.time() > deadline:
            raise AssertionError(f"task never reached the state; last: {row}")
        await store.changes(store.revision, [tasks.TOPIC], timeout=0.2)


async def _launch(store: Store, defn: dict[str, Any], **kw: Any) -> str:
    rows, failures = await tasks.launch(store, CONFIG, cluster="c", definition=defn, **kw)
    assert not failures
    return rows[0].id


def _running(row: Any) -> bool:
    return row.last_status == "RUNNING"


def _stopped(row: Any) -> bool:
    return row.last_status == "STOPPED"


async def test_the_local_engine_registers_in_every_cluster_with_its_capacity(
    store: Store, sup: Supervisor
) -> None:
    await clusters.create(store, CONFIG, {"clusterName": "other"})
    for name in ("c", "other"):
        for _ in range(50):
            found = instances.instances_in(store, CONFIG, name)
            if found:
                break
            await asyncio.sleep(0.05)
        (inst,) = found
        assert (inst.cpu, inst.memory) == (2048, 4096)
        assert inst.attributes["ecs.os-type"] == "linux"
        assert inst.attributes["ecs.cpu-architecture"] == "x86_64"


async def test_a_task_runs_from_dockyards_registry_and_stops_with_its_stop_timeout(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    tid = await _launch(store, _defn({"name": "web", "image": "app:1", "memory": 64, "stopTimeout": 3}))
    row = await _until(store, tid, _running)
    assert fake.pulls[0][0] == f"{REGISTRY}/app:1"
    (created,) = fake.created
    assert created.image == f"{REGISTRY}/app:1" and created.host["mem_limit"] == 64 * 1024 * 1024
    assert created.labels[spec.LABEL_TASK] == tasks.task_arn(CONFIG, "c", tid)
    web = row.state_of("web")
    assert web.last_status == "RUNNING" and web.runtime_id
    assert row.pull_started_at and row.started_at
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    row = await _until(store, tid, _stopped)
    assert fake.stopped == [(f"dy-{tid}-web", 3)]
    assert (row.stop_code, row.stopped_reason) == ("UserInitiated", "bye")
    assert row.state_of("web").exit_code == 143


async def test_task_scoped_volumes_are_removed_with_the_containers_when_the_task_stops(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    mounts = [
        {"sourceVolume": "scratch", "containerPath": "/s"},
        {"sourceVolume": "keep", "containerPath": "/k"},
    ]
    defn = _defn(
        {"name": "web", "image": "app:1", "memory": 64, "mountPoints": mounts},
        {"name": "side", "image": "app:1", "memory": 64, "mountPoints": mounts[:1]},
        volumes=[{"name": "scratch"}, {"name": "keep", "dockerVolumeConfiguration": {"scope": "shared"}}],
    )
    tid = await _launch(store, defn)
    await _until(store, tid, _running)
    assert fake.volumes == {f"dy-{tid}-scratch", "keep"}
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    await _until(store, tid, _stopped)
    assert fake.volumes == {"keep"}
    assert sorted(fake.removed) == [f"dy-{tid}-side", f"dy-{tid}-web"]


async def test_a_missing_image_stops_the_task_with_cannot_pull_container_error(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    tid = await _launch(store, _defn({"name": "web", "image": "nope:1", "memory": 64}))
    row = await _until(store, tid, _stopped)
    assert row.stop_code == "TaskFailedToStart"
    assert row.stopped_reason.startswith("CannotPullContainerError:")
    assert fake.created == []
    assert row.state_of("web").last_status == "STOPPED"


async def test_an_essential_container_exit_stops_the_task_with_its_exit_code(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    tid = await _launch(
        store,
        _defn(
            {"name": "web", "image": "app:1", "memory": 64},
            {"name": "side", "image": "app:1", "memory": 64, "essential": False},
        ),
    )
    await _until(store, tid, _running)
    fake.exit(f"dy-{tid}-side", 0)
    await asyncio.sleep(0.2)
    assert data.task(store, tid).last_status == "RUNNING"
    fake.exit(f"dy-{tid}-web", 3)
    row = await _until(store, tid, _stopped)
    assert row.stop_code == "EssentialContainerExited"
    assert row.state_of("web").exit_code == 3


async def test_depends_on_orders_container_starts(store: Store, sup: Supervisor, fake: FakeDocker) -> None:
    defn = _defn(
        {
            "name": "app",
            "image": "app:1",
            "memory": 64,
            "dependsOn": [{"containerName": "init", "condition": "SUCCESS"}],
        },
        {"name": "init", "image": "app:1", "memory": 64, "essential": False},
    )
    tid = await _launch(store, defn)
    for _ in range(100):
        if f"dy-{tid}-init" in fake.started:
            break
        await asyncio.sleep(0.02)
    assert fake.started == [f"dy-{tid}-init"]
    fake.exit(f"dy-{tid}-init", 0)
    await _until(store, tid, _running)
    assert fake.started == [f"dy-{tid}-init", f"dy-{tid}-app"]


async def test_health_checks_drive_task_health(store: Store, sup: Supervisor, fake: FakeDocker) -> None:
    hc = {"command": ["CMD-SHELL", "true"], "interval": 5}
    tid = await _launch(store, _defn({"name": "web", "image": "app:1", "memory": 64, "healthCheck": hc}))
    await _until(store, tid, _running)
    assert fake.created[0].healthcheck["interval"] == 5 * 10**9
    fake.set_health(f"dy-{tid}-web", "healthy")
    row = await _until(store, tid, lambda r: r.health == "HEALTHY")
    assert row.state_of("web").health == "HEALTHY"


async def test_awsvpc_tasks_get_a_pause_container_holding_their_address(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    tid = await _launch(store, _defn(networkMode="awsvpc", cpu="256", memory="512"))
    row = await _until(store, tid, _running)
    pause, web = fake.created
    assert pause.name == f"dy-{tid}.pause" and pause.image == spec.PAUSE_IMAGE
    network = row.network
    assert web.host["network_mode"] == f"container:{network.pause}" and network.ip
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    await _until(store, tid, _stopped)
    assert f"dy-{tid}.pause" in fake.removed


class _Resolver:
    """The TaskResolver seam: records the addresses asked for, serves those in ``ok``."""

    def __init__(self, ok: set[str]) -> None:
        self.ok = ok
        self.asked: list[str] = []

    async def serve(self, address: str) -> bool:
        self.asked.append(address)
        return address in self.ok


@pytest.mark.parametrize("mode", ["bridge", "awsvpc"])
async def test_tasks_get_dockyards_resolver_at_their_engines_gateway_once_it_is_served(
    store: Store, fake: FakeDocker, mode: str
) -> None:
    resolver = _Resolver({"172.17.0.1"})
    config = Config(docker_host="unix:///run/fake.sock", registry_port=5000)
    s = Supervisor(store, config, transport_for=lambda url: fake.connection(), task_dns=resolver)
    await s.start()
    try:
        assert resolver.asked == ["172.17.0.1"]  # at start, for tasks adopted after a restart
        tid = await _launch(store, _defn(networkMode=mode, cpu="256", memory="512"))
        await _until(store, tid, _running)
        first = fake.created[0]  # the pause container for awsvpc, the app's for bridge
        assert first.host["dns"] == ["172.17.0.1"]
        resolver.ok.clear()
        resolver.asked.clear()
        tid = await _launch(store, _defn(networkMode=mode, cpu="256", memory="512"))
        await _until(store, tid, _running)
        assert resolver.asked == []  # found once per host
    finally:
        await asyncio.wait_for(s.stop(), 10)


async def test_tasks_keep_the_engines_nameservers_when_the_resolver_cannot_be_served(
    store: Store, fake: FakeDocker
) -> None:
    resolver = _Resolver(set())
    config = Config(docker_host="unix:///run/fake.sock", registry_port=5000, task_dns="192.0.2.9")
    s = Supervisor(store, config, transport_for=lambda url: fake.connection(), task_dns=resolver)
    await s.start()
    try:
        tid = await _launch(store, _defn())
        await _until(store, tid, _running)
        assert "dns" not in fake.created[0].host
        assert resolver.asked == ["192.0.2.9", "192.0.2.9"]  # a failure is tried again per task
    finally:
        await asyncio.wait_for(s.stop(), 10)


async def test_a_restarted_control_plane_adopts_running_containers_and_removes_untracked_ones(
    store: Store, fake: FakeDocker
) -> None:
    first = Supervisor(store, CONFIG, transport_for=lambda url: fake.connection())
    await first.start()
    tid = await _launch(store, _defn())
    await _until(store, tid, _running)
    await first.stop()  # as after SIGKILL: containers keep running, nothing is stopped
    assert fake.stopped == []
    fake.images.add("app:1")
    stray = spec.Placement(
        task_id="gone",
        task_arn="arn:aws:ecs:us-east-1:0:task/c/gone",
        cluster="c",
        instance_arn="x",
        owner=first.owner,
    )
    fake.add_container(spec.container_specs(_defn(), stray)[0])
    foreign = spec.Placement(**{**stray.__dict__, "task_id": "theirs", "owner": "another-dockyard"})
    fake.add_container(spec.container_specs(_defn(), foreign)[0])
    second = Supervisor(store, CONFIG, transport_for=lambda url: fake.connection())
    await second.start()
    try:
        assert len([s for s in fake.created if s.name == f"dy-{tid}-web"]) == 1
        assert fake.removed == ["dy-gone-web"]
        assert tid in second.handles
        fake.exit(f"dy-{tid}-web", 137)
        row = await _until(store, tid, _stopped)
        assert row.stop_code == "EssentialContainerExited"
    finally:
        await second.stop()


async def test_tasks_that_fit_nowhere_are_failures_not_errors(store: Store, sup: Supervisor) -> None:
    rows, failures = await tasks.launch(
        store, CONFIG, cluster="c", definition=_defn({"name": "w", "image": "app:1", "memory": 999999})
    )
    assert rows == [] and failures[0].reason == "RESOURCE:MEMORY"


async def test_stopped_tasks_older_than_the_retention_are_deleted_with_their_containers(
    store: Store, sup: Supervisor, fake: FakeDocker
) -> None:
    tid = await _launch(store, _defn())
    await _until(store, tid, _running)
    await data.request_task_stop(store, tid, "UserInitiated", "bye")
    await _until(store, tid, _stopped)
    await sup._prune()
    assert data.task(store, tid) is not None  # kept for the retention period
    await data.update_task(store, tid, stopped_at=1.0)
    await sup._prune()
    assert data.task(store, tid) is None
    assert f"dy-{tid}-web" in fake.removed


async def test_logs_of_a_task_whose_containers_went_with_its_volumes_stay_readable_until_it_expires(
    store: Store, fake: FakeDocker, tmp_path: Path
) -> None:
    config = Config(docker_host="fake://local", registry_port=5000, data_dir=str(tmp_path / "data"))
    s = Supervisor(store, config, transport_for=lambda url: fake.connection())
    await s.start()
    try:
        defn = _defn({"name": "web", "image": "app:1", "memory": 64, "mountPoints": [
            {"sourceVolume": "scratch", "containerPath": "/s"}]}, volumes=[{"name": "scratch"}])
        rows, _ = await tasks.launch(store, config, cluster="c", definition=defn)
        tid = rows[0].id
        await _until(store, tid, _running)
        await data.request_task_stop(store, tid, "UserInitiated", "bye")
        await _until(store, tid, _stopped)
        assert f"dy-{tid}-web" in fake.removed  # gone from Docker with the task's volume
        out = await tasklogs.task_logs(store, config, s, {"cluster": "c", "task": tid})
        assert out["containers"] == [{"containerName": "web", "logs": f"log of dy-{tid}-web\n"}]
        await data.update_task(store, tid, stopped_at=1.0)
        await s._prune()
        assert not (tmp_path / "data" / "runner" / "logs" / tid).exists()
    finally:
        await asyncio.wait_for(s.stop(), 10)


async def test_the_event_follower_survives_any_failure_and_reports_the_reconnection(fake: FakeDocker) -> None:
    from runner.agent.host import Host

    class Flaky:
        """A connection whose event stream fails twice, once with an unexpected error."""

        def __init__(self) -> None:
            self.inner = fake.connection()
            self.failures = [RuntimeError("not the loop closing"), KeyError("odd")]

        def events(self, since: float | None, label: str) -> Any:
            if self.failures:
                raise self.failures.pop()
            return self.inner.events(since, label)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    host = Host("fake://flaky", Flaky())  # type: ignore[arg-type]
    reconnected = asyncio.Event()
    seen: list[dict[str, Any]] = []
    host.watch(seen.append, reconnected.set)
    await asyncio.wait_for(reconnected.wait(), 10)
    assert host._events_thread is not None and host._events_thread.is_alive()
    await host.close()
