"""``--control-workers 2``: two processes share the control port, answer read-only calls from
their own view of the store, forward the rest to the main process, and never outlive it."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import os
import signal
import subprocess
import time
import urllib.request

import boto3
from botocore.config import Config


def worker_pids(main_pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(main_pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = open(f"/proc/{pid}/stat").read().split()
    return stat[2] != "Z"


def test_reads_and_writes_through_either_process_see_each_other(fresh_dockyard):
    server = fresh_dockyard
    server.extra_args = ["--control-workers", "2"]
    server.start()
    workers = worker_pids(server.proc.pid)
    assert len(workers) == 2
    answered = set()
    key, secret = server.credentials
    auth = {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}
    for _ in range(40):  # /healthz names its process only to a caller with credentials
        health_request = urllib.request.Request(server.control_url + "/healthz", headers=auth)
        with urllib.request.urlopen(health_request, timeout=10) as resp:
            health = json.loads(resp.read())
        assert health["role"] == "worker"
        answered.add(health["pid"])
    assert answered == set(workers)

    def client() -> object:
        # a fresh client is a fresh connection: SO_REUSEPORT spreads them over both processes
        return boto3.client(
            "servicediscovery", endpoint_url=server.control_url, region_name="us-east-1",
            aws_access_key_id=key, aws_secret_access_key=secret,
            config=Config(inject_host_prefix=False, retries={"max_attempts": 1}),
        )

    sd = client()
    ns_op = sd.create_http_namespace(Name="workers.example")["OperationId"]
    ns_id = sd.get_operation(OperationId=ns_op)["Operation"]["Targets"]["NAMESPACE"]
    srv = sd.create_service(Name="web", NamespaceId=ns_id)["Service"]

    def register_then_discover(n: int) -> int:
        c = client()
        attrs = {"AWS_INSTANCE_IPV4": "10.0.0.1"}
        c.register_instance(ServiceId=srv["Id"], InstanceId=f"i-{n}", Attributes=attrs)
        found = c.discover_instances(NamespaceName="workers.example", ServiceName="web", HealthStatus="ALL")
        return len([i for i in found["Instances"] if i["InstanceId"] == f"i-{n}"])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert list(pool.map(register_then_discover, range(40))) == [1] * 40
    listed = client().list_instances(ServiceId=srv["Id"], MaxResults=100)["Instances"]
    assert len(listed) == 40
    ecs = server.client("ecs")
    ecs.create_cluster(clusterName="via-any-process")
    for _ in range(10):
        names = server.client("ecs").list_clusters()["clusterArns"]
        assert any(a.endswith("/via-any-process") for a in names)


def test_workers_stop_with_the_main_process_even_when_it_is_killed(fresh_dockyard):
    server = fresh_dockyard
    server.extra_args = ["--control-workers", "3"]
    server.start()
    workers = worker_pids(server.proc.pid)
    assert len(workers) == 3
    server.stop(signal.SIGTERM)
    assert not any(alive(p) for p in workers)

    server.output.clear()
    server.start()
    workers = worker_pids(server.proc.pid)
    server.kill()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in workers), "a control worker outlived a SIGKILLed main process"
