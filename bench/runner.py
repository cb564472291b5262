"""Runner benchmark: RunTask -> RUNNING and -> HEALTHY latency against a plain ``docker run``.

Usage: ``.venv/bin/python bench/runner.py [--runs 10] [--network bridge|awsvpc]``

It starts its own ``dockyard up`` on free ports with a temporary data dir, pushes the echo
test image (busybox ``httpd``) to Dockyard's registry and registers a task definition with one
container and an ECS health check (``wget`` of the app, interval 5 s: ECS's minimum). Then,
alternating, ``--runs`` times each:

* Dockyard: from the RunTask call until the task's RUNNING event and its HEALTHY event arrive
  on the control port's event stream (``GET /events``, so no polling load on the server);
  the task is then stopped.
* Plain Docker: ``docker run -d`` of the same image reference (already pulled) with the same
  health check, from the call until it returns (the container runs) and until ``docker
  inspect`` reports it healthy (polled every 20 ms); then removed.

Dockyard pulls on every task (ECS's default behaviour: a manifest check against its
registry, the layers being present), which ``docker run`` of a local image does not. Control
plane CPU (user + system of the ``dockyard up`` process) over the Dockyard runs, per task.

``--pull-mib N`` (``.venv/bin/python bench/runner.py --pull-mib 200 --runs 3``) measures image
pre-warming instead, on an extra ``dockerd`` of its own registered with ``dockyard agent``
(the local engine left out) and an image of busybox plus N MiB of random bytes in Dockyard's
registry. Each run removes the image from that host first, then times, alternating:

* cold: RunTask -> RUNNING (polled every 20 ms) on a Dockyard without pre-warming: the task
  pulls the image itself;
* pre-warmed: on a Dockyard with ``prewarm_on_register``, a new task definition revision is
  registered, which pulls the image on the host (timed too, until ``docker image inspect``
  finds it there); then RunTask -> RUNNING, whose task does not pull again;
* plain: ``docker -H <host> pull`` of the same reference then ``docker -H <host> run -d``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dockyard.client import Client  # noqa: E402
from runner.tasks_cli import follow_events  # noqa: E402
from tests.support.images import echo_image  # noqa: E402
from tests.support.registry import docker_push  # noqa: E402
from tests.support.server import Dockyard, cpu_seconds  # noqa: E402

HEALTH = "wget -q -O - http://127.0.0.1:8080/ || exit 1"


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class Watcher:
    """Times of each task's first RUNNING and HEALTHY events."""

    def __init__(self, client: Client, cluster: str) -> None:
        self.running: dict[str, float] = {}
        self.healthy: dict[str, float] = {}
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._follow, args=(client, cluster), daemon=True)
        self.thread.start()

    def _follow(self, client: Client, cluster: str) -> None:
        for e in follow_events(client, None, cluster):
            if e.get("type") != "task":
                continue
            now = time.perf_counter()
            with self.cond:
                arn = e["taskArn"]
                if e.get("lastStatus") == "RUNNING":
                    self.running.setdefault(arn, now)
                if e.get("healthStatus") == "HEALTHY":
                    self.healthy.setdefault(arn, now)
                self.cond.notify_all()

    def wait(self, arn: str, timeout: float = 120) -> tuple[float, float]:
        with self.cond:
            if not self.cond.wait_for(lambda: arn in self.healthy and arn in self.running, timeout):
                raise RuntimeError(f"task {arn} never became RUNNING and HEALTHY")
            return self.running[arn], self.healthy[arn]


def dockyard_once(ecs: Any, watcher: Watcher, cluster: str, family: str, network: str) -> tuple[float, float]:
    kwargs: dict[str, Any] = {}
    if network == "awsvpc":
        kwargs = {
            "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-bench"]}},
        }
    t0 = time.perf_counter()
    arn = ecs.run_task(cluster=cluster, taskDefinition=family, **kwargs)["tasks"][0]["taskArn"]
    running, healthy = watcher.wait(arn)
    ecs.stop_task(cluster=cluster, task=arn)
    return running - t0, healthy - t0


def docker_once(image: str, network: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    cid = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--network",
            "bridge",
            "--memory",
            "64m",
            "--health-cmd",
            HEALTH,
            "--health-interval",
            "5s",
            "--health-timeout",
            "2s",
            "--health-retries",
            "2",
            image,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    running = time.perf_counter() - t0
    while True:
        state = json.loads(
            subprocess.run(
                ["docker", "inspect", "--format", "{{json .State.Health}}", cid],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        if state and state.get("Status") == "healthy":
            break
        time.sleep(0.02)
    healthy = time.perf_counter() - t0
    subprocess.run(["docker", "rm", "-f", cid], capture_output=True)
    return running, healthy


def _until_running(ecs: Any, cluster: str, arn: str, timeout: float = 300) -> float:
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        t = ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0]
        if t["lastStatus"] == "RUNNING":
            return time.perf_counter()
        if t["lastStatus"] == "STOPPED":
            raise RuntimeError(f"task stopped: {t.get('stoppedReason')}")
        time.sleep(0.02)
    raise RuntimeError("task never RUNNING")


def pull_main(args: argparse.Namespace) -> int:
    """The ``--pull-mib`` benchmark (module docstring)."""
    import os

    from tests.support.dockerd import extra_dockerds
    from tests.support.images import busybox_image, busybox_rootfs, docker_import
    from tests.support.registry import docker_env
    from tests.support.server import BIN

    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-prewarm-"))
    tag = f"bench-prewarm-{os.getpid()}:latest"
    blob = os.urandom(args.pull_mib << 20)
    docker_import(tag, busybox_rootfs({"app/blob": blob}), ['CMD ["/bin/sh"]'])
    cluster = "bench-prewarm"
    rows: dict[str, list[float]] = {"cold": [], "prewarm": [], "prewarmed": [], "plain": []}
    with extra_dockerds(tmp / "dockerds", 1, images=(busybox_image(),), first=7) as (host,):
        def start(prewarm: bool) -> tuple[Dockyard, subprocess.Popen[str]]:
            env = {"DOCKYARD_DOCKER_HOST": "none", "DOCKYARD_PREWARM_ON_REGISTER": str(prewarm).lower()}
            server = Dockyard(tmp / f"data-{prewarm}", env=env).start()
            server.client("ecs").create_cluster(clusterName=cluster)
            agent = subprocess.Popen(
                [str(BIN / "dockyard"), "agent", "--data-dir", str(server.data_dir), "--control-plane",
                 server.control_url, "--docker-host", host.url, "--cluster", cluster, "--heartbeat", "2"],
                stdout=subprocess.PIPE, text=True)
            assert agent.stdout is not None and "registered as" in agent.stdout.readline()
            return server, agent

        def clean(ref: str) -> None:
            ids = host.docker("ps", "-aq").stdout.split()
            if ids:
                host.docker("rm", "-f", *ids)
            host.docker("rmi", "-f", ref)

        cold_server, cold_agent = start(False)
        warm_server, warm_agent = start(True)
        try:
            cold_ref, warm_ref = (docker_push(s, tag, "bench-big:latest") for s in (cold_server, warm_server))
            for _ in range(args.runs):
                # cold
                ecs = cold_server.client("ecs")
                clean(cold_ref)
                td = ecs.register_task_definition(family="big", containerDefinitions=[{
                    "name": "c", "image": "bench-big:latest", "memory": 32, "command": ["sleep", "600"],
                    "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
                t0 = time.perf_counter()
                arn = ecs.run_task(cluster=cluster, taskDefinition=td)["tasks"][0]["taskArn"]
                rows["cold"].append(_until_running(ecs, cluster, arn) - t0)
                ecs.stop_task(cluster=cluster, task=arn)
                # pre-warmed
                ecs = warm_server.client("ecs")
                ref = warm_ref
                clean(cold_ref)
                clean(ref)
                t0 = time.perf_counter()
                td = ecs.register_task_definition(family="big", containerDefinitions=[{
                    "name": "c", "image": "bench-big:latest", "memory": 32, "command": ["sleep", "600"],
                    "stopTimeout": 1}])["taskDefinition"]["taskDefinitionArn"]
                while host.docker("image", "inspect", ref).returncode != 0:
                    time.sleep(0.02)
                rows["prewarm"].append(time.perf_counter() - t0)
                time.sleep(0.5)  # the pre-pull's bookkeeping ends just after the image lands
                t0 = time.perf_counter()
                arn = ecs.run_task(cluster=cluster, taskDefinition=td)["tasks"][0]["taskArn"]
                rows["prewarmed"].append(_until_running(ecs, cluster, arn) - t0)
                ecs.stop_task(cluster=cluster, task=arn)
                # plain docker
                clean(ref)
                env = docker_env(warm_server)
                t0 = time.perf_counter()
                docker = ["docker", "-H", host.url]
                subprocess.run([*docker, "pull", ref], env=env, check=True, capture_output=True)
                subprocess.run([*docker, "run", "-d", ref, "sleep", "600"], env=env, check=True,
                               capture_output=True)
                rows["plain"].append(time.perf_counter() - t0)
                clean(ref)
            print(f"image: busybox + {args.pull_mib} MiB random, runs: {args.runs}, one extra dockerd")
            names = {"cold": "RunTask -> RUNNING, cold host (task pulls)",
                     "prewarm": "register -> image on host (pre-pull)",
                     "prewarmed": "RunTask -> RUNNING, pre-warmed host",
                     "plain": "docker pull && docker run -d"}
            for key, label in names.items():
                v = rows[key]
                print(f"{label:<46} median {statistics.median(v):7.3f} s  min {min(v):7.3f}  "
                      f"max {max(v):7.3f}")
            med = {k: statistics.median(v) for k, v in rows.items()}
            print(f"pre-warmed / cold: {med['prewarmed'] / med['cold']:.3f}; cold / plain: "
                  f"{med['cold'] / med['plain']:.3f}")
            print(json.dumps({"pull_mib": args.pull_mib, "runs": args.runs, **rows}))
        finally:
            for s, a in ((cold_server, cold_agent), (warm_server, warm_agent)):
                a.terminate()
                a.wait(10)
                s.stop()
            subprocess.run(["docker", "rmi", "-f", tag], capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--network", choices=["bridge", "awsvpc"], default="bridge")
    ap.add_argument("--pull-mib", type=int, default=0,
                    help="measure image pre-warming with an image of N MiB")
    args = ap.parse_args()
    if args.pull_mib:
        return pull_main(args)
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-runner-"))
    server = Dockyard(tmp / "data").start()
    cluster = "bench-runner"
    try:
        ecs = server.client("ecs")
        ecs.create_cluster(clusterName=cluster)
        image = docker_push(server, echo_image(), "bench-echo:latest")
        container: dict[str, Any] = {
            "name": "web",
            "image": "bench-echo:latest",
            "memory": 64,
            "stopTimeout": 1,
            "healthCheck": {"command": ["CMD-SHELL", HEALTH], "interval": 5, "timeout": 2, "retries": 2},
        }
        extra: dict[str, Any] = {}
        if args.network == "awsvpc":
            extra = {
                "networkMode": "awsvpc",
                "requiresCompatibilities": ["FARGATE"],
                "cpu": "256",
                "memory": "512",
            }
        ecs.register_task_definition(family="bench", containerDefinitions=[container], **extra)
        key, secret = server.credentials
        watcher = Watcher(Client(server.control_url, key, secret), cluster)
        time.sleep(0.5)
        dockyard_once(ecs, watcher, cluster, "bench", args.network)  # warm-up (first pull)
        assert server.proc is not None
        ours: list[tuple[float, float]] = []
        plain: list[tuple[float, float]] = []
        cpu = 0.0
        for _ in range(args.runs):
            before = cpu_seconds(server.proc.pid)
            ours.append(dockyard_once(ecs, watcher, cluster, "bench", args.network))
            cpu += cpu_seconds(server.proc.pid) - before
            plain.append(docker_once(image, args.network))
        print(f"runs: {args.runs}, network: {args.network}")
        print(
            f"{'measure':<28}{'dockyard p50':>14}{'p95':>8}{'docker p50':>12}{'p95':>8}{'overhead p50':>14}"
        )
        for i, name in enumerate(("RunTask -> RUNNING (s)", "RunTask -> HEALTHY (s)")):
            a, b = [x[i] for x in ours], [x[i] for x in plain]
            print(
                f"{name:<28}{statistics.median(a):>14.3f}{_pct(a, 95):>8.3f}{statistics.median(b):>12.3f}"
                f"{_pct(b, 95):>8.3f}{statistics.median(a) - statistics.median(b):>14.3f}"
            )
        print(f"control-plane CPU per task (start + stop): {cpu / args.runs * 1000:.0f} ms")
    finally:
        ids = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=dockyard.cluster={cluster}"],
            capture_output=True,
            text=True,
        ).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
