"""The active health checker against real servers on 127.0.0.1 that the tests stop and start."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import threading

from tests.support.discovery import HttpTarget, dns_namespace, dns_service, wait_for
from tests.support.server import Dockyard, free_port

INTERVAL, THRESHOLD = 1, 2
BOUND = INTERVAL * THRESHOLD + 1  # the bound: interval x threshold + 1 s


def checked_service(dockyard: Dockyard, kind: str = "HTTP") -> tuple[str, str, str]:
    ns_id, ns_name = dns_namespace(dockyard)
    check = {"Type": kind, "FailureThreshold": THRESHOLD}
    if kind != "TCP":
        check["ResourcePath"] = "/"
    srv = dns_service(
        dockyard,
        ns_id,
        "web",
        ("A",),
        ttl=1,
        HealthCheckConfig=check,
        Tags=[{"Key": "dockyard:health-check-interval", "Value": str(INTERVAL)}],
    )
    return ns_name, srv["Id"], ns_id


def healthy_ids(dockyard: Dockyard, ns_name: str) -> set[str]:
    sd = dockyard.client("servicediscovery")
    found = sd.discover_instances(NamespaceName=ns_name, ServiceName="web", HealthStatus="HEALTHY")
    return {i["InstanceId"] for i in found["Instances"]}


def dns_answers(dockyard: Dockyard, ns_name: str) -> set[str]:
    out = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(dockyard.ports["dns"]), "+short", "+time=1", f"web.{ns_name}", "A"],
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout
    return set(out.split())


def test_a_failing_http_target_leaves_discovery_and_dns_in_time_and_comes_back(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_name, srv_id, _ = checked_service(dockyard)
    target, dead_port = HttpTarget().start(), free_port()
    try:
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="alive",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)},
        )
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="dead",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.2", "AWS_INSTANCE_PORT": str(dead_port)},
        )
        wait_for(lambda: healthy_ids(dockyard, ns_name) == {"alive"}, BOUND + 1)
        assert dns_answers(dockyard, ns_name) == {"127.0.0.1"}
        target.stop()
        took = wait_for(lambda: healthy_ids(dockyard, ns_name) == set(), BOUND + 2)
        assert took <= BOUND
        assert dns_answers(dockyard, ns_name) == set()
        status = sd.get_instances_health_status(ServiceId=srv_id)["Status"]
        assert status == {"alive": "UNHEALTHY", "dead": "UNHEALTHY"}
        target.start()
        wait_for(lambda: healthy_ids(dockyard, ns_name) == {"alive"}, BOUND + 2)
        assert dns_answers(dockyard, ns_name) == {"127.0.0.1"}
    finally:
        target.stop()


def test_http_errors_fail_the_check(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_name, srv_id, _ = checked_service(dockyard)
    target = HttpTarget().start()
    try:
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="i",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)},
        )
        sd.update_service(
            Id=srv_id,
            Service={
                "HealthCheckConfig": {"Type": "HTTP", "ResourcePath": "/no-such-page", "FailureThreshold": 1}
            },
        )
        wait_for(lambda: healthy_ids(dockyard, ns_name) == set(), BOUND + 2)
    finally:
        target.stop()


class _Hanging:
    """A TCP listener that accepts and then says nothing, and then goes away."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def test_tcp_checks_follow_a_listener_and_hanging_http_targets_fail(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_name, srv_id, _ = checked_service(dockyard, "TCP")
    listener = _Hanging()
    try:
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="t",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(listener.port)},
        )
        wait_for(lambda: healthy_ids(dockyard, ns_name) == {"t"}, BOUND + 1)
        sd.update_service(
            Id=srv_id,
            Service={"HealthCheckConfig": {"Type": "HTTP", "ResourcePath": "/", "FailureThreshold": 1}},
        )
        wait_for(lambda: healthy_ids(dockyard, ns_name) == set(), BOUND + 3)
        sd.update_service(Id=srv_id, Service={"HealthCheckConfig": {"Type": "TCP", "FailureThreshold": 1}})
        wait_for(lambda: healthy_ids(dockyard, ns_name) == {"t"}, BOUND + 1)
        listener.close()
        wait_for(lambda: healthy_ids(dockyard, ns_name) == set(), BOUND + 1)
    finally:
        listener.close()


def test_health_is_reevaluated_after_a_restart(fresh_dockyard: Dockyard):
    server = fresh_dockyard.start()
    sd = server.client("servicediscovery")
    ns_name, srv_id, ns_id = checked_service(server)
    target = HttpTarget().start()
    try:
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="i",
            Attributes={
                "AWS_INSTANCE_IPV4": "127.0.0.1",
                "AWS_INSTANCE_PORT": str(target.port),
                "color": "red",
            },
        )
        sd.tag_resource(
            ResourceARN=sd.get_namespace(Id=ns_id)["Namespace"]["Arn"], Tags=[{"Key": "k", "Value": "v"}]
        )
        wait_for(lambda: healthy_ids(server, ns_name) == {"i"}, BOUND)
        server.stop()
        target.stop()
        server.start()
        sd = server.client("servicediscovery")
        assert sd.get_namespace(Id=ns_id)["Namespace"]["Name"] == ns_name
        assert sd.get_service(Id=srv_id)["Service"]["HealthCheckConfig"]["FailureThreshold"] == THRESHOLD
        attrs = sd.get_instance(ServiceId=srv_id, InstanceId="i")["Instance"]["Attributes"]
        assert attrs["color"] == "red"
        assert sd.list_tags_for_resource(ResourceARN=sd.get_namespace(Id=ns_id)["Namespace"]["Arn"])["Tags"]
        wait_for(lambda: healthy_ids(server, ns_name) == set(), BOUND + 1)
        assert dns_answers(server, ns_name) == set()
    finally:
        target.stop()


def test_the_checker_survives_targets_that_send_garbage(dockyard: Dockyard):
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"\x00\xffNOT HTTP AT ALL\r\n\r\n" * 10)
        await writer.drain()
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(garbage, "127.0.0.1", 0))
    port = server.sockets[0].getsockname()[1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    sd = dockyard.client("servicediscovery")
    ns_name, srv_id, _ = checked_service(dockyard)
    target = HttpTarget().start()
    try:
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="junk",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(port)},
        )
        sd.register_instance(
            ServiceId=srv_id,
            InstanceId="good",
            Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)},
        )
        wait_for(lambda: healthy_ids(dockyard, ns_name) == {"good"}, BOUND + 1)
    finally:
        target.stop()
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
