"""Discovery benchmark: DiscoverInstances req/s and latency, DNS qps, health-failure removal.

Usage: ``.venv/bin/python bench/discovery.py [--seconds 10] [--connections 64] [--workers 2]``

It starts its own ``dockyard up`` on free ports with a temporary data dir, creates a DNS
namespace with one service of 100 instances, then:

1. DiscoverInstances (signed, HealthStatus=HEALTHY, up to 100 instances per answer) from
   ``--workers`` load processes holding ``--connections`` keep-alive connections in total.
   SigV4 signatures carry a date, so each worker signs its request once and replays it for
   the run (well inside the 5 minute window), as a static pre-signed request would be.
2. DNS A queries over UDP from ``--workers`` processes, each keeping 32 queries in flight.
3. Health failure to removal: an HTTP target is killed and the time until DiscoverInstances
   (HEALTHY) stops returning it is measured (interval 1 s, FailureThreshold 1; bound 2 s).

The load generators share the machine with the server, so the figures are a lower bound.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dockyard.aws import sigv4  # noqa: E402
from tests.support.discovery import HttpTarget, dns_namespace, dns_service  # noqa: E402
from tests.support.server import Dockyard  # noqa: E402

CM = "Route53AutoNaming_v20170314"


def _signed(url: str, key: str, secret: str, body: bytes) -> dict[str, str]:
    headers = sigv4.sign(
        "POST",
        "/",
        {
            "host": urlsplit(url).netloc,
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": f"{CM}.DiscoverInstances",
        },
        body,
        key,
        secret,
        "us-east-1",
        "servicediscovery",
    )
    headers.pop("host")
    return headers


async def _http_load(
    url: str, key: str, secret: str, body: bytes, conns: int, seconds: float, out: mp.Queue
) -> None:
    import aiohttp

    headers = _signed(url, key, secret, body)
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def one(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            t = time.perf_counter()
            async with session.post(url + "/", data=body, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - t)

    connector = aiohttp.TCPConnector(limit=conns)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session) for _ in range(conns)))
    out.put((latencies, errors))


def _http_worker(*args: object) -> None:
    asyncio.run(_http_load(*args))  # type: ignore[arg-type]


def _dns_worker(port: int, qname: str, seconds: float, inflight: int, out: mp.Queue) -> None:
    from dnslib import DNSRecord

    packets = []
    for n in range(inflight):
        q = DNSRecord.question(qname, "A")
        q.header.id = n + 1
        packets.append(q.pack())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(0.5)
    answered = lost = 0
    for p in packets:
        sock.send(p)
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            lost += inflight
            for p in packets:
                sock.send(p)
            continue
        answered += 1
        ident = int.from_bytes(data[:2], "big")
        sock.send(packets[(ident - 1) % inflight])
    out.put((answered, lost))


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=100)
    args = parser.parse_args()

    server = Dockyard(
        Path(tempfile.mkdtemp(prefix="dockyard-bench-")) / "data", env={"DOCKYARD_LOG_LEVEL": "warning"}
    ).start()
    results: dict[str, object] = {"cpus": os.cpu_count(), "instances": args.instances}
    try:
        sd = server.client("servicediscovery")
        ns_id, ns_name = dns_namespace(server, "bench.internal")
        srv = dns_service(server, ns_id, "web", ("A", "SRV"), ttl=10)
        for n in range(args.instances):
            sd.register_instance(
                ServiceId=srv["Id"],
                InstanceId=f"i-{n}",
                Attributes={
                    "AWS_INSTANCE_IPV4": f"10.{n // 250}.{n % 250}.1",
                    "AWS_INSTANCE_PORT": "8080",
                    "stage": "prod",
                    "version": "v1",
                },
            )
        key, secret = server.credentials
        body = json.dumps({"NamespaceName": ns_name, "ServiceName": "web", "MaxResults": 100}).encode()

        queue: mp.Queue = mp.Queue()
        per = [
            args.connections // args.workers + (i < args.connections % args.workers)
            for i in range(args.workers)
        ]
        procs = [
            mp.Process(
                target=_http_worker, args=(server.control_url, key, secret, body, c, args.seconds, queue)
            )
            for c in per
        ]
        for p in procs:
            p.start()
        latencies, errors = [], 0
        for _ in procs:
            lat, err = queue.get()
            latencies += lat
            errors += err
        for p in procs:
            p.join()
        results["discover"] = {
            "connections": args.connections,
            "requests": len(latencies),
            "errors": errors,
            "req_per_s": round(len(latencies) / args.seconds),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
        }
        print("DiscoverInstances:", results["discover"], flush=True)

        procs = [
            mp.Process(
                target=_dns_worker, args=(server.ports["dns"], f"web.{ns_name}", args.seconds, 32, queue)
            )
            for _ in range(args.workers)
        ]
        for p in procs:
            p.start()
        answered = lost = 0
        for _ in procs:
            a, miss = queue.get()
            answered += a
            lost += miss
        for p in procs:
            p.join()
        results["dns"] = {"answered": answered, "lost": lost, "qps": round(answered / args.seconds)}
        print("DNS:", results["dns"], flush=True)

        check = sd.create_service(
            Name="checked",
            NamespaceId=ns_id,
            DnsConfig={"DnsRecords": [{"Type": "A", "TTL": 1}]},
            HealthCheckConfig={"Type": "HTTP", "ResourcePath": "/", "FailureThreshold": 1},
            Tags=[{"Key": "dockyard:health-check-interval", "Value": "1"}],
        )["Service"]
        removal = []
        for _ in range(3):
            target = HttpTarget().start()
            sd.register_instance(
                ServiceId=check["Id"],
                InstanceId="t",
                Attributes={"AWS_INSTANCE_IPV4": "127.0.0.1", "AWS_INSTANCE_PORT": str(target.port)},
            )

            def healthy() -> bool:
                found = sd.discover_instances(NamespaceName=ns_name, ServiceName="checked")
                return bool(found["Instances"])

            while not healthy():
                time.sleep(0.05)
            time.sleep(0.3)
            start = time.perf_counter()
            target.stop()
            while healthy():
                time.sleep(0.01)
            removal.append(time.perf_counter() - start)
            sd.deregister_instance(ServiceId=check["Id"], InstanceId="t")
        results["health_removal_s"] = {
            "bound": 2.0,
            "max": round(max(removal), 2),
            "mean": round(statistics.mean(removal), 2),
        }
        print("Health failure -> removal:", results["health_removal_s"], flush=True)
    finally:
        server.stop()
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
