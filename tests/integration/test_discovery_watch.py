"""The watch over the control port: every change reaches a long-polling watcher in < 100 ms."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from typing import Any

from dockyard.client import Client
from tests.support.discovery import HttpTarget, dns_namespace, dns_service, wait_for
from tests.support.server import BIN, Dockyard

CM = "Route53AutoNaming_v20170314"
LATENCY_BOUND = 0.100


class Watcher:
    """Long-polls WatchChanges in a thread and timestamps every batch it receives."""

    def __init__(self, dockyard: Dockyard, since: int, **filters: str) -> None:
        key, secret = dockyard.credentials
        self.client = Client(dockyard.control_url, key, secret)
        self.since = since
        self.filters = filters
        self.events: list[tuple[float, dict[str, Any]]] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            out = self.client.call(
                CM, "WatchChanges", {"Since": self.since, "TimeoutSeconds": 1, **self.filters}
            )
            now = time.perf_counter()
            self.since = out["Revision"]
            self.events.extend((now, c) for c in out["Changes"])

    def first(self, after: float, kind: str, instance_id: str, timeout: float = 5) -> float:
        """Seconds from ``after`` to the first event of ``kind`` for ``instance_id``."""
        found: list[float] = []

        def seen() -> bool:
            found[:] = [
                t
                for t, e in self.events
                if t >= after and e["Type"] == kind and e.get("InstanceId") == instance_id
            ]
            return bool(found)

        wait_for(seen, timeout, step=0.005)
        return found[0] - after

    def stop(self) -> None:
        self.stopped = True
        self.thread.join(5)


def current_revision(dockyard: Dockyard) -> int:
    key, secret = dockyard.credentials
    return Client(dockyard.control_url, key, secret).call(CM, "WatchChanges", {"TimeoutSeconds": 0})[
        "Revision"
    ]


def test_register_attribute_change_health_flip_and_deregister_reach_a_watcher_within_100ms(
    dockyard: Dockyard,
):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(
        dockyard,
        ns_id,
        "web",
        ("A",),
        HealthCheckConfig={"Type": "TCP", "FailureThreshold": 1},
        Tags=[{"Key": "dockyard:health-check-interval", "Value": "1"}],
    )
    target = HttpTarget().start()
    watcher = Watcher(dockyard, current_revision(dockyard), NamespaceName=ns_name, ServiceName="web")
    latencies = {}
    try:
        time.sleep(0.2)
        attrs = {"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)}
        start = time.perf_counter()
        sd.register_instance(ServiceId=srv["Id"], InstanceId="w", Attributes=attrs)
        latencies["register"] = watcher.first(start, "INSTANCE", "w")
        start = time.perf_counter()
        sd.register_instance(ServiceId=srv["Id"], InstanceId="w", Attributes={**attrs, "v": "2"})
        latencies["attributes"] = watcher.first(start, "INSTANCE", "w")
        # A health flip happens inside the server: time it from the moment DiscoverInstances
        # shows it (an upper bound on when it was committed is not available from outside).
        start = time.perf_counter()
        target.stop()
        flip = watcher.first(start, "HEALTH", "w", timeout=5)
        committed = start + flip
        status = sd.get_instances_health_status(ServiceId=srv["Id"])["Status"]["w"]
        assert status == "UNHEALTHY"
        latencies["health (from stop)"] = flip
        start = time.perf_counter()
        sd.deregister_instance(ServiceId=srv["Id"], InstanceId="w")
        latencies["deregister"] = watcher.first(start, "INSTANCE", "w")
        assert committed > 0
    finally:
        watcher.stop()
        target.stop()
    for name in ("register", "attributes", "deregister"):
        assert latencies[name] < LATENCY_BOUND, latencies
    assert latencies["health (from stop)"] < 2.0 + LATENCY_BOUND, latencies


def test_a_watcher_resumes_from_any_revision_it_last_saw(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id)
    since = current_revision(dockyard)
    for n in range(3):
        sd.register_instance(
            ServiceId=srv["Id"],
            InstanceId=f"i-{n}",
            Attributes={"AWS_INSTANCE_IPV4": "10.7.0.1", "AWS_INSTANCE_PORT": "80"},
        )
    key, secret = dockyard.credentials
    client = Client(dockyard.control_url, key, secret)
    out = client.call(CM, "WatchChanges", {"Since": since, "NamespaceName": ns_name, "ServiceName": "web"})
    assert [c["InstanceId"] for c in out["Changes"]] == ["i-0", "i-1", "i-2"]
    middle = out["Changes"][0]["Revision"]
    again = client.call(CM, "WatchChanges", {"Since": middle, "NamespaceName": ns_name, "ServiceName": "web"})
    assert [c["InstanceId"] for c in again["Changes"]] == ["i-1", "i-2"]
    idle = client.call(
        CM,
        "WatchChanges",
        {"Since": out["Revision"], "TimeoutSeconds": 0.2, "NamespaceName": ns_name, "ServiceName": "web"},
    )
    assert idle["Changes"] == [] and idle["Revision"] >= out["Revision"]


def test_the_cli_lists_namespaces_services_and_instances(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id, "cli-web")
    sd.register_instance(
        ServiceId=srv["Id"],
        InstanceId="c-1",
        Attributes={"AWS_INSTANCE_IPV4": "10.8.0.1", "AWS_INSTANCE_PORT": "81", "ver": "3"},
    )
    base = [str(BIN / "dockyard"), "discovery"]
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]

    def run(*args: str) -> str:
        proc = subprocess.run([*base, *args, *common], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    table = run("namespaces")
    assert table.splitlines()[0].split() == ["ID", "NAME", "TYPE", "SERVICES"]
    assert any(ns_name in line and "DNS_PRIVATE" in line for line in table.splitlines())
    services = json.loads(run("services", "--namespace", ns_name, "--json"))
    assert services == [
        {
            "id": srv["Id"],
            "name": "cli-web",
            "namespace": ns_name,
            "instances": 1,
            "records": "A:30,SRV:30",
            "health_check": "",
        }
    ]
    rows = json.loads(run("instances", "cli-web", "--namespace", ns_name, "--json"))
    assert rows == [
        {
            "id": "c-1",
            "ipv4": "10.8.0.1",
            "ipv6": "",
            "port": "81",
            "health": "UNKNOWN",
            "attributes": "ver=3",
        }
    ]
    assert "10.8.0.1" in run("instances", srv["Id"])
    changes = [json.loads(line) for line in run(
        "watch", "--namespace", ns_name, "--service", "cli-web", "--once", "--json").splitlines()]
    assert changes and changes[-1]["InstanceId"] == "c-1" and changes[-1]["Type"] == "INSTANCE"
    assert "INSTANCE" in run("watch", "--namespace", ns_name, "--service", "cli-web", "--once")
    proc = subprocess.run([*base, "instances", "no-such-service", *common], capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stderr.startswith("dockyard: ") and "Traceback" not in proc.stderr


def test_a_custom_health_flip_reaches_a_watcher_within_100ms(dockyard: Dockyard):
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = sd.create_service(Name="jobs", NamespaceId=ns_id, HealthCheckCustomConfig={})["Service"]
    sd.register_instance(ServiceId=srv["Id"], InstanceId="j", Attributes={"AWS_INSTANCE_IPV4": "10.6.0.1"})
    watcher = Watcher(dockyard, current_revision(dockyard), NamespaceName=ns_name, ServiceName="jobs")
    try:
        time.sleep(0.2)
        took = []
        for status in ("UNHEALTHY", "HEALTHY"):
            start = time.perf_counter()
            sd.update_instance_custom_health_status(ServiceId=srv["Id"], InstanceId="j", Status=status)
            took.append(watcher.first(start, "HEALTH", "j"))
            time.sleep(0.05)
    finally:
        watcher.stop()
    assert max(took) < LATENCY_BOUND, took
