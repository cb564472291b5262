"""Services benchmark: time for a 30-task service to reach a steady state from zero.

Usage: ``.venv/bin/python bench/runner_services.py [--tasks 30] [--runs 1] [--network bridge|awsvpc]``

It starts its own ``dockyard up`` on free ports with a temporary data dir, pushes a busybox
image to Dockyard's registry, registers a task definition whose container only sleeps, then
per run: CreateService with ``desiredCount=--tasks`` and measures from the CreateService call
until every task is RUNNING and until DescribeServices shows the service steady (one
deployment, COMPLETED, runningCount == desiredCount: what ``aws ecs wait services-stable``
checks). The service is deleted (force) and its containers removed between runs. Control
plane CPU (user + system of the ``dockyard up`` process) over the run is reported per task.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.images import busybox_image  # noqa: E402
from tests.support.registry import docker_push  # noqa: E402
from tests.support.server import Dockyard, cpu_seconds  # noqa: E402


def _drain(ecs, cluster: str) -> None:
    for arn in ecs.list_services(cluster=cluster, maxResults=100)["serviceArns"]:
        ecs.delete_service(cluster=cluster, service=arn, force=True)
    deadline = time.monotonic() + 300
    while ecs.list_tasks(cluster=cluster)["taskArns"] and time.monotonic() < deadline:
        time.sleep(0.5)
    ids = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label=dockyard.cluster={cluster}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def run_once(
    server: Dockyard, ecs, cluster: str, definition: str, tasks: int, network: str
) -> dict[str, float]:
    name = f"bench-{int(time.time() * 1000)}"
    kwargs = {}
    if network == "awsvpc":
        kwargs["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-bench"]}}
    cpu0 = cpu_seconds(server.proc.pid)
    t0 = time.monotonic()
    ecs.create_service(
        cluster=cluster, serviceName=name, taskDefinition=definition, desiredCount=tasks, **kwargs
    )
    all_running = steady = None
    while steady is None:
        s = ecs.describe_services(cluster=cluster, services=[name])["services"][0]
        now = time.monotonic() - t0
        if all_running is None and s["runningCount"] == tasks:
            all_running = now
        deps = s["deployments"]
        if len(deps) == 1 and deps[0]["rolloutState"] == "COMPLETED" and s["runningCount"] == tasks:
            steady = now
        if now > 600:
            raise SystemExit(f"not steady after 600 s: {s['runningCount']}/{tasks} running")
        time.sleep(0.1)
    cpu = cpu_seconds(server.proc.pid) - cpu0
    _drain(ecs, cluster)
    return {"all_running": all_running or steady, "steady": steady, "cpu_per_task_ms": cpu / tasks * 1000}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", type=int, default=30)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--network", choices=["bridge", "awsvpc"], default="bridge")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-services-"))
    server = Dockyard(tmp / "data").start()
    try:
        docker_push(server, busybox_image(), "bench-busybox:latest")
        ecs = server.client("ecs")
        cluster = "bench"
        ecs.create_cluster(clusterName=cluster)
        definition = ecs.register_task_definition(
            family="bench-sleeper",
            networkMode=args.network,
            containerDefinitions=[
                {
                    "name": "main",
                    "image": "bench-busybox:latest",
                    "memory": 16,
                    "command": ["sleep", "3600"],
                }
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        results = [
            run_once(server, ecs, cluster, definition, args.tasks, args.network) for _ in range(args.runs)
        ]
        for i, r in enumerate(results, 1):
            print(
                f"run {i}: {args.tasks} tasks ({args.network}) all RUNNING {r['all_running']:.2f} s, "
                f"steady {r['steady']:.2f} s, control-plane CPU {r['cpu_per_task_ms']:.0f} ms/task"
            )
        if len(results) > 1:
            print(f"median steady: {statistics.median(r['steady'] for r in results):.2f} s")
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
