"""The mesh on container instances that are not the local engine: three extra dockerds
registered with ``dockyard agent`` (the local engine left out), a Service Connect service of
six tasks spread over them and a client service, its sidecar's calls to the service's alias
through both sidecars; then one host is drained (UpdateContainerInstancesState) under
continuous calls: its tasks are replaced on the other hosts, leave every sidecar's endpoints
and stop, and not one call fails (issue 11 item 4: every container instance; issue 17 item 1
and 6: a drain through the mesh).

The extra engines run with ``--iptables=false``; the main engine's ``FORWARD`` policy is DROP,
so the module lets traffic between their bridges (``dy4``-``dy6``) through with a rule of its
own, removed afterwards."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_ecs_service_connect import NET, namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_mesh_failover import LOAD
from tests.integration.test_mesh_service_connect import task_definition
from tests.support.dockerd import ExtraDockerd, extra_dockerds
from tests.support.images import busybox_image, echo_image
from tests.support.server import BIN, Dockyard

CLUSTER = "meshhosts"
FORWARD = ["FORWARD", "-i", "dy+", "-o", "dy+", "-j", "ACCEPT"]


def _agent(d: Dockyard, n: ExtraDockerd) -> subprocess.Popen[str]:
    agent = subprocess.Popen(
        [str(BIN / "dockyard"), "agent", "--data-dir", str(d.data_dir), "--control-plane", d.control_url,
         "--docker-host", n.url, "--cluster", CLUSTER, "--attribute", f"rack=r{n.index}", "--heartbeat", "1"],
        stdout=subprocess.PIPE, text=True)
    assert agent.stdout is not None and "registered as arn:aws:ecs:" in agent.stdout.readline()
    return agent


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[tuple[Dockyard, list]]:
    tmp = tmp_path_factory.mktemp("meshhosts")
    with extra_dockerds(tmp / "dockerds", 3, images=(busybox_image(), echo_image()), first=4) as daemons:
        subprocess.run(["iptables", "-I", *FORWARD], check=True, capture_output=True)
        server = Dockyard(tmp / "data", env={"DOCKYARD_DOCKER_HOST": "none", "DOCKYARD_AGENT_TIMEOUT": "6"})
        server.start()
        agents: list[subprocess.Popen[str]] = []
        try:
            server.aws("ecs", "create-cluster", "--cluster-name", CLUSTER)
            agents = [_agent(server, n) for n in daemons]
            yield server, daemons
        finally:
            ecs = server.client("ecs") if server.proc else None
            if ecs is not None:
                for arn in ecs.list_services(cluster=CLUSTER)["serviceArns"]:
                    ecs.delete_service(cluster=CLUSTER, service=arn, force=True)
                wait_for(lambda: not ecs.list_tasks(cluster=CLUSTER)["taskArns"], 120,
                         what="every task to stop")
            for a in agents:
                a.terminate()
                a.wait(10)
            if server.proc is not None:
                server.stop()
            subprocess.run(["iptables", "-D", *FORWARD], capture_output=True)


def _instances(ecs: Any) -> dict[str, str]:
    """rack -> container instance ARN."""
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    out = {}
    described = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)
    for inst in described["containerInstances"]:
        rack = next(a["value"] for a in inst["attributes"] if a["name"] == "rack")
        out[rack] = inst["containerInstanceArn"]
    return out


def _running(ecs: Any, service: str) -> list[dict[str, Any]]:
    return [t for t in service_tasks(ecs, CLUSTER, service) if t["lastStatus"] == "RUNNING"]


def test_a_host_drained_under_load_through_the_mesh_fails_no_call(fleet: tuple[Dockyard, list]) -> None:
    server, daemons = fleet
    ecs = server.client("ecs")
    ns = namespace(server, f"mh-{uuid.uuid4().hex[:6]}.local")
    alias = f"web.{ns['Name']}"
    racks = _instances(ecs)
    web = task_definition(server, "mh-web", {"VERSION": "web"})
    entry = {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 80, "dnsName": alias}]}
    server.aws("ecs", "create-service", "--cluster", CLUSTER, "--service-name", "web", "--task-definition",
               web, "--desired-count", "6", "--network-configuration", NET, "--placement-strategy",
               "type=spread,field=instanceId", "--service-connect-configuration",
               json.dumps({"enabled": True, "namespace": ns["Name"], "services": [entry]}))
    front = task_definition(server, "mh-front", {"VERSION": "front"})
    server.aws("ecs", "create-service", "--cluster", CLUSTER, "--service-name", "front", "--task-definition",
               front, "--desired-count", "1", "--network-configuration", NET, "--placement-constraints",
               "type=memberOf,expression=attribute:rack==r4", "--service-connect-configuration",
               json.dumps({"enabled": True, "namespace": ns["Name"]}))
    wait_for(lambda: len(_running(ecs, "web")) == 6, 300, what="web's six tasks running on the three hosts")
    [task] = wait_for(lambda: _running(ecs, "front"), 180, what="front's task running")
    assert task["containerInstanceArn"] == racks["r4"]
    assert {t["containerInstanceArn"] for t in _running(ecs, "web")} == set(racks.values())

    # front's app, on the engine of rack r4: its network namespace and the alias's address
    d4 = next(d for d in daemons if d.index == 4)
    app = next(c["runtimeId"] for c in task["containers"] if c["name"] == "app")
    pid = d4.docker("inspect", "-f", "{{.State.Pid}}", app).stdout.strip()
    hosts = d4.docker("exec", app, "cat", "/etc/hosts").stdout
    address = next(line.split()[0] for line in hosts.splitlines() if line.endswith(alias))

    def call_all() -> bool:  # every web task answers through front's sidecar before the drain
        probe = subprocess.run(["nsenter", "-t", pid, "-n", "curl", "-s", "-m", "5", "-H", f"Host: {alias}",
                                f"http://{address}/"], capture_output=True, text=True)
        return probe.returncode == 0 and "web" in probe.stdout

    wait_for(call_all, 60, what="a call from front through both sidecars")
    stop = Path(server.data_dir) / f"stop-{uuid.uuid4().hex[:6]}"
    load = subprocess.Popen(["nsenter", "-t", pid, "-n", sys.executable, "-c", LOAD, address, alias,
                             str(stop)], stdout=subprocess.PIPE, text=True)
    time.sleep(2)
    drained = racks["r5"]
    out = ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained],
                                               status="DRAINING")
    assert out["failures"] == []

    def moved() -> bool:
        tasks = _running(ecs, "web")
        return len(tasks) == 6 and drained not in {t["containerInstanceArn"] for t in tasks} and not [
            t for t in service_tasks(ecs, CLUSTER, "web", status="STOPPED") if t["lastStatus"] != "STOPPED"]

    try:
        wait_for(moved, 240, what="web's tasks to leave the drained host")
        time.sleep(2)
    finally:
        stop.touch()
        result = json.loads(load.communicate(timeout=60)[0])
        ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[drained], status="ACTIVE")
    print(f"drain under load: {result['ok']} calls, {result['failed']} failed")
    assert result["failed"] == 0, result
    assert result["ok"] > 50 and set(result["bodies"]) == {"web"}, result
    gone = ecs.describe_tasks(cluster=CLUSTER, tasks=[t["taskArn"] for t in service_tasks(
        ecs, CLUSTER, "web", status="STOPPED")])["tasks"]
    assert len(gone) == 2 and {t["stoppedReason"] for t in gone} == {"Task stopped during instance draining"}
