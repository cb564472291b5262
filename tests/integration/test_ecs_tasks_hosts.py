"""Tasks on three extra Docker Engines registered with ``dockyard agent``: placement across
real hosts, a dockerd restart, a SIGKILLed control plane, the event stream, the CLI and a
host drained with ``dockyard agent drain``.

A Dockyard of this module's own runs with the local engine left out (``DOCKYARD_DOCKER_HOST
=none``), so its only container instances are the three extra daemons.
"""

from __future__ import annotations

import contextlib
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


@contextlib.contextmanager
def _spread(ecs: Any, service: str, family: str, count: int = 3) -> Iterator[dict[str, str]]:
    """A service of ``count`` sleepers spread over the hosts: yields where they run, once they
    all do on distinct hosts; deleted (and its tasks gone) afterwards."""
    td = _sleeper(ecs, family, memory=16)
    ecs.create_service(cluster=CLUSTER, serviceName=service, taskDefinition=td, desiredCount=count,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}])
    try:
        yield wait_for(lambda: len(set((p := _placed(ecs, service)).values())) == count and p,
                       120, "a task on each host")
    finally:
        for t in _placed(ecs, service):  # protection would keep a task past the deletion
            ecs.update_task_protection(cluster=CLUSTER, tasks=[t], protectionEnabled=False)
        ecs.delete_service(cluster=CLUSTER, service=service, force=True)
        wait_for(lambda: not _placed(ecs, service), 90, f"the {service} service's tasks to stop")


def _placed(ecs: Any, service: str) -> dict[str, str]:
    """Running tasks of ``service``: task ARN -> container instance ARN."""
    arns = ecs.list_tasks(cluster=CLUSTER, serviceName=service, desiredStatus="RUNNING")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"] if arns else []
    return {t["taskArn"]: t["containerInstanceArn"] for t in tasks if t["lastStatus"] == "RUNNING"}


def test_draining_a_host_moves_its_service_tasks_and_leaves_standalone_ones(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    td = _sleeper(ecs, "drain-me", memory=16)
    ecs.create_service(cluster=CLUSTER, serviceName="drained", taskDefinition=td, desiredCount=6,
                       placementStrategy=[{"type": "spread", "field": "instanceId"}],
                       deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200})
    by_rack = {_daemon_of(i, daemons).index: arn for arn, i in _instances(ecs).items()}
    host = by_rack[1]
    try:
        wait_for(lambda: len(p := _placed(ecs, "drained")) == 6 and len(set(p.values())) == 3 and p, 120,
                 "six tasks over three hosts")
        standalone = run(ecs, CLUSTER, td, placementConstraints=[
            {"type": "memberOf", "expression": "attribute:rack == r1"}])
        until_status(ecs, CLUSTER, standalone, "RUNNING")
        proc = subprocess.run(
            [str(BIN / "dockyard"), "agent", "drain", host.rsplit("/", 1)[1], "--cluster", CLUSTER, "--wait",
             "--data-dir", str(server.data_dir), "--endpoint-url", server.control_url],
            capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr
        assert "DRAINING" in proc.stdout and "0 service tasks left" in proc.stdout, proc.stdout
        placed = _placed(ecs, "drained")
        assert len(placed) == 6 and host not in placed.values()
        # 100 % minimum healthy: every replacement ran before its task on the drained host stopped
        events = [e["message"] for e in ecs.describe_services(cluster=CLUSTER, services=["drained"])[
            "services"][0]["events"]]
        assert any("has started" in m for m in events)
        gone = ecs.list_tasks(cluster=CLUSTER, serviceName="drained", desiredStatus="STOPPED")["taskArns"]
        stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=gone)["tasks"]
        assert {t["stoppedReason"] for t in stopped} == {"Task stopped during instance draining"}
        # the standalone task is left to finish; the heartbeats keep the host DRAINING
        time.sleep(2.5)
        inst = _instances(ecs)[host]
        assert inst["status"] == "DRAINING" and inst["agentConnected"] is True
        assert inst["runningTasksCount"] == 1
        assert describe_one(ecs, standalone)["lastStatus"] == "RUNNING"
        # no new task goes there
        refused = ecs.run_task(cluster=CLUSTER, taskDefinition=td, placementConstraints=[
            {"type": "memberOf", "expression": "attribute:rack == r1"}])
        assert refused["tasks"] == [] and refused["failures"]
        # bad input: an unknown instance is a failure, a bad status an error; nothing changes
        out = ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=["nope"],
                                                   status="DRAINING")
        assert out["failures"][0]["reason"] == "MISSING" and out["containerInstances"] == []
        bad = server.aws("ecs", "update-container-instances-state", "--cluster", CLUSTER,
                         "--container-instances", host, "--status", "REGISTERING", check=False)
        assert bad.returncode != 0 and "status must be ACTIVE or DRAINING" in bad.stderr
        assert _instances(ecs)[host]["status"] == "DRAINING"
        ecs.stop_task(cluster=CLUSTER, task=standalone)
    finally:
        back = ecs.update_container_instances_state(cluster=CLUSTER, containerInstances=[host],
                                                    status="ACTIVE")
        assert back["containerInstances"][0]["status"] == "ACTIVE"
        ecs.delete_service(cluster=CLUSTER, service="drained", force=True)
        wait_for(lambda: not _placed(ecs, "drained"), 90, "the drained service's tasks to stop")


ASG = "arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:{id}:autoScalingGroupName/{name}"


def test_capacity_providers_place_by_base_then_weight(server: Dockyard, ecs: Any,
                                                      daemons: list[ExtraDockerd]) -> None:
    by_rack = {_daemon_of(i, daemons).index: arn for arn, i in _instances(ecs).items()}
    for rack, pool in ((1, "pool-a"), (2, "pool-b"), (3, "pool-b")):
        ecs.put_attributes(cluster=CLUSTER, attributes=[
            {"name": "autoscaling-group", "value": pool, "targetType": "container-instance",
             "targetId": by_rack[rack]}])

    def provider(name: str, pool: str) -> dict[str, Any]:
        return server.aws("ecs", "create-capacity-provider", "--name", name, "--auto-scaling-group-provider",
                          json.dumps({"autoScalingGroupArn": ASG.format(id=uuid.uuid4(), name=pool),
                                      "managedScaling": {"status": "DISABLED"}}))["capacityProvider"]

    a, b = provider("cp-a", "pool-a"), provider("cp-b", "pool-b")
    assert a["status"] == b["status"] == "ACTIVE"
    assert a["autoScalingGroupProvider"]["managedTerminationProtection"] == "DISABLED"
    try:
        put = server.aws("ecs", "put-cluster-capacity-providers", "--cluster", CLUSTER,
                         "--capacity-providers", "cp-a", "cp-b", "--default-capacity-provider-strategy",
                         "capacityProvider=cp-b,weight=1")["cluster"]
        assert put["capacityProviders"] == ["cp-a", "cp-b"]
        assert put["defaultCapacityProviderStrategy"] == [
            {"capacityProvider": "cp-b", "weight": 1, "base": 0}]
        td = _sleeper(ecs, "capacity-me", memory=16)
        # the strategy: base 2 on cp-a, then weights 1:3 -> 6 tasks: 3 on cp-a, 3 on cp-b
        ecs.create_service(cluster=CLUSTER, serviceName="pools", taskDefinition=td, desiredCount=6,
                           capacityProviderStrategy=[{"capacityProvider": "cp-a", "base": 2, "weight": 1},
                                                     {"capacityProvider": "cp-b", "weight": 3}])
        placed = wait_for(lambda: len(p := _placed(ecs, "pools")) == 6 and p, 120, "six tasks")
        tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=list(placed))["tasks"]
        by_provider: dict[str, int] = {}
        for t in tasks:
            by_provider[t["capacityProviderName"]] = by_provider.get(t["capacityProviderName"], 0) + 1
            rack = 1 if t["capacityProviderName"] == "cp-a" else None
            if rack:
                assert t["containerInstanceArn"] == by_rack[1]
            else:
                assert t["containerInstanceArn"] in (by_rack[2], by_rack[3])
        assert by_provider == {"cp-a": 3, "cp-b": 3}
        shown = ecs.describe_services(cluster=CLUSTER, services=["pools"])["services"][0]
        assert "launchType" not in shown and shown["capacityProviderStrategy"][0]["base"] == 2
        # scale out to 10: the split of 10 is 4 / 6
        ecs.update_service(cluster=CLUSTER, service="pools", desiredCount=10)
        placed = wait_for(lambda: len(p := _placed(ecs, "pools")) == 10 and p, 120, "ten tasks")
        described = ecs.describe_tasks(cluster=CLUSTER, tasks=list(placed))["tasks"]
        names = [t["capacityProviderName"] for t in described]
        assert names.count("cp-a") == 4 and names.count("cp-b") == 6
        # RunTask with no launch type takes the cluster's default strategy
        run_out = ecs.run_task(cluster=CLUSTER, taskDefinition=td, count=2)
        assert run_out["failures"] == [] and {t["capacityProviderName"] for t in run_out["tasks"]} == {"cp-b"}
        for t in run_out["tasks"]:
            ecs.stop_task(cluster=CLUSTER, task=t["taskArn"])

        # bad input: ECS's errors, and nothing changes
        def refused(*args: str) -> str:
            proc = server.aws("ecs", *args, check=False)
            assert proc.returncode != 0, args
            return proc.stderr

        assert "No container instance belongs to the Auto Scaling group pool-z" in refused(
            "create-capacity-provider", "--name", "cp-z", "--auto-scaling-group-provider",
            json.dumps({"autoScalingGroupArn": ASG.format(id=1, name="pool-z")}))
        assert "managedScaling must be DISABLED" in refused(
            "create-capacity-provider", "--name", "cp-y", "--auto-scaling-group-provider",
            json.dumps({"autoScalingGroupArn": ASG.format(id=2, name="pool-a"),
                        "managedScaling": {"status": "ENABLED"}}))
        assert "Only one capacity provider" in refused(
            "run-task", "--cluster", CLUSTER, "--task-definition", td, "--capacity-provider-strategy",
            "capacityProvider=cp-a,base=1,weight=1", "capacityProvider=cp-b,base=1,weight=1")
        assert "weight greater than 0" in refused(
            "run-task", "--cluster", CLUSTER, "--task-definition", td, "--capacity-provider-strategy",
            "capacityProvider=cp-a,weight=0", "capacityProvider=cp-b,weight=0")
        assert "not associated with the cluster" in refused(
            "run-task", "--cluster", CLUSTER, "--task-definition", td, "--capacity-provider-strategy",
            "capacityProvider=FARGATE,weight=1")
        assert "both a launchType and capacityProviderStrategy" in refused(
            "run-task", "--cluster", CLUSTER, "--task-definition", td, "--launch-type", "EC2",
            "--capacity-provider-strategy", "capacityProvider=cp-a,weight=1")
        assert "ResourceInUseException" in refused("delete-capacity-provider", "--capacity-provider", "cp-a")
        assert "ResourceInUseException" in refused(
            "put-cluster-capacity-providers", "--cluster", CLUSTER, "--capacity-providers", "cp-b",
            "--default-capacity-provider-strategy", "capacityProvider=cp-b,weight=1")
        assert "reserved" in refused("delete-capacity-provider", "--capacity-provider", "FARGATE")
        cluster = ecs.describe_clusters(clusters=[CLUSTER])["clusters"][0]
        assert cluster["capacityProviders"] == ["cp-a", "cp-b"]
        listed = {p["name"] for p in ecs.describe_capacity_providers()["capacityProviders"]}
        assert {"FARGATE", "FARGATE_SPOT", "cp-a", "cp-b"} <= listed and "cp-z" not in listed
    finally:
        ecs.delete_service(cluster=CLUSTER, service="pools", force=True)
        wait_for(lambda: not _placed(ecs, "pools"), 90, "the pools service's tasks to stop")
        wait_for(lambda: not ecs.list_tasks(cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"], 60,
                 "every task to stop")
        ecs.put_cluster_capacity_providers(cluster=CLUSTER, capacityProviders=[],
                                           defaultCapacityProviderStrategy=[])
    for name in ("cp-a", "cp-b"):
        gone = ecs.delete_capacity_provider(capacityProvider=name)["capacityProvider"]
        assert gone["status"] == "INACTIVE" and gone["updateStatus"] == "DELETE_COMPLETE"


def _pulls(daemon: ExtraDockerd, since: float) -> list[str]:
    out = daemon.docker("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}", "--filter",
                        "type=image", "--filter", "event=pull", "--format", "{{.Actor.ID}}").stdout
    return out.split()


def test_a_deployment_pulls_its_images_on_every_host_before_placing_tasks(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    from tests.support.registry import docker_push

    remote = docker_push(server, busybox_image(), f"prewarm-{uuid.uuid4().hex[:6]}:v1")
    image = remote.split("/", 1)[1]  # unqualified: Dockyard's registry first, as users write it
    since = time.time()
    td = register(ecs, "prewarmed", {"name": "s", "image": image, "memory": 16,
                                     "command": ["sleep", "600"], "stopTimeout": 1})
    ecs.create_service(cluster=CLUSTER, serviceName="prewarmed", taskDefinition=td, desiredCount=3,
                       placementConstraints=[{"type": "distinctInstance"}])
    try:
        wait_for(lambda: len(_placed(ecs, "prewarmed")) == 3, 120, "three running tasks")
        events = [e["message"] for e in ecs.describe_services(cluster=CLUSTER, services=["prewarmed"])[
            "services"][0]["events"]]
        assert any("is pulling 1 images of (deployment" in m and "on 3 container instances" in m
                   for m in events), events
        assert any("pulled the images of (deployment" in m for m in events), events
        # each host pulled the image once, ahead of the task, which did not pull again
        for d in daemons:
            assert _pulls(d, since) == [remote], (d.index, _pulls(d, since))
    finally:
        ecs.delete_service(cluster=CLUSTER, service="prewarmed", force=True)
        wait_for(lambda: not _placed(ecs, "prewarmed"), 90, "the prewarmed service's tasks to stop")


def test_a_protected_task_on_one_host_outlives_a_scale_in_across_three(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    with _spread(ecs, "protected", "protected") as placed:
        racks = {arn: _daemon_of(i, daemons).index for arn, i in _instances(ecs).items()}
        [kept] = [t for t, i in placed.items() if racks[i] == 2]
        out = server.aws("ecs", "update-task-protection", "--cluster", CLUSTER, "--tasks", kept,
                         "--protection-enabled", "--expires-in-minutes", "30")
        assert out["failures"] == [] and out["protectedTasks"][0]["protectionEnabled"] is True
        ecs.update_service(cluster=CLUSTER, service="protected", desiredCount=1)
        wait_for(lambda: list(_placed(ecs, "protected")) == [kept], 90, "a scale-in sparing it")
        for t in set(placed) - {kept}:
            assert "Scaling activity initiated by (deployment" in describe_one(ecs, t)["stoppedReason"]


def test_a_forced_deregistration_orphans_its_tasks_and_the_agent_must_register_anew(
    server: Dockyard, ecs: Any, daemons: list[ExtraDockerd]
) -> None:
    by_rack = {_daemon_of(i, daemons).index: arn for arn, i in _instances(ecs).items()}
    host, daemon = by_rack[3], daemons[2]
    agent = server.agents[2]  # type: ignore[attr-defined]
    orphan = ""
    try:
        with _spread(ecs, "orphans", "orphaned") as placed:
            [orphan] = [t for t, i in placed.items() if i == host]
            # without force: refused while tasks run there, nothing changed
            refused = server.aws("ecs", "deregister-container-instance", "--cluster", CLUSTER,
                                 "--container-instance", host, check=False)
            assert refused.returncode != 0 and "InvalidParameterException" in refused.stderr
            assert _instances(ecs)[host]["status"] == "ACTIVE"
            out = server.aws("ecs", "deregister-container-instance", "--cluster", CLUSTER,
                             "--container-instance", host, "--force")["containerInstance"]
            assert out["status"] == "INACTIVE"
            # the task is STOPPED for ECS (no longer counted), its container keeps running
            stopped = describe_one(ecs, orphan)
            assert stopped["lastStatus"] == "STOPPED" and "orphaned" in stopped["stoppedReason"]
            wait_for(lambda: len(p := _placed(ecs, "orphans")) == 3 and host not in p.values(), 120,
                     "a replacement on another host")
            assert host not in _instances(ecs)
            running = daemon.docker("ps", "-q", "--filter", f"label=dockyard.task-arn={orphan}").stdout
            assert running.split(), "the orphaned task's container was stopped"
            # the agent's next heartbeat names the instance and is refused: it exits
            agent.wait(20)
            assert agent.returncode == 1
            key, secret = server.credentials
            client = Client(server.control_url, key, secret)
            with pytest.raises(Exception, match="deregistered"):
                client.call("AmazonEC2ContainerServiceV20141113", "RegisterContainerInstance", {
                    "cluster": CLUSTER, "dockerHost": daemon.url, "containerInstanceArn": host})
            # started again, it registers the host as a new instance
            server.agents[2] = _agent(server, daemon)  # type: ignore[attr-defined]
            again = {_daemon_of(i, daemons).index: arn for arn, i in _instances(ecs).items()}
            assert len(again) == 3 and again[3] != host
            inactive = ecs.describe_container_instances(cluster=CLUSTER, containerInstances=[host])
            assert inactive["containerInstances"][0]["status"] == "INACTIVE"
            assert daemon.docker("ps", "-q", "--filter", f"label=dockyard.task-arn={orphan}").stdout.split()
    finally:
        if server.agents[2].poll() is not None:  # type: ignore[attr-defined]
            server.agents[2] = _agent(server, daemon)  # type: ignore[attr-defined]
        if orphan:
            left = daemon.docker("ps", "-aq", "--filter", f"label=dockyard.task-arn={orphan}").stdout
            for c in left.split():
                daemon.docker("rm", "-f", c)
