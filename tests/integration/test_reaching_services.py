"""How a service is reached (docs/networking.md), checked claim by claim on the real engine.

"Another machine" is a network namespace of the test's own, linked to this machine by a veth
pair (its own /30), routing through this machine as a LAN peer would: what it reaches, a
machine beside the Docker host reaches.
"""

from __future__ import annotations

import json
import random
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_ecs_tasks import (
    _get,
    describe,
    own_cluster,
    register,
    run,
    until_status,
    wait_for,
)
from tests.support.images import echo_image
from tests.support.server import Dockyard, free_port


@dataclass
class Peer:
    """Another machine: ``netns`` reaches this machine at ``host_address``."""

    netns: str
    host_address: str

    def get(self, url: str) -> str:
        """``wget`` from the peer (busybox, 3 s); "" when nothing answers."""
        out = subprocess.run(
            ["ip", "netns", "exec", self.netns, "timeout", "3", "/bin/busybox", "wget", "-q", "-O", "-", url],
            capture_output=True, text=True, timeout=10,
        )
        return out.stdout if out.returncode == 0 else ""


def _ip(*args: str, check: bool = True) -> None:
    subprocess.run(["ip", *args], check=check, capture_output=True)


@pytest.fixture(scope="module")
def peer() -> Iterator[Peer]:
    tag = uuid.uuid4().hex[:6]
    netns, here, there = f"dypeer-{tag}", f"dyph{tag}", f"dypp{tag}"
    base = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.{random.randrange(0, 256, 4)}"
    prefix = base.rsplit(".", 1)[0]
    last = int(base.rsplit(".", 1)[1])
    host_address, peer_address = f"{prefix}.{last + 1}", f"{prefix}.{last + 2}"
    _ip("netns", "add", netns)
    try:
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", netns)
        _ip("addr", "add", f"{host_address}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("-n", netns, "addr", "add", f"{peer_address}/30", "dev", there)
        _ip("-n", netns, "link", "set", there, "up")
        _ip("-n", netns, "link", "set", "lo", "up")
        _ip("-n", netns, "route", "add", "default", "via", host_address)  # a route to everything here
        yield Peer(netns, host_address)
    finally:
        _ip("link", "del", here, check=False)
        _ip("netns", "del", netns, check=False)


@pytest.fixture(scope="module")
def cluster(dockyard: Dockyard) -> Iterator[str]:
    with own_cluster(dockyard, "host-access-reach") as name:  # the session server lets it run host-mode tasks
        yield name


def _echo(
    ecs: Any, cluster: str, mode: str, port: int, host_port: int | None, version: str
) -> dict[str, Any]:
    mapping: dict[str, Any] = {"containerPort": port}
    if host_port is not None:
        mapping["hostPort"] = host_port
    td = register(ecs, f"reach-{mode}", {"name": "web", "image": echo_image(), "memory": 32, "stopTimeout": 1,
                                         "portMappings": [mapping],
                                         "environment": [{"name": "VERSION", "value": version},
                                                         {"name": "PORT", "value": str(port)}]},
                  networkMode=mode)
    kw: dict[str, Any] = {}
    if mode == "awsvpc":
        kw["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    return until_status(ecs, cluster, run(ecs, cluster, td, **kw), "RUNNING")


def _bridge_subnet() -> str:
    out = subprocess.run(["docker", "network", "inspect", "bridge"], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)[0]["IPAM"]["Config"][0]["Subnet"]


def test_an_awsvpc_task_has_its_own_address_on_the_engines_bridge_reached_from_this_machine_only(
    dockyard: Dockyard, cluster: str, peer: Peer
) -> None:
    import ipaddress

    ecs = dockyard.client("ecs")
    port = free_port()
    task = _echo(ecs, cluster, "awsvpc", port, None, "vpc")
    (container,) = task["containers"]
    ip = container["networkInterfaces"][0]["privateIpv4Address"]
    details = {d["name"]: d["value"] for d in task["attachments"][0]["details"]}
    assert details["privateIPv4Address"] == ip
    assert ipaddress.ip_address(ip) in ipaddress.ip_network(_bridge_subnet())
    assert container["networkBindings"] == []  # nothing published on the host
    assert wait_for(lambda: _get(f"http://{ip}:{port}/"), 20, "the task at its address").strip() == "vpc"
    assert _get(f"http://127.0.0.1:{port}/") == ""
    assert peer.get(f"http://{ip}:{port}/") == ""  # routed here, dropped by Docker's FORWARD rules
    assert peer.get(f"http://{peer.host_address}:{port}/") == ""
    with pytest.raises(ClientError, match="must equal containerPort"):
        register(ecs, "reach-bad", {"name": "web", "image": echo_image(), "memory": 32,
                                    "portMappings": [{"containerPort": port, "hostPort": port + 1}]},
                 networkMode="awsvpc")
    ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_a_bridge_tasks_host_port_is_published_on_every_address_of_this_machine(
    dockyard: Dockyard, cluster: str, peer: Peer
) -> None:
    ecs = dockyard.client("ecs")
    host_port = free_port()
    task = _echo(ecs, cluster, "bridge", 8080, host_port, "fixed")
    bindings = task["containers"][0]["networkBindings"]
    assert {"bindIP": "0.0.0.0", "containerPort": 8080, "hostPort": host_port, "protocol": "tcp"} in bindings
    assert task["containers"][0]["networkInterfaces"] == []
    assert wait_for(lambda: _get(f"http://127.0.0.1:{host_port}/"), 20, "the host port").strip() == "fixed"
    assert peer.get(f"http://{peer.host_address}:{host_port}/").strip() == "fixed"  # another machine
    # One host port, one task per host: a second task asking for it does not fit here.
    td = task["taskDefinitionArn"]
    out = ecs.run_task(cluster=cluster, taskDefinition=td)
    assert out["tasks"] == [] and [f["reason"] for f in out["failures"]] == ["RESOURCE:PORTS"]
    ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_a_bridge_task_without_a_host_port_gets_an_ephemeral_one(
    dockyard: Dockyard, cluster: str, peer: Peer
) -> None:
    ecs = dockyard.client("ecs")
    tasks = [_echo(ecs, cluster, "bridge", 8080, hp, f"eph{n}") for n, hp in enumerate((None, 0))]
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    for n, task in enumerate(tasks):
        (binding,) = [b for b in task["containers"][0]["networkBindings"] if b["bindIP"] == "0.0.0.0"]
        port = binding["hostPort"]
        assert binding["containerPort"] == 8080 and low <= port <= high
        assert wait_for(lambda p=port: _get(f"http://127.0.0.1:{p}/"), 20, "the port").strip() == f"eph{n}"
        assert peer.get(f"http://{peer.host_address}:{port}/").strip() == f"eph{n}"
        ecs.stop_task(cluster=cluster, task=task["taskArn"])


def test_a_host_task_listens_on_this_machines_own_addresses(
    dockyard: Dockyard, cluster: str, peer: Peer
) -> None:
    ecs = dockyard.client("ecs")
    port = free_port()
    task = _echo(ecs, cluster, "host", port, None, "on-host")
    assert wait_for(lambda: _get(f"http://127.0.0.1:{port}/"), 20, "the host port").strip() == "on-host"
    assert peer.get(f"http://{peer.host_address}:{port}/").strip() == "on-host"
    assert describe(ecs, cluster, task["taskArn"])["containers"][0]["networkInterfaces"] == []
    with pytest.raises(ClientError, match="must equal containerPort"):
        register(ecs, "reach-bad", {"name": "web", "image": echo_image(), "memory": 32,
                                    "portMappings": [{"containerPort": port, "hostPort": port + 1}]},
                 networkMode="host")
    ecs.stop_task(cluster=cluster, task=task["taskArn"])
