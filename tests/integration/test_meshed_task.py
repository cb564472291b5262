"""A meshed task on the real Docker Engine: the runner's worker (in process, over the Docker
Engine API) runs a ``bridge`` and an ``awsvpc`` task whose ``connect`` is set, with a real
``mesh.server.AdsServer`` and ``SnapshotCache`` serving a snapshot for its node, and a
``Sidecars`` built from the mesh's pieces (``mesh.sidecar``'s image, ``mesh.bootstrap``,
readiness = the server's ACKs).

It shows: the sidecar image is imported over the transport when the engine lacks it; the
sidecar starts and ACKs, then the app starts; the app's ``/etc/hosts`` has the alias; the
REDIRECT rule is in the task's namespace; the app calls ``http://db.shop.local/`` and reaches
an upstream (busybox httpd on the bridge) through its sidecar; the ingress port (published on
the pause container in ``bridge`` mode, at the task's address in ``awsvpc``), where
``task.endpoint(<sidecar>, <ingress port>)`` says, reaches the app from the host; the stop
order is app, sidecar, pause."""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

from dockyard.config import Config
from dockyard.store import Store
from mesh import sidecar as image_build
from mesh.bootstrap import bootstrap
from mesh.cache import SnapshotCache
from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Service, Target
from mesh.server import AdsServer, add_to_server
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ORDER, ROUTE, SECRET, Snapshot, compute
from runner import data, part
from runner.agent import meshed
from runner.agent.host import Host
from runner.agent.spec import LABEL_OWNER
from runner.agent.transport import DockerTransport
from runner.agent.worker import TaskWorker
from runner.connect import TaskConnect, TaskIngress
from tests.support.images import echo_image

IMAGE = "dockyard-test/envoy-sidecar:meshed-task"
ALIAS, ALIAS_ADDRESS = "db.shop.local", "127.255.0.2"
INGRESS, APP_PORT = 15100, 8080


def docker(*args: str, check: bool = True) -> str:
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60, check=check)
    return out.stdout.strip()


def _pack(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def _http(name: str, route_config: route_pb2.RouteConfiguration) -> listener_components_pb2.FilterChain:
    manager = hcm.HttpConnectionManager(stat_prefix=name, route_config=route_config, http_filters=[
        hcm.HttpFilter(name="envoy.filters.http.router", typed_config=_pack(router_pb2.Router()))])
    return listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(
        name="envoy.filters.network.http_connection_manager", typed_config=_pack(manager))])


def _address(host: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=host, port_value=port))


def task_snapshot(arn: str, upstream: str) -> Snapshot:
    """The data path of docs/mesh.md for one client alias and one ingress port: the virtual
    outbound listener on 127.0.0.1:15001 (``use_original_dst``), the alias's listener on
    127.255.0.2:80 not bound (``bind_to_port`` false), and the ingress on 0.0.0.0:15100 to the app."""
    config = MeshConfig(services=(Service("db-v1"),), routes=(Route(ALIAS, 80, (Target("db-v1", 1),)),),
                        clients=(Client(arn, (ALIAS,)),))
    base = compute(config, {"db-v1": [Endpoint(upstream, 8080)]}, Node(arn, ALIAS_ADDRESS))
    (egress,) = base.resources[LISTENER]
    alias = listener_pb2.Listener()
    alias.CopyFrom(egress)
    alias.bind_to_port.CopyFrom(wrappers_pb2.BoolValue(value=False))
    virtual = listener_pb2.Listener(
        name="virtual_outbound", address=_address("127.0.0.1", 15001),
        use_original_dst=wrappers_pb2.BoolValue(value=True),
        filter_chains=[_http("virtual_outbound", route_pb2.RouteConfiguration(name="none"))])
    app = cluster_pb2.Cluster(
        name="local_app", type=cluster_pb2.Cluster.STATIC, connect_timeout=duration_pb2.Duration(seconds=1),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(cluster_name="local_app", endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(address=_address("127.0.0.1", APP_PORT)))])]))
    to_app = route_pb2.RouteConfiguration(name="ingress", virtual_hosts=[route_components_pb2.VirtualHost(
        name="app", domains=["*"], routes=[route_components_pb2.Route(
            match=route_components_pb2.RouteMatch(prefix="/"),
            route=route_components_pb2.RouteAction(cluster="local_app"))])])
    ingress = listener_pb2.Listener(name=f"ingress_{INGRESS}", address=_address("0.0.0.0", INGRESS),
                                    filter_chains=[_http("ingress", to_app)])
    return Snapshot.of([*base.resources[CLUSTER], app], base.resources[ENDPOINT],
                       [alias, virtual, ingress], base.resources[ROUTE])


class TestSidecars:
    """:class:`runner.seams.Sidecars` from the mesh's pieces, over one ADS server."""

    __test__ = False

    def __init__(self, ads: AdsServer, snapshot: Snapshot, port: int) -> None:
        self.ads, self.snapshot, self.port = ads, snapshot, port
        self.binary = image_build.envoy_binary()
        self.image = IMAGE
        self.tars = 0
        self.ready_at: float | None = None

    def image_tar(self) -> IO[bytes]:
        self.tars += 1
        tmp = tempfile.TemporaryFile()
        image_build.write_rootfs(tmp, self.binary, image_build.shared_libs(self.binary))
        tmp.seek(0)
        return tmp

    def import_changes(self) -> list[str]:
        return image_build.image_changes(image_build.envoy_version(self.binary),
                                         image_build.file_digest(self.binary),
                                         image_build.extra_digest(image_build.extra_files()))

    async def xds_address(self, gateway: str) -> tuple[str, int]:
        return (gateway, self.port)

    def bootstrap(self, task_arn: str, service: str, xds: tuple[str, int]) -> dict[str, Any]:
        return bootstrap(task_arn, service, xds[0], xds[1], 15000)

    async def ready(self, task_arn: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            acked = (self.ads.status().get(task_arn) or {}).get("acked") or {}
            if all(acked.get(t) == self.snapshot.versions[t] for t in ORDER if t != SECRET):  # plaintext
                self.ready_at = time.time()
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.05)


def started_at(cid: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", cid)


def finished_at(cid: str) -> str:
    return docker("inspect", "-f", "{{.State.FinishedAt}}", cid)


def rfc3339_seconds(stamp: str) -> float:
    """Docker's RFC 3339 nanosecond stamp as seconds since the epoch (UTC)."""
    import datetime

    head, _, frac = stamp.rstrip("Z").partition(".")
    whole = datetime.datetime.fromisoformat(head).replace(tzinfo=datetime.UTC).timestamp()
    return whole + float(f"0.{frac or 0}")


@pytest.mark.parametrize("mode", ["bridge", "awsvpc"])
async def test_a_meshed_task_runs_its_app_behind_a_ready_sidecar_that_carries_its_calls(
        tmp_path: Path, mode: str):
    owner = f"side-test-{uuid.uuid4().hex[:8]}"
    echo = echo_image()
    if mode == "bridge":
        docker("rmi", IMAGE, check=False)  # so the runner imports it over the Engine API
    upstream = docker("run", "-d", "--label", f"{LABEL_OWNER}={owner}", "-e", "VERSION=upstream-v1", echo)
    store = Store.open(tmp_path / "state.db", part.MIGRATIONS)
    server = grpc.aio.server()
    host = Host("unix:///var/run/docker.sock", DockerTransport("unix:///var/run/docker.sock"))
    try:
        gateway = await host.gateway()
        upstream_ip = docker("inspect", "-f", "{{.NetworkSettings.IPAddress}}", upstream)
        tid = uuid.uuid4().hex
        arn = f"arn:aws:ecs:us-east-1:000000000000:task/c/{tid}"
        cache = SnapshotCache()
        ads = AdsServer(cache)
        add_to_server(server, ads)
        port = server.add_insecure_port(f"{gateway}:0")
        await server.start()
        snapshot = task_snapshot(arn, upstream_ip)
        cache.set_snapshot(arn, snapshot)
        sidecars = TestSidecars(ads, snapshot, port)
        defn = {"taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
                "family": "web", "revision": 1, "networkMode": mode,
                "containerDefinitions": [{"name": "app", "image": echo, "memory": 64, "stopTimeout": 2,
                                          "environment": [{"name": "VERSION", "value": "app-v1"}],
                                          "portMappings": [{"containerPort": APP_PORT, "name": "web"}]}]}
        connect = TaskConnect("shop.local", (TaskIngress("web", INGRESS, APP_PORT, "http"),),
                              {ALIAS: ALIAS_ADDRESS})
        new = data.NewTask(tid, "c", "i-1", defn, "EC2", time.time(), group="service:web", connect=connect)
        await data.record_tasks(store, lambda: [new])
        worker = TaskWorker(store, Config(data_dir=str(tmp_path)), host, tid, owner=owner, sidecars=sidecars)
        run = asyncio.create_task(worker.run())
        deadline = time.monotonic() + 90
        while (task := data.task(store, tid)).last_status != "RUNNING":
            assert task.last_status != "STOPPED", task.stopped_reason
            assert time.monotonic() < deadline, f"never RUNNING: {task.last_status}"
            await asyncio.sleep(0.2)
        name = meshed.sidecar_name(tid)
        app_id, side_id = task.state_of("app").runtime_id, task.state_of(name).runtime_id
        pause_id = task.network.pause
        assert sidecars.tars == (1 if mode == "bridge" else 0)  # imported when the engine lacked it
        assert docker("image", "inspect", "-f", "{{.Id}}", IMAGE)
        # the sidecar ACKed its whole snapshot before the app started
        assert sidecars.ready_at is not None
        assert rfc3339_seconds(started_at(side_id)) < sidecars.ready_at <= rfc3339_seconds(started_at(app_id))
        assert task.state_of(name).health == "HEALTHY"
        hosts = docker("exec", app_id, "cat", "/etc/hosts")
        assert f"{ALIAS_ADDRESS}\t{ALIAS}" in hosts
        pid = docker("inspect", "-f", "{{.State.Pid}}", pause_id)
        rules = subprocess.run(["nsenter", "-t", pid, "-n", "iptables", "-t", "nat", "-S"],
                               capture_output=True, text=True, check=True).stdout
        assert "-A OUTPUT -d 127.255.0.0/16 -p tcp -j REDIRECT --to-ports 15001" in rules
        # the app calls the alias: redirected to its sidecar, routed to the upstream
        out = docker("exec", app_id, "wget", "-q", "-O", "-", f"http://{ALIAS}/")
        assert out == "upstream-v1"
        # the ingress port (bridge: published on the pause container; awsvpc: at the task's
        # address) reaches the app through the sidecar
        at = task.endpoint(name, INGRESS)
        assert at is not None and at == (("", at[1]) if mode == "bridge" else (task.network.ip, INGRESS))
        with urllib.request.urlopen(f"http://{at[0] or '127.0.0.1'}:{at[1]}/", timeout=10) as r:
            assert r.read().decode().strip() == "app-v1"
        assert task.endpoint("app", APP_PORT) is not None  # the app's own mapping, also on the pause
        await data.request_task_stop(store, tid, "UserInitiated", "done")
        worker.wake()
        await asyncio.wait_for(run, 60)
        task = data.task(store, tid)
        assert task.last_status == "STOPPED" and task.state_of(name).last_status == "STOPPED"
        assert rfc3339_seconds(finished_at(app_id)) <= rfc3339_seconds(finished_at(side_id))
        assert docker("inspect", pause_id, check=False) in ("", "[]")  # the pause container is gone
    finally:
        await server.stop(0)
        await host.close()
        store.close()
        ids = docker("ps", "-aq", "--filter", f"label={LABEL_OWNER}={owner}").split()
        if ids:
            docker("rm", "-f", *ids, check=False)
