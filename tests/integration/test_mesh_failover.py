"""The mesh under failures, end to end through a ``dockyard up`` of the module's own (delta
xDS, ``mesh_delta``): continuous calls from one Service Connect service's task to another's
alias, through both sidecars, while the control plane is SIGKILLed and restarted, and while the
called service is scaled in or rolled to a new revision. Not one call may fail.

The scale-in and the roll prove the drain of a stopping task (``runner.agent.worker``: its app
stops only once every other sidecar ACKed endpoints without it). The route has no retry policy
(checked in front's Envoy), so no failure is hidden by a retry. And the push that removes the
task reaches front's sidecar late: the xDS server's packets into front's network namespace
are dropped (iptables, matched by their source port) from before the task leaves Cloud Map
until a second after, then TCP retransmits them. Without the drain
(``DOCKYARD_MESH_DRAIN_TIMEOUT=0``) front goes on sending to the stopped task meanwhile and
calls fail; with it, none does."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import create, running, task_definition
from tests.support.images import echo_image
from tests.support.server import Dockyard

# Run in the client task's network namespace by the host's python3: calls ``http://<alias>/``
# at ``address`` over one keep-alive connection (a new one after an error) until ``stop`` exists,
# then prints {"ok": n, "failed": n, "bodies": {...}, "errors": [...]}.
LOAD = r"""
import http.client, json, os, sys, time
address, alias, stop = sys.argv[1:4]
ok = failed = 0
bodies, errors = {}, []
conn = None
while not os.path.exists(stop):
    try:
        if conn is None:
            conn = http.client.HTTPConnection(address, 80, timeout=5)
        conn.request("GET", "/", headers={"Host": alias})
        resp = conn.getresponse()
        body = resp.read().decode().strip()
        if resp.status == 200:
            ok += 1
            bodies[body] = bodies.get(body, 0) + 1
        else:
            failed += 1
            errors.append(f"{time.time():.3f} {resp.status} {body[:80]}")
    except Exception as e:
        failed += 1
        errors.append(f"{time.time():.3f} {type(e).__name__}: {e}")
        conn = None
        time.sleep(0.05)
    time.sleep(0.01)
print(json.dumps({"ok": ok, "failed": failed, "bodies": bodies, "errors": errors[:20]}))
"""


@dataclass
class Mesh:
    server: Dockyard
    cluster: str
    alias: str
    pid: str  # of front's app container: its network namespace
    address: str  # what front's /etc/hosts gives the alias (its sidecar's listener)
    tmp: Path

    def status(self) -> dict[str, dict[str, Any]]:
        proc = self.server.cli("mesh", "status", "--json", "--data-dir", str(self.server.data_dir),
                               "--endpoint-url", self.server.control_url)
        assert proc.returncode == 0, proc.stderr
        return {r["Node"]: r for r in json.loads(proc.stdout)}

    def arns(self, *services: str) -> list[str]:
        ecs = self.server.client("ecs")
        return [t["taskArn"] for s in services for t in service_tasks(ecs, self.cluster, s)]

    def all_ready(self) -> dict[str, dict[str, Any]] | None:
        rows, arns = self.status(), self.arns("web", "front")
        return rows if arns and all(a in rows and rows[a]["Connected"] and rows[a]["Ready"] for a in arns) \
            else None


class Load:
    """Calls from front's namespace to web's alias in the background, until ``finish()``."""

    def __init__(self, mesh: Mesh) -> None:
        self.stop = mesh.tmp / f"stop-{uuid.uuid4().hex[:6]}"
        self.proc = subprocess.Popen(
            ["nsenter", "-t", mesh.pid, "-n", sys.executable, "-c", LOAD, mesh.address, mesh.alias,
             str(self.stop)], stdout=subprocess.PIPE, text=True)

    def finish(self) -> dict[str, Any]:
        self.stop.touch()
        out, _ = self.proc.communicate(timeout=30)
        return json.loads(out)


def prompt_web(server: Dockyard, version: str) -> str:
    """web's task definition: the echo app answering ``version``, which exits at once on SIGTERM
    (a shell as PID 1 that traps it; httpd as PID 1 would ignore it until Docker's SIGKILL and
    keep answering meanwhile, which would hide a missing drain)."""
    container = {"name": "app", "image": echo_image(), "memory": 32, "essential": True,
                 "environment": [{"name": "VERSION", "value": version}],
                 "entryPoint": ["/bin/sh", "-c"], "command": ["trap 'exit 0' TERM; /app/run & wait"],
                 "portMappings": [{"containerPort": 8080, "name": "web", "appProtocol": "http"}]}
    out = server.aws("ecs", "register-task-definition", "--family", "fo-web", "--network-mode", "awsvpc",
                     "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


def _run(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, check=True).stdout


@contextlib.contextmanager
def xds_held(mesh: Mesh) -> Iterator[None]:
    """While inside, what the xDS server sends into front's namespace (source port = the xDS
    port) is dropped there (iptables, front's ``INPUT``); nothing else is: calls and their
    answers go on. On the way out the rule goes and TCP retransmits what was held."""
    rule = ["INPUT", "-p", "tcp", "--sport", str(mesh.server.ports["xds"]), "-j", "DROP"]
    _run("nsenter", "-t", mesh.pid, "-n", "iptables", "-I", *rule)
    try:
        yield
    finally:
        subprocess.run(["nsenter", "-t", mesh.pid, "-n", "iptables", "-D", *rule], capture_output=True)


def stopping(ecs: Any, cluster: str, arns: list[str]) -> bool:
    """One of the tasks ``arns`` is wanted STOPPED (it left Cloud Map; its worker is draining)."""
    tasks = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    return any(t["desiredStatus"] == "STOPPED" for t in tasks)


def routes_of_front(mesh: Mesh) -> str:
    """front's Envoy's dynamic route configurations (its admin, on loopback in its namespace)."""
    url = "http://127.0.0.1:15000/config_dump?resource=dynamic_route_configs"
    code = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=5).read().decode())"
    return _run("nsenter", "-t", mesh.pid, "-n", sys.executable, "-c", code)


def app_container(task_arn: str) -> str:
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=dockyard.task-arn={task_arn}",
         "--filter", "label=dockyard.container-name=app"], capture_output=True, text=True, check=True,
    ).stdout.split()[0]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Mesh]:
    tmp = tmp_path_factory.mktemp("failover")
    server = Dockyard(tmp / "data", env={"DOCKYARD_MESH_DELTA": "true"})
    server.start()
    try:
        ns = namespace(server, f"fo-{uuid.uuid4().hex[:6]}.local")
        alias = f"web.{ns['Name']}"
        ecs = server.client("ecs")
        with own_cluster(server, "mesh-fo") as cluster:
            web = prompt_web(server, "web-v1")
            entry = {"portName": "web", "discoveryName": "web",
                     "clientAliases": [{"port": 80, "dnsName": alias}]}
            create(server, cluster, "web", web,
                   {"enabled": True, "namespace": ns["Name"], "services": [entry]})
            server.aws("ecs", "update-service", "--cluster", cluster, "--service", "web",
                       "--desired-count", "2")
            wait_for(lambda: len(running(ecs, cluster, "web")) == 2, timeout=180,
                     what="web's two tasks running")
            front = task_definition(server, "fo-front", {"VERSION": "front"})
            create(server, cluster, "front", front, {"enabled": True, "namespace": ns["Name"]})
            [task] = wait_for(lambda: running(ecs, cluster, "front"), timeout=180,
                              what="front's task running")
            app = app_container(task["taskArn"])
            pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", app], capture_output=True,
                                 text=True, check=True).stdout.strip()
            hosts = subprocess.run(["docker", "exec", app, "cat", "/etc/hosts"], capture_output=True,
                                   text=True, check=True).stdout
            address = next(line.split()[0] for line in hosts.splitlines() if line.endswith(alias))
            m = Mesh(server, cluster, alias, pid, address, tmp)
            wait_for(m.all_ready, timeout=60, what="every sidecar ready")
            yield m
    finally:
        if server.proc is not None:
            server.stop()


def test_a_control_plane_killed_and_restarted_under_load_fails_no_call(mesh):
    before = wait_for(mesh.all_ready, timeout=30, what="ready before the kill")
    assert all(row["Transport"] == "delta" for row in before.values() if row["Connected"])
    load = Load(mesh)
    time.sleep(2)
    mesh.server.kill()
    time.sleep(2)  # the sidecars serve on their last configuration, the control plane dead
    mesh.server.start()
    try:
        after = wait_for(mesh.all_ready, timeout=60, what="every sidecar reconnected and ready")
    except AssertionError as e:
        raise AssertionError(f"{e}; status {mesh.status()}; arns {mesh.arns('web', 'front')}; "
                             f"load {load.finish()}") from None
    time.sleep(2)
    result = load.finish()
    assert result["failed"] == 0, result
    assert result["ok"] > 50 and set(result["bodies"]) == {"web-v1"}, result
    # delta: the reconnected sidecars said what they hold; nothing had changed, nothing is re-sent
    for arn in mesh.arns("web", "front"):
        assert after[arn]["Transport"] == "delta"
        assert after[arn]["ResourcesSent"] == {"CDS": 0, "EDS": 0, "LDS": 0, "RDS": 0}, (arn, after[arn])


def test_scaling_the_called_service_in_under_load_fails_no_call(mesh):
    ecs = mesh.server.client("ecs")
    before = mesh.arns("web")
    assert len(before) == 2
    routes = routes_of_front(mesh)
    assert mesh.alias in routes and "retry_policy" not in routes, routes  # no retry hides a failure
    load = Load(mesh)
    time.sleep(2)
    with xds_held(mesh):  # front hears of the scale-in a second late
        mesh.server.aws("ecs", "update-service", "--cluster", mesh.cluster, "--service", "web",
                        "--desired-count", "1")
        wait_for(lambda: stopping(ecs, mesh.cluster, before), timeout=60, what="one of web's tasks stopping")
        time.sleep(1)

    def stopped() -> bool:
        tasks = ecs.describe_tasks(cluster=mesh.cluster, tasks=before)["tasks"]
        return sum(t["lastStatus"] == "STOPPED" for t in tasks) == 1

    wait_for(stopped, timeout=120, what="one of web's tasks stopped")
    time.sleep(2)
    result = load.finish()
    assert result["failed"] == 0, result
    assert result["ok"] > 50, result


def test_rolling_the_called_service_to_a_new_revision_under_load_fails_no_call(mesh):
    ecs = mesh.server.client("ecs")
    v2 = prompt_web(mesh.server, "web-v2")
    assert "retry_policy" not in routes_of_front(mesh)

    def rolled() -> bool:
        [s] = ecs.describe_services(cluster=mesh.cluster, services=["web"])["services"]
        tasks = running(ecs, mesh.cluster, "web")
        return len(s["deployments"]) == 1 and [t["taskDefinitionArn"] for t in tasks] == [v2]

    def old_stopped() -> bool:
        arns = ecs.list_tasks(cluster=mesh.cluster, serviceName="web", desiredStatus="STOPPED")["taskArns"]
        tasks = ecs.describe_tasks(cluster=mesh.cluster, tasks=arns)["tasks"] if arns else []
        return len(tasks) >= 2 and all(t["lastStatus"] == "STOPPED" for t in tasks)

    old = mesh.arns("web")
    load = Load(mesh)
    time.sleep(2)
    with xds_held(mesh):  # front hears of the roll (the new task, the old one leaving) late
        mesh.server.aws("ecs", "update-service", "--cluster", mesh.cluster, "--service", "web",
                        "--task-definition", v2)
        wait_for(lambda: stopping(ecs, mesh.cluster, old), timeout=120, what="an old task stopping")
        time.sleep(1)
    wait_for(rolled, timeout=180, what="web rolled to its second revision")
    wait_for(old_stopped, timeout=120, what="the old revision's task stopped")
    time.sleep(2)
    result = load.finish()
    assert result["failed"] == 0, result
    assert result["bodies"].get("web-v2", 0) > 0 and result["ok"] > 50, result
