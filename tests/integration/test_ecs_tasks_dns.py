"""Cloud Map names resolve inside tasks: Dockyard's DNS is every task's nameserver.

A Dockyard of this module's own serves its tasks' DNS (``task_dns``) on the gateway address of a
Docker network the module creates (an address of this machine that no other test or Dockyard
uses, so the module never competes for the default bridge's ``172.17.0.1:53``); names outside
its zones go to the upstream of a resolv.conf the module writes (``task_dns_upstream``), a
dnslib server of the module's own on a loopback address, port 53: no internet.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from tests.integration.test_ecs_tasks import describe, own_cluster, register, run, until_status
from tests.support.images import busybox_image, echo_image
from tests.support.server import BIN, Dockyard

UPSTREAM_NAME = f"up-{uuid.uuid4().hex[:8]}.example"
UPSTREAM_ADDRESS = "192.0.2.77"


class _Upstream(BaseResolver):
    """The host's resolver, as far as these tests go: one name (an A record), NXDOMAIN for the rest."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        if str(request.q.qname).rstrip(".") != UPSTREAM_NAME:
            reply.header.rcode = RCODE.NXDOMAIN
        elif request.q.qtype == QTYPE.A:
            reply.add_answer(RR(request.q.qname, QTYPE.A, ttl=5, rdata=A(UPSTREAM_ADDRESS)))
        return reply


@pytest.fixture(scope="module")
def own_network() -> Iterator[tuple[str, str]]:
    """A Docker network of this module's own: (name, gateway), the gateway an address of this
    machine."""
    name = f"dytest-dns-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "network", "create", name], check=True, capture_output=True)
    try:
        out = subprocess.run(["docker", "network", "inspect", name], check=True, capture_output=True,
                             text=True)
        yield name, json.loads(out.stdout)[0]["IPAM"]["Config"][0]["Gateway"]
    finally:
        subprocess.run(["docker", "network", "rm", name], capture_output=True)


@pytest.fixture(scope="module")
def gateway(own_network: tuple[str, str]) -> str:
    return own_network[1]


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A resolv.conf naming a DNS server of the module's own on 127.x.y.z:53."""
    address = f"127.{random.randint(64, 250)}.{random.randint(1, 250)}.{random.randint(2, 250)}"
    server = DNSServer(_Upstream(), address=address, port=53, logger=DNSLogger("-request,-reply,-truncated"))
    server.start_thread()
    conf = tmp_path_factory.mktemp("dns") / "resolv.conf"
    conf.write_text(f"# the module's upstream\nsearch example\nnameserver {address}\n")
    try:
        yield conf
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: str, gateway: str,
           upstream: Path) -> Iterator[Dockyard]:
    env = {"DOCKYARD_TASK_DNS": gateway, "DOCKYARD_TASK_DNS_UPSTREAM": str(upstream),
           "DOCKYARD_HOST_ACCESS_CLUSTERS": "dns-*"}  # host-mode tasks (docs/security.md)
    dockyard = Dockyard(tmp_path_factory.mktemp("dockyard") / "data", env=env).start()
    try:
        yield dockyard
    finally:
        dockyard.stop()


@pytest.fixture(scope="module")
def cluster(server: Dockyard) -> Iterator[str]:
    with own_cluster(server, "dns") as name:
        yield name


@pytest.fixture(scope="module")
def web(server: Dockyard, cluster: str) -> tuple[str, str]:
    """``web.<namespace>``: a private DNS namespace whose service ``web`` has one instance, an
    awsvpc echo task answering "from-web" on port 8080. Returns (fqdn, the task's address)."""
    ecs = server.client("ecs")
    td = register(ecs, "dns-web", {"name": "web", "image": echo_image(), "memory": 32, "stopTimeout": 1,
                                   "portMappings": [{"containerPort": 8080}],
                                   "environment": [{"name": "VERSION", "value": "from-web"}]},
                  networkMode="awsvpc")
    arn = run(ecs, cluster, td, networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}})
    task = until_status(ecs, cluster, arn, "RUNNING")
    ip = task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
    sd = server.client("servicediscovery")
    zone = f"shop-{uuid.uuid4().hex[:6]}.local"
    op = sd.create_private_dns_namespace(Name=zone, Vpc="vpc-local")["OperationId"]
    ns_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    srv = sd.create_service(Name="web", NamespaceId=ns_id,
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]
    sd.register_instance(ServiceId=srv["Id"], InstanceId="web-1",
                         Attributes={"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": "8080"})
    return f"web.{zone}", ip


def _client_task(server: Dockyard, cluster: str, mode: str, fqdn: str) -> str:
    """A task that prints its resolv.conf, looks names up and fetches ``fqdn`` by name, then
    exits 0; returns what it printed."""
    script = (
        "cat /etc/resolv.conf; echo ==; "
        f"busybox nslookup {fqdn}; echo ==; "
        f"wget -q -O - http://{fqdn}:8080/; echo ==; "
        f"busybox nslookup {UPSTREAM_NAME}; echo ==; "
        f"busybox nslookup nothing-{uuid.uuid4().hex[:6]}.example; echo =="
    )
    return _script_task(server, cluster, mode, script)


def _script_task(server: Dockyard, cluster: str, mode: str, script: str) -> str:
    """A busybox task of network mode ``mode`` running ``script``; returns what it printed once
    it exited 0."""
    ecs = server.client("ecs")
    td = register(ecs, f"dns-client-{mode}", {"name": "client", "image": busybox_image(), "memory": 16,
                                              "command": ["sh", "-c", script]}, networkMode=mode)
    kw: dict[str, Any] = {}
    if mode == "awsvpc":
        kw["networkConfiguration"] = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    arn = run(ecs, cluster, td, **kw)
    task = until_status(ecs, cluster, arn, "STOPPED", timeout=90)
    cli = [str(BIN / "dockyard"), "logs", arn.rsplit("/", 1)[1], "--cluster", cluster,
           "--data-dir", str(server.data_dir), "--endpoint-url", server.control_url]
    out = subprocess.run(cli, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert describe(ecs, cluster, arn)["containers"][0].get("exitCode") == 0, (task, out.stdout)
    return out.stdout


@pytest.mark.parametrize("mode", ["bridge", "awsvpc", "host"])
def test_a_tasks_containers_resolve_cloud_map_names_and_the_hosts_names(
    server: Dockyard, cluster: str, web: tuple[str, str], gateway: str, mode: str
) -> None:
    fqdn, ip = web
    resolv, looked_up, fetched, outside, nothing, _ = _client_task(server, cluster, mode, fqdn).split("==")
    assert f"nameserver {gateway}" in resolv.splitlines(), resolv  # Dockyard's resolver, and only it
    assert [n for n in resolv.splitlines() if n.startswith("nameserver")] == [f"nameserver {gateway}"]
    assert f"Name:\t{fqdn}" in looked_up and f"Address: {ip}" in looked_up, looked_up
    assert fetched.strip() == "from-web"  # wget by name reaches the task behind it
    assert f"Address: {UPSTREAM_ADDRESS}" in outside, outside  # forwarded to the host's resolver
    assert "NXDOMAIN" in nothing, nothing  # the upstream's own answer, relayed


def test_the_chain_through_dockers_embedded_dns_on_a_user_defined_network(
    web: tuple[str, str], own_network: tuple[str, str]
) -> None:
    """A container on a user-defined network asks Docker's embedded DNS (127.0.0.11), which
    forwards what it does not know to the HostConfig.Dns servers: Dockyard's, here."""
    fqdn, ip = web
    network, gateway = own_network
    out = subprocess.run(
        ["docker", "run", "--rm", "--network", network, "--dns", gateway, busybox_image(),
         "sh", "-c", f"cat /etc/resolv.conf; busybox nslookup {fqdn}; busybox nslookup {UPSTREAM_NAME}"],
        capture_output=True, text=True, timeout=60,
    )
    assert "nameserver 127.0.0.11" in out.stdout, out.stdout + out.stderr
    assert f"Address: {ip}" in out.stdout and f"Address: {UPSTREAM_ADDRESS}" in out.stdout, out.stdout


def test_dig_on_the_host_gets_the_zone_at_the_task_address_and_dns_port_still_refuses_other_names(
    server: Dockyard, web: tuple[str, str], gateway: str
) -> None:
    fqdn, ip = web
    assert subprocess.run(["dig", "+short", f"@{gateway}", fqdn], capture_output=True, text=True,
                          timeout=30).stdout.split() == [ip]
    # dns_port stays authoritative only: a name outside the zones is REFUSED there.
    dig = subprocess.run(["dig", "-p", str(server.ports["dns"]), "@127.0.0.1", UPSTREAM_NAME],
                         capture_output=True, text=True, timeout=30).stdout
    assert "status: REFUSED" in dig, dig


def test_a_bridge_service_registered_in_a_namespace_is_reached_by_name_from_another_task_and_the_host(
    server: Dockyard, cluster: str
) -> None:
    """ECS registers a bridge task at its container instance's address and host port; here the
    engine's bridge gateway, where the published port answers from tasks and the host alike."""
    ecs, sd = server.client("ecs"), server.client("servicediscovery")
    zone = f"br-{uuid.uuid4().hex[:6]}.local"
    op = sd.create_private_dns_namespace(Name=zone, Vpc="vpc-local")["OperationId"]
    ns_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    srv = sd.create_service(Name="api", NamespaceId=ns_id,
                            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 5}]})["Service"]
    api = {"name": "api", "image": echo_image(), "memory": 32, "stopTimeout": 1,
           "portMappings": [{"containerPort": 8080, "hostPort": 0}],
           "environment": [{"name": "VERSION", "value": "from-bridge"}]}
    td = register(ecs, "dns-bridge-api", api)
    ecs.create_service(cluster=cluster, serviceName="api", taskDefinition=td, desiredCount=1,
                       serviceRegistries=[{"registryArn": srv["Arn"]}])
    try:
        deadline = time.monotonic() + 90
        while not (listed := sd.list_instances(ServiceId=srv["Id"])["Instances"]):
            assert time.monotonic() < deadline, "the bridge task was never registered"
            time.sleep(0.5)
        attrs = listed[0]["Attributes"]
        ip, port = attrs["AWS_INSTANCE_IPV4"], attrs["AWS_INSTANCE_PORT"]
        assert ip != "127.0.0.1", attrs  # inside a task that is the task itself
        fqdn = f"api.{zone}"
        out = _script_task(server, cluster, "bridge", f"busybox nslookup {fqdn}; echo ==; "
                                                      f"wget -q -O - http://{fqdn}:{port}/; echo ==")
        looked_up, fetched, _ = out.split("==")
        assert f"Address: {ip}" in looked_up, looked_up
        assert fetched.strip() == "from-bridge", out  # another task reaches it by name
        with urllib.request.urlopen(f"http://{ip}:{port}/", timeout=10) as reply:  # and so does the host
            assert reply.read().decode().strip() == "from-bridge"
    finally:
        ecs.delete_service(cluster=cluster, service="api", force=True)
