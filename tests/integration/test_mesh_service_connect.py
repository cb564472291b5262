"""End to end through ``dockyard up``: two ECS services with Service Connect (the real aws CLI),
their tasks' sidecars configured by the mesh controller, an app calling another service by its
alias through its own sidecar, and ``dockyard mesh status`` showing both sidecars ready."""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any

from tests.integration.test_ecs_service_connect import NET, namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.support.images import echo_image


def task_definition(dockyard: Any, family: str, env: dict[str, str]) -> str:
    container = {"name": "app", "image": echo_image(), "memory": 32, "essential": True,
                 "environment": [{"name": k, "value": v} for k, v in env.items()],
                 "portMappings": [{"containerPort": 8080, "name": "web", "appProtocol": "http"}]}
    out = dockyard.aws("ecs", "register-task-definition", "--family", family, "--network-mode", "awsvpc",
                       "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


def running(ecs: Any, cluster: str, service: str) -> list[dict[str, Any]]:
    """The service's tasks once every one of them is RUNNING (its app started after its sidecar
    was ready)."""
    tasks = service_tasks(ecs, cluster, service)
    return tasks if tasks and all(t["lastStatus"] == "RUNNING" for t in tasks) else []


def create(dockyard: Any, cluster: str, name: str, td: str, config: dict[str, Any]) -> None:
    dockyard.aws("ecs", "create-service", "--cluster", cluster, "--service-name", name,
                 "--task-definition", td, "--desired-count", "1", "--network-configuration", NET,
                 "--service-connect-configuration", json.dumps(config))


def app_container(task_arn: str) -> str:
    """The id of the task's ``app`` container."""
    return subprocess.run(
        ["docker", "ps", "-q", "--filter", f"label=dockyard.task-arn={task_arn}",
         "--filter", "label=dockyard.container-name=app"], capture_output=True, text=True, check=True,
    ).stdout.split()[0]


def curl_alias(app: str, alias: str, count: int = 1, *curl_args: str, path: str = "/") -> str:
    """``curl`` of ``http://<alias><path>`` ``count`` times over one keep-alive connection, run by
    the host's curl in the app's network namespace (the test image's busybox wget cannot resolve
    there) at the address the app's ``/etc/hosts`` gives the alias: the bodies, each followed
    by a newline."""
    pid = subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", app], capture_output=True,
                         text=True, check=True).stdout.strip()
    hosts = subprocess.run(["docker", "exec", app, "cat", "/etc/hosts"], capture_output=True,
                           text=True).stdout
    address = next(line.split()[0] for line in hosts.splitlines() if line.endswith(alias))
    out = subprocess.run(["nsenter", "-t", pid, "-n", "curl", "-s", "--max-time", str(5 + count // 50),
                          "-w", "\\n", "--resolve", f"{alias}:80:{address}", *curl_args,
                          *[f"http://{alias}{path}"] * count], capture_output=True, text=True)
    return out.stdout


def mesh_status(dockyard: Any, *common: str) -> dict[str, dict[str, Any]]:
    """``dockyard mesh status --json`` by node."""
    proc = dockyard.cli("mesh", "status", "--json", *common)
    assert proc.returncode == 0, proc.stderr
    return {r["Node"]: r for r in json.loads(proc.stdout)}


def test_an_app_reaches_another_service_by_its_alias_through_the_sidecars(dockyard):
    ns = namespace(dockyard, f"e2e-{uuid.uuid4().hex[:6]}.local")
    alias = f"web.{ns['Name']}"
    ecs = dockyard.client("ecs")
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]
    with own_cluster(dockyard, "mesh-e2e") as cluster:
        web = task_definition(dockyard, "e2e-web", {"VERSION": "web-v1"})
        create(dockyard, cluster, "web", web, {"enabled": True, "namespace": ns["Name"], "services": [
            {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 80, "dnsName": alias}]}]})
        wait_for(lambda: running(ecs, cluster, "web"), timeout=180, what="web's task running")
        front = task_definition(dockyard, "e2e-front", {"VERSION": "front", "DOWNSTREAM_URL": f"http://{alias}/"})
        create(dockyard, cluster, "front", front, {"enabled": True, "namespace": ns["Name"]})
        [task] = wait_for(lambda: running(ecs, cluster, "front"), timeout=180,
                          what="front's task running")
        app = app_container(task["taskArn"])

        def call() -> str:
            return curl_alias(app, alias).strip()

        assert wait_for(lambda: call() == "web-v1", timeout=60, what=f"{alias} through the sidecars")

        arns = [t["taskArn"] for s in ("web", "front") for t in service_tasks(ecs, cluster, s)]

        def all_ready() -> dict[str, dict[str, Any]] | None:
            rows = mesh_status(dockyard, *common)
            return rows if all(a in rows and rows[a]["Ready"] for a in arns) else None

        rows = wait_for(all_ready, timeout=30, what="both sidecars ready in dockyard mesh status")
        for arn in arns:
            assert rows[arn]["Meshed"] and rows[arn]["Connected"] and rows[arn]["LastNack"] is None
