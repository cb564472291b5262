"""Tasks on three extra Docker Engines registered with ``dockyard agent``: placement across
real hosts, a dockerd restart, a SIGKILLed control plane, the event stream and the CLI.

A Dockyard of this module's own runs with the local engine left out (``DOCKYARD_DOCKER_HOST
=none``), so its only container instances are the three extra daemons.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dockyard.client import Client
from runner.tasks_cli import follow_events
from tests.integration.test_ecs_tasks import register, run, until_status, wait_for
from tests.support.dockerd import ExtraDockerd, extra_dockerds
from tests.support.images import busybox_image
from tests.support.server import BIN, Dockyard

CLUSTER = "hosts"


@pytest.fixture(scope="module")
def daemons(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[list[ExtraDockerd]]:
    with extra_dockerds(tmp_path_factory.mktemp("dockerds"), 3, images=(busybox_image(),)) as found:
        yield found


AGENT_TIMEOUT = 4  # seconds (config ``agent_timeout``); agents beat every second


def _agent(d: Dockyard, n: ExtraDockerd, cluster: str = CLUSTER) -> subprocess.Popen:
    """``dockyard agent`` for engine ``n`` (attribute ``rack=r<n>``), once it has registered."""
    agent = subprocess.Popen(
        [
            str(BIN / "dockyard"),
            "agent",
            "--data-dir",
            str(d.data_dir),
            "--control-plane",
            d.control_url,
            "--docker-host",
            n.url,
            "--cluster",
            cluster,
            "--attribute",
            f"rack=r{n.index}",
            "--heartbeat",
            "1",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert agent.stdout is not None
    assert "registered as arn:aws:ecs:" in agent.stdout.readline()
    return agent


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, daemons: list[ExtraDockerd]) -> Iterator[Dockyard]:
    env = {"DOCKYARD_DOCKER_HOST": "none", "DOCKYARD_AGENT_TIMEOUT": str(AGENT_TIMEOUT)}
    d = Dockyard(tmp_path_factory.mktemp("hosts") / "data", env=env).start()
    agents: list[subprocess.Popen] = []
    d.agents = agents  # type: ignore[attr-defined]
    try:
        d.aws("ecs", "create-cluster", "--cluster-name", CLUSTER)
        for n in daemons:
            agents.append(_agent(d, n))
        yield d
    finally:
        ecs = d.client("ecs") if d.proc else None
        if ecs is not None:
            for arn in ecs.list_tasks(cluster=CLUSTER)["taskArns"]:
                ecs.stop_task(cluster=CLUSTER, task=arn)
            wait_for(
                lambda: not ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"], 30, "stop"
            )
        for a in agents:
            a.terminate()
            a.wait(10)
        if d.proc is not None:
            d.stop()


@pytest.fixture
def ecs(server: Dockyard) -> Any:
    return server.client("ecs")


def _sleeper(ecs: Any, family: str, memory: int = 32) -> str:
    return register(
        ecs,
        family,
        {
            "name": "s",
            "image": busybox_image(),
            "memory": memory,
            "command": ["sleep", "600"],
            "stopTimeout": 1,
        },
    )


def _instances(ecs: Any) -> dict[str, dict[str, Any]]:
    arns = ecs.list_container_instances(cluster=CLUSTER)["containerInstanceArns"]
    found = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=arns)["containerInstances"]
    return {i["containerInstanceArn"]: i for i in found}


def _daemon_of(inst: dict[str, Any], daemons: list[ExtraDockerd]) -> ExtraDockerd:
    rack = next(a["value"] for a in inst["attributes"] if a["name"] == "rack")
    return daemons[int(rack[1:]) - 1]


def test_agents_register_each_extra_engine_with_its_capacity(ecs: Any, daemons: list[ExtraDockerd]) -> None:
    instances = _instances(ecs)
    assert len(instances) == 3
    for inst in instances.values():
        d = _daemon_of(inst, daemons)
        info = json.loads(d.docker("info", "--format", "{{json .}}").stdout)
        registered = {
            r["name"]: r["integerValue"] for r in inst["registeredResources"] if r["type"] == "INTEGER"
        }
        assert registered == {"CPU": info["NCPU"] * 1024, "MEMORY": info["MemTotal"] // (1024 * 1024)}
        assert inst["agentConnected"] is True
        attrs = {a["name"]: a.get("value") for a in inst["attributes"]}
        assert attrs["ecs.os-type"] == "linux" and attrs["rack"] == f"r{d.index}"


def test_distinct_instance_puts_each_task_on_its_own_engine(ecs: Any, daemons: list[ExtraDockerd]) -> None:
    td = _sleeper(ecs, "spread-me")
    out = ecs.run_task(
        cluster=CLUSTER, taskDefinition=td, count=3, placementConstraints=[{"type": "distinctInstance"}]
    )
    assert out["failures"] == []
    arns = [t["taskArn"] for t in out["tasks"]]
    tasks = [until_status(ecs, CLUSTER, a, "RUNNING") for a in arns]
    assert len({t["containerInstanceArn"] for t in tasks}) == 3
    instances = _instances(ecs)
    for t in tasks:
        d = _daemon_of(instances[t["containerInstanceArn"]], daemons)
        running = d.docker("ps", "-q", "--no-trunc").stdout.split()
        assert t["containers"][0]["runtimeId"] in running
    again = ecs.run_task(
        cluster=CLUSTER, taskDefinition=td, placementConstraints=[{"type": "distinctInstance"}], group="other"
    )
    assert again["failures"] == []
    for a in [*arns, again["tasks"][0]["taskArn"]]:
        ecs.stop_task(cluster=CLUSTER, task=a)


def test_a_host_whose_agent_dies_is_disconnected_and_gets_no_tasks_until_it_comes_back(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    td = _sleeper(ecs, "heartbeat")
    rack1 = [{"type": "memberOf", "expression": "attribute:rack == r1"}]

    def connected() -> dict[int, bool]:
        return {_daemon_of(i, daemons).index: i["agentConnected"] for i in _instances(ecs).values()}

    assert connected() == {1: True, 2: True, 3: True}
    agents: list[subprocess.Popen] = server.agents  # type: ignore[attr-defined]
    agents[0].kill()
    agents[0].wait(10)
    wait_for(lambda: connected() == {1: False, 2: True, 3: True}, 30, "engine 1 to show agentConnected false")
    refused = ecs.run_task(cluster=CLUSTER, taskDefinition=td, placementConstraints=rack1)
    assert refused["tasks"] == [] and refused["failures"]
    spread = ecs.run_task(cluster=CLUSTER, taskDefinition=td, count=4)
    assert spread["failures"] == [] and len(spread["tasks"]) == 4
    placed = {_daemon_of(_instances(ecs)[t["containerInstanceArn"]], daemons).index for t in spread["tasks"]}
    assert placed <= {2, 3}

    agents[0] = _agent(server, daemons[0])
    assert connected() == {1: True, 2: True, 3: True}
    arn = run(ecs, CLUSTER, td, placementConstraints=rack1)
    until_status(ecs, CLUSTER, arn, "RUNNING")
    for a in [arn, *(t["taskArn"] for t in spread["tasks"])]:
        ecs.stop_task(cluster=CLUSTER, task=a)
    for a in [arn, *(t["taskArn"] for t in spread["tasks"])]:
        until_status(ecs, CLUSTER, a, "STOPPED")


def test_member_of_places_by_custom_attribute(ecs: Any, daemons: list[ExtraDockerd]) -> None:
    td = _sleeper(ecs, "rack-two")
    arn = run(
        ecs, CLUSTER, td, placementConstraints=[{"type": "memberOf", "expression": "attribute:rack == r2"}]
    )
    t = until_status(ecs, CLUSTER, arn, "RUNNING")
    assert _daemon_of(_instances(ecs)[t["containerInstanceArn"]], daemons).index == 2
    none = ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=td,
        placementConstraints=[{"type": "memberOf", "expression": "attribute:rack == r9"}],
    )
    assert none["tasks"] == [] and none["failures"]
    ecs.stop_task(cluster=CLUSTER, task=arn)
    until_status(ecs, CLUSTER, arn, "STOPPED")


def test_a_dockerd_restart_stops_its_tasks_and_the_engine_takes_new_ones(
    ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    td = _sleeper(ecs, "restart-me")
    arn = run(
        ecs, CLUSTER, td, placementConstraints=[{"type": "memberOf", "expression": "attribute:rack == r3"}]
    )
    until_status(ecs, CLUSTER, arn, "RUNNING")
    daemons[2].restart()
    t = until_status(ecs, CLUSTER, arn, "STOPPED", timeout=60)
    assert t["stopCode"] == "EssentialContainerExited"
    assert daemons[2].docker("ps", "-q").stdout.split() == []
    again = run(
        ecs, CLUSTER, td, placementConstraints=[{"type": "memberOf", "expression": "attribute:rack == r3"}]
    )
    until_status(ecs, CLUSTER, again, "RUNNING")
    ecs.stop_task(cluster=CLUSTER, task=again)
    until_status(ecs, CLUSTER, again, "STOPPED")


def test_after_sigkill_the_control_plane_adopts_its_containers_and_removes_untracked_ones(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    td = _sleeper(ecs, "survive")
    arns = [t["taskArn"] for t in ecs.run_task(cluster=CLUSTER, taskDefinition=td, count=3)["tasks"]]
    tasks = [until_status(ecs, CLUSTER, a, "RUNNING") for a in arns]
    before = {t["taskArn"]: t["containers"][0]["runtimeId"] for t in tasks}
    labels = [d.docker("ps", "--format", '{{.Label "dockyard.owner"}}').stdout.split() for d in daemons]
    owner = next(o for found in labels for o in found if o)
    # An untracked container wearing this installation's labels: it must not survive.
    stray_arn = f"arn:aws:ecs:us-east-1:000000000000:task/{CLUSTER}/{uuid.uuid4().hex}"
    stray = (
        daemons[0]
        .docker(
            "run",
            "-d",
            "--label",
            f"dockyard.task-arn={stray_arn}",
            "--label",
            f"dockyard.owner={owner}",
            "--label",
            f"dockyard.cluster={CLUSTER}",
            busybox_image(),
            "sleep",
            "600",
        )
        .stdout.strip()
    )
    server.kill()
    server.start()
    ecs = server.client("ecs")
    wait_for(lambda: daemons[0].docker("inspect", stray).returncode != 0, 30, "the stray container to go")
    for arn, cid in before.items():
        t = describe_one(ecs, arn)
        assert t["lastStatus"] == "RUNNING" and t["containers"][0]["runtimeId"] == cid
    labelled = sum(
        len(d.docker("ps", "-q", "--filter", "label=dockyard.owner=" + owner).stdout.split()) for d in daemons
    )
    assert labelled == 3  # no duplicate, no orphan
    for arn in arns:
        ecs.stop_task(cluster=CLUSTER, task=arn)
    for arn in arns:
        until_status(ecs, CLUSTER, arn, "STOPPED")


def describe_one(ecs: Any, arn: str) -> dict[str, Any]:
    return ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]


def test_task_state_changes_stream_as_server_sent_events(server: Dockyard, ecs: Any) -> None:
    key, secret = server.credentials
    client = Client(server.control_url, key, secret)
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def follow() -> None:
        for e in follow_events(client, None, CLUSTER, timeout=60):
            seen.append(e)
            if e.get("type") == "task" and e.get("lastStatus") == "STOPPED":
                done.set()
                return

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    time.sleep(0.5)  # the stream starts "now": let it connect first
    td = _sleeper(ecs, "watched")
    arn = run(ecs, CLUSTER, td)
    until_status(ecs, CLUSTER, arn, "RUNNING")
    ecs.stop_task(cluster=CLUSTER, task=arn)
    assert done.wait(60)
    statuses = [e["lastStatus"] for e in seen if e.get("taskArn") == arn]
    # Each event carries the task's state when it is sent: the first ones may already say PENDING.
    assert statuses[0] in ("PROVISIONING", "PENDING") and "RUNNING" in statuses
    assert statuses.index("RUNNING") < statuses.index("STOPPED") == len(statuses) - 1
    anonymous = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", server.control_url + "/events"],
        capture_output=True,
        text=True,
    )
    assert anonymous.stdout in ("403", "")


def test_ps_and_logs_show_tasks_and_their_output(server: Dockyard, ecs: Any) -> None:
    td = register(
        ecs,
        "chatty",
        {
            "name": "talk",
            "image": busybox_image(),
            "memory": 16,
            "command": ["sh", "-c", "echo hello from the task; sleep 600"],
            "stopTimeout": 1,
        },
    )
    arn = run(ecs, CLUSTER, td)
    until_status(ecs, CLUSTER, arn, "RUNNING")
    task_id = arn.rsplit("/", 1)[1]
    env_args = ["--data-dir", str(server.data_dir), "--endpoint-url", server.control_url]
    ps = _cli(server, "ps", *env_args)
    assert task_id in ps and "RUNNING" in ps and "chatty:" in ps
    logs = wait_for(
        lambda: "hello from the task" in (out := _cli(server, "logs", task_id, *env_args)) and out,
        10,
        "the log line",
    )
    assert logs.strip() == "hello from the task"
    missing = subprocess.run(
        [str(BIN / "dockyard"), "logs", "f" * 32, *env_args], capture_output=True, text=True
    )
    assert missing.returncode == 1 and "no task" in missing.stderr
    ecs.stop_task(cluster=CLUSTER, task=arn)
    until_status(ecs, CLUSTER, arn, "STOPPED")
    assert task_id in _cli(server, "ps", "--all", *env_args)


def test_awslogs_output_of_a_remote_engine_survives_a_sigkilled_control_plane_without_gaps_or_repeats(
    server: Dockyard, ecs: Any
) -> None:
    group = f"/ecs/hosts-{uuid.uuid4().hex[:8]}"
    td = register(ecs, "counter", {
        "name": "count", "image": busybox_image(), "memory": 16, "stopTimeout": 1,
        "command": ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done"],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-stream-prefix": "c", "awslogs-create-group": "true"}},
    })
    arn = run(ecs, CLUSTER, td)
    until_status(ecs, CLUSTER, arn, "RUNNING")
    stream = f"c/count/{arn.rsplit('/', 1)[1]}"

    def lines() -> list[str]:
        out = server.aws("logs", "get-log-events", "--log-group-name", group, "--log-stream-name", stream,
                         "--start-from-head")
        return [e["message"] for e in out["events"]]

    wait_for(lambda: len(lines()) >= 5, 30, "the first lines from the remote engine")
    server.kill()  # lines written meanwhile wait in the engine's log file
    time.sleep(1)
    server.start()
    seen = wait_for(lambda: len(found := lines()) >= 20 and found, 60, "lines after the restart")
    assert seen == [f"line {i}" for i in range(len(seen))]
    server.client("ecs").stop_task(cluster=CLUSTER, task=arn)
    until_status(server.client("ecs"), CLUSTER, arn, "STOPPED")


def _cli(server: Dockyard, *args: str) -> str:
    proc = subprocess.run([str(BIN / "dockyard"), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_exec_runs_in_a_task_on_a_registered_host_through_its_docker_api_url(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    arn = run(ecs, CLUSTER, _sleeper(ecs, "exec-remote"))
    task = until_status(ecs, CLUSTER, arn, "RUNNING")
    daemon = _daemon_of(_instances(ecs)[task["containerInstanceArn"]], daemons)
    cid = task["containers"][0]["runtimeId"]
    on_it = subprocess.run(["docker", "-H", daemon.url, "ps", "-q", "--no-trunc"], capture_output=True,
                           text=True, check=True).stdout.split()
    assert cid in on_it
    proc = subprocess.run(
        [str(BIN / "dockyard"), "exec", "--data-dir", str(server.data_dir), "--endpoint-url",
         server.control_url, "--cluster", CLUSTER, arn.rsplit("/", 1)[1], "--", "sh", "-c",
         "hostname; exit 4"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 4, proc.stderr
    assert proc.stdout.strip() == cid[:12]  # Docker's default hostname: the container's short id
    ecs.stop_task(cluster=CLUSTER, task=arn)
