"""A meshed task's worker (Service Connect) against the fake Docker transport and a fake
:class:`runner.seams.Sidecars`: the pause container, the redirect, the sidecar, the app only
once the sidecar is ready, the stop order, and the reasons a meshed task fails to start."""

from __future__ import annotations

import asyncio
import io
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.config import Config
from dockyard.store import Store
from runner import data, part, taskshapes
from runner.agent import meshed
from runner.agent.host import Host
from runner.agent.spec import PAUSE_IMAGE
from runner.agent.worker import TaskWorker
from runner.connect import TaskConnect, TaskIngress
from runner.data import Task
from tests.unit.runner.fakedocker import FakeDocker

CONFIG = Config(docker_host="fake://local", registry_port=5000)
REGISTRY = "127.0.0.1:5000"
IMAGE = "dockyard/envoy:test"
CONNECT = TaskConnect("shop.local", (TaskIngress("web", 15100, 8080, "http"),),
                      {"db.shop.local": "127.255.0.2"})


class FakeSidecars:
    """Ready after ``ready_after`` calls of ``ready`` (None: never); records what it was asked."""

    image = IMAGE

    def __init__(self, fake: FakeDocker, ready_after: int | None = 2) -> None:
        self.fake = fake
        self.ready_after = ready_after
        self.calls: list[list[str]] = []  # the containers started at each call of ready()
        self.tars = 0
        self.gateways: list[str] = []
        self.drains: list[tuple[str, float, list[tuple[str, int]]]] = []  # (arn, bound, stopped then)
        self.drain_takes = 0.0  # seconds before drained() answers
        self.drain_done = True  # what drained() answers when it does


    def image_tar(self) -> Any:
        self.tars += 1
        return io.BytesIO(b"rootfs")

    def import_changes(self) -> list[str]:
        return ['ENTRYPOINT ["/usr/local/bin/envoy"]']

    async def xds_address(self, gateway: str) -> tuple[str, int]:
        self.gateways.append(gateway)
        return (gateway, 18000)

    def bootstrap(self, task_arn: str, service: str, xds: tuple[str, int]) -> dict[str, Any]:
        return {"node": {"id": task_arn, "cluster": service}, "xds": list(xds)}

    async def ready(self, task_arn: str, timeout: float) -> bool:
        self.calls.append(list(self.fake.started))
        await asyncio.sleep(min(timeout, 0.01))
        return self.ready_after is not None and len(self.calls) >= self.ready_after

    async def drained(self, task_arn: str, timeout: float) -> bool:
        self.drains.append((task_arn, timeout, list(self.fake.stopped)))
        await asyncio.sleep(min(timeout, self.drain_takes))
        return self.drain_done and self.drain_takes <= timeout


def _defn(*containers: dict[str, Any], mode: str = "bridge") -> dict[str, Any]:
    return {
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/f:3",
        "family": "f",
        "revision": 3,
        "networkMode": mode,
        "containerDefinitions": list(containers) or [
            {"name": "web", "image": "app:1", "memory": 64, "stopTimeout": 7,
             "portMappings": [{"containerPort": 8080, "name": "web"}]}],
    }


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = Store.open(tmp_path / "state.db", part.MIGRATIONS)
    yield s
    s.close()


@pytest.fixture
def fake() -> FakeDocker:
    return FakeDocker(images={PAUSE_IMAGE}, registry={f"{REGISTRY}/app:1"})


@pytest.fixture
async def host(fake: FakeDocker) -> AsyncIterator[Host]:
    h = Host("fake://local", fake.connection())
    yield h
    await h.close()


async def _record(store: Store, fake: FakeDocker, defn: dict[str, Any], connect: TaskConnect | None = CONNECT,
                  redirect_exit: int = 0) -> str:
    tid = uuid.uuid4().hex
    fake.one_shot[f"dy-{tid}.redirect"] = redirect_exit  # iptables runs and exits
    new = data.NewTask(tid, "c", "i-1", defn, "EC2", time.time(), group="service:web", connect=connect)
    await data.record_tasks(store, lambda: [new])
    return tid


def _worker(store: Store, host: Host, tid: str, sidecars: FakeSidecars | None, **kw: Any) -> TaskWorker:
    return TaskWorker(store, CONFIG, host, tid, registry=REGISTRY, owner="owner-1", sidecars=sidecars, **kw)


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


async def _stop(store: Store, worker: TaskWorker, run: asyncio.Task[None]) -> Task:
    await data.request_task_stop(store, worker.task_id, "UserInitiated", "bye")
    worker.wake()
    await asyncio.wait_for(run, 10)
    return data.task(store, worker.task_id)


async def test_the_app_starts_after_the_redirect_and_a_ready_sidecar_and_stops_before_it(store, fake, host):
    tid = await _record(store, fake, _defn())
    sidecars = FakeSidecars(fake, ready_after=3)
    worker = _worker(store, host, tid, sidecars)
    run = asyncio.create_task(worker.run())
    task = await _until(store, tid, lambda t: t.last_status == "RUNNING")
    name = meshed.sidecar_name(tid)
    pause, redirect, side, web = f"dy-{tid}.pause", f"dy-{tid}.redirect", f"dy-{tid}-{name}", f"dy-{tid}-web"
    assert fake.started == [pause, redirect, side, web]
    # ready() was asked three times, the app not started before the third said yes
    assert [web in started for started in sidecars.calls] == [False, False, False]
    assert sidecars.tars == 1 and [ref for _, ref, _ in fake.imports] == [IMAGE]
    assert sidecars.gateways == ["172.17.0.1"]  # the engine's bridge gateway
    specs = {s.name: s for s in fake.created}
    assert specs[pause].host["extra_hosts"] == {"db.shop.local": "127.255.0.2"}
    assert set(specs[pause].host["port_bindings"]) == {"8080/tcp", "15100/tcp"}
    assert specs[redirect].host["cap_add"] == ["NET_ADMIN"] and specs[redirect].image == IMAGE
    assert "15001" in specs[redirect].command
    boot = json.loads(specs[side].command[1])
    assert boot == {"node": {"id": worker.placement.task_arn, "cluster": "web"}, "xds": ["172.17.0.1", 18000]}
    joined = f"container:{task.network.pause}"
    assert specs[web].host["network_mode"] == specs[side].host["network_mode"] == joined
    assert redirect in fake.removed  # the one-shot is gone once it ran
    # the pause container's published ports, by container: the app's own, the sidecar's ingress
    sc = task.state_of(name)
    assert (sc.last_status, sc.health, sc.image) == ("RUNNING", "HEALTHY", IMAGE)
    assert sc.runtime_id == fake.by_name(side)["Id"]
    ingress_at = task.endpoint(name, 15100)
    web_at = task.endpoint("web", 8080)
    assert ingress_at and web_at and ingress_at[0] == web_at[0] == "" and ingress_at[1] != web_at[1] >= 32768
    task = await _stop(store, worker, run)
    # it left the other sidecars' endpoints before anything stopped
    assert sidecars.drains == [(worker.placement.task_arn, CONFIG.mesh_drain_timeout, [])]
    assert fake.stopped == [(web, 7), (side, meshed.SIDECAR_STOP_TIMEOUT)]
    assert fake.removed[-1] == pause
    assert task.last_status == "STOPPED" and task.state_of(name).last_status == "STOPPED"


@pytest.mark.parametrize(("bound", "drains"), [(0.3, 1), (0.0, 0)])
async def test_the_stop_waits_for_the_drain_at_most_its_bound_and_not_at_all_at_zero(
        store, fake, host, bound: float, drains: int):
    tid = await _record(store, fake, _defn())
    sidecars = FakeSidecars(fake)
    sidecars.drain_takes = 60.0  # a sidecar that never ACKs
    config = Config(docker_host="fake://local", registry_port=5000, mesh_drain_timeout=bound)
    worker = TaskWorker(store, config, host, tid, registry=REGISTRY, owner="owner-1", sidecars=sidecars)
    run = asyncio.create_task(worker.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    began = time.monotonic()
    task = await _stop(store, worker, run)
    assert len(sidecars.drains) == drains and task.last_status == "STOPPED"
    assert bound <= time.monotonic() - began < bound + 5
    assert [n for n, _ in fake.stopped] == [f"dy-{tid}-web", f"dy-{tid}-{meshed.sidecar_name(tid)}"]


async def test_describe_tasks_shows_the_sidecar_as_ecs_shows_its_service_connect_container(store, fake, host):
    tid = await _record(store, fake, _defn(mode="awsvpc"))
    worker = _worker(store, host, tid, FakeSidecars(fake))
    run = asyncio.create_task(worker.run())
    task = await _until(store, tid, lambda t: t.last_status == "RUNNING")
    out = taskshapes.shape(CONFIG, task)
    name = meshed.sidecar_name(tid)
    assert [c["name"] for c in out["containers"]] == [name, "web"]
    sc = out["containers"][0]
    assert (sc["lastStatus"], sc["healthStatus"], sc["image"]) == ("RUNNING", "HEALTHY", IMAGE)
    assert "cpu" not in sc and out["containers"][1]["cpu"] == "0"
    assert sc["networkInterfaces"] == [{"attachmentId": task.network.attachment,
                                        "privateIpv4Address": task.network.ip}]
    kinds = [a["type"] for a in out["attachments"]]
    assert kinds == ["ServiceConnect", "ElasticNetworkInterface"]
    assert out["attachments"][0]["details"] == [{"name": "ContainerName", "value": name}]
    assert out["attachments"][0]["status"] == "ATTACHED"
    assert task.endpoint(name, 15100) == (task.network.ip, 15100)  # awsvpc: the task's own address
    task = await _stop(store, worker, run)
    assert taskshapes.shape(CONFIG, task)["attachments"][0]["status"] == "DELETED"
    plain = await _record(store, fake, _defn(), connect=None)
    assert [c["name"] for c in taskshapes.shape(CONFIG, data.task(store, plain))["containers"]] == ["web"]


async def test_a_sidecar_never_ready_fails_the_task_without_starting_the_app(store, fake, host):
    tid = await _record(store, fake, _defn())
    worker = _worker(store, host, tid, FakeSidecars(fake, ready_after=None), ready_timeout=0.3)
    await asyncio.wait_for(worker.run(), 10)
    task = data.task(store, tid)
    name = meshed.sidecar_name(tid)
    assert (task.last_status, task.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert task.stopped_reason == (f"ResourceInitializationError: the Service Connect proxy {name} did not "
                                   "get its configuration from Dockyard's xDS server within 0.3 s")
    assert f"dy-{tid}-web" not in fake.started
    assert fake.stopped[-1] == (f"dy-{tid}-{name}", meshed.SIDECAR_STOP_TIMEOUT)
    assert f"dy-{tid}.pause" in fake.removed


async def test_a_sidecar_that_exits_before_it_is_ready_fails_the_task_saying_so(store, fake, host):
    tid = await _record(store, fake, _defn())
    name = meshed.sidecar_name(tid)
    fake.one_shot[f"dy-{tid}-{name}"] = 1
    await asyncio.wait_for(_worker(store, host, tid, FakeSidecars(fake, ready_after=None)).run(), 10)
    task = data.task(store, tid)
    assert task.stop_code == "TaskFailedToStart"
    assert task.stopped_reason.startswith(f"ResourceInitializationError: the Service Connect proxy {name} "
                                          "exited (exit code 1) before it got its configuration")
    assert task.state_of(name).health == "UNHEALTHY" and f"dy-{tid}-web" not in fake.started


async def test_a_failed_redirect_fails_the_task_before_the_sidecar(store, fake, host):
    tid = await _record(store, fake, _defn(), redirect_exit=4)
    await asyncio.wait_for(_worker(store, host, tid, FakeSidecars(fake)).run(), 10)
    task = data.task(store, tid)
    assert task.stop_code == "TaskFailedToStart"
    assert task.stopped_reason.startswith(
        "ResourceInitializationError: the Service Connect redirect (iptables in the task's network "
        "namespace) failed with exit code 4")
    assert not any(s.name.startswith(f"dy-{tid}-ecs-service-connect-") for s in fake.created)
    assert f"dy-{tid}.redirect" in fake.removed


async def test_without_a_mesh_a_meshed_task_fails_to_start_saying_so(store, fake, host):
    tid = await _record(store, fake, _defn())
    await asyncio.wait_for(_worker(store, host, tid, None).run(), 10)
    task = data.task(store, tid)
    assert (task.last_status, task.stop_code) == ("STOPPED", "TaskFailedToStart")
    assert task.stopped_reason == ("ResourceInitializationError: Service Connect is not available: this "
                                   "Dockyard runs no mesh to give the task its sidecar")
    assert fake.created == []


async def test_a_one_off_meshed_task_ends_when_its_essential_container_exits_then_its_sidecar_stops(
        store, fake, host):
    tid = await _record(store, fake, _defn({"name": "job", "image": "app:1", "memory": 32}))
    worker = _worker(store, host, tid, FakeSidecars(fake))
    run = asyncio.create_task(worker.run())
    await _until(store, tid, lambda t: t.last_status == "RUNNING")
    fake.exit(f"dy-{tid}-job", 0)
    worker.wake()
    await asyncio.wait_for(run, 10)
    task = data.task(store, tid)
    name = meshed.sidecar_name(tid)
    assert (task.last_status, task.stop_code) == ("STOPPED", "EssentialContainerExited")
    assert fake.stopped[-1] == (f"dy-{tid}-{name}", meshed.SIDECAR_STOP_TIMEOUT)
    assert task.state_of(name).last_status == "STOPPED"


async def test_a_second_task_on_the_host_reuses_the_imported_sidecar_image_and_a_restart_adopts(
        store, fake, host):
    sidecars = FakeSidecars(fake, ready_after=1)
    first = await _record(store, fake, _defn())
    w1 = _worker(store, host, first, sidecars)
    r1 = asyncio.create_task(w1.run())
    await _until(store, first, lambda t: t.last_status == "RUNNING")
    w1.abandon()  # the control plane stopping
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(r1, 10)
    again = _worker(store, host, first, sidecars)
    r1 = asyncio.create_task(again.run())
    await asyncio.sleep(0.2)
    created = len(fake.created)
    second = await _record(store, fake, _defn())
    w2 = _worker(store, host, second, sidecars)
    r2 = asyncio.create_task(w2.run())
    await _until(store, second, lambda t: t.last_status == "RUNNING")
    assert sidecars.tars == 1 and len(fake.imports) == 1  # imported once per engine
    assert len(fake.created) == created + 4  # the second task's own: pause, web, redirect, sidecar
    task = await _stop(store, again, r1)
    name = meshed.sidecar_name(first)
    assert [n for n, _ in fake.stopped] == [f"dy-{first}-web", f"dy-{first}-{name}"]  # adopted, same order
    assert task.state_of(name).last_status == "STOPPED"
    await _stop(store, w2, r2)


async def test_the_supervisor_gives_its_workers_the_sidecars_it_was_installed_with(tmp_path):
    from runner import clusters, instances
    from runner.supervisor import Supervisor

    store = Store.open(tmp_path / "sup.db", part.MIGRATIONS)
    fake = FakeDocker(images={PAUSE_IMAGE}, registry={f"{REGISTRY}/app:1"})
    await clusters.create(store, CONFIG, {"clusterName": "c"})
    sidecars = FakeSidecars(fake, ready_after=1)
    sup = Supervisor(store, CONFIG, transport_for=lambda url: fake.connection(), sidecars=sidecars)
    await sup.start()
    try:
        (inst,) = instances.instances_in(store, CONFIG, "c")
        tid = uuid.uuid4().hex
        fake.one_shot[f"dy-{tid}.redirect"] = 0
        new = data.NewTask(tid, "c", inst.id, _defn(), "EC2", time.time(), group="service:web",
                           connect=CONNECT)
        await data.record_tasks(store, lambda: [new])
        task = await _until(store, tid, lambda t: t.last_status == "RUNNING")
        assert task.state_of(meshed.sidecar_name(tid)).health == "HEALTHY" and sidecars.calls
    finally:
        await asyncio.wait_for(sup.stop(), 10)
        store.close()


async def test_a_sidecar_that_exits_later_makes_the_task_unhealthy_not_stopped(store, fake, host):
    tid = await _record(store, fake, _defn())
    worker = _worker(store, host, tid, FakeSidecars(fake, ready_after=1))
    run = asyncio.create_task(worker.run())
    task = await _until(store, tid, lambda t: t.last_status == "RUNNING")
    name = meshed.sidecar_name(tid)
    assert task.health == "UNKNOWN" and task.state_of(name).health == "HEALTHY"
    fake.exit(f"dy-{tid}-{name}", 1)
    worker.wake()
    task = await _until(store, tid, lambda t: t.health == "UNHEALTHY")
    assert task.last_status == "RUNNING" and task.desired_status == "RUNNING"  # not essential
    sc = task.state_of(name)
    assert (sc.last_status, sc.health, sc.exit_code) == ("STOPPED", "UNHEALTHY", 1)
    await _stop(store, worker, run)
