"""Helpers for the discovery integration tests: unique names, namespaces and services made
through boto3, and local targets for the health checker."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from typing import Any

from tests.support.server import Dockyard, free_port


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def dns_namespace(dockyard: Dockyard, name: str | None = None) -> tuple[str, str]:
    """A new private DNS namespace; returns (id, name)."""
    sd = dockyard.client("servicediscovery")
    name = name or unique("z") + ".internal"
    op = sd.create_private_dns_namespace(Name=name, Vpc="vpc-local")["OperationId"]
    ns_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    return ns_id, name


def dns_service(dockyard: Dockyard, ns_id: str, name: str = "web", records: tuple[str, ...] = ("A", "SRV"),
                ttl: int = 30, **kwargs: Any) -> dict[str, Any]:
    sd = dockyard.client("servicediscovery")
    config = {"RoutingPolicy": kwargs.pop("RoutingPolicy", "MULTIVALUE"),
              "DnsRecords": [{"Type": t, "TTL": ttl} for t in records]}
    return sd.create_service(Name=name, NamespaceId=ns_id, DnsConfig=config, **kwargs)["Service"]


def wait_for(predicate: Any, timeout: float, step: float = 0.02) -> float:
    """Poll ``predicate`` until true; returns seconds taken, raises AssertionError on timeout."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(step)
    return time.monotonic() - started


class HttpTarget:
    """``python -m http.server`` on 127.0.0.1: a real target the health checker probes."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> HttpTarget:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(self.port), "--bind", "127.0.0.1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("http target did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None
