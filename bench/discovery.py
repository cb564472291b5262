"""Discovery benchmark: DiscoverInstances req/s and latency, DNS qps, health-failure removal.

Usage: ``.venv/bin/python bench/discovery.py [--seconds 10] [--connections 64] [--workers 2]
[--control-workers 2] [--client wrk|python] [--wrk-nice 19]``

It starts its own ``dockyard up`` on free ports with a temporary data dir, creates a DNS
namespace with one service of 100 instances, then:

1. DiscoverInstances (signed, HealthStatus=HEALTHY, up to 100 instances per answer) over
   ``--connections`` keep-alive connections, from ``wrk`` (Debian's package; one C thread,
   the lightest load generator here) or, with ``--client python``, from ``--workers`` aiohttp
   processes. Dockyard runs with ``--control-workers`` processes on the control port.
   SigV4 signatures carry a date, so each worker signs its request once and replays it for
   the run (well inside the 5 minute window), as a static pre-signed request would be.
2. DNS A queries over UDP from ``--workers`` processes, each keeping 32 queries in flight.
3. Health failure to removal: an HTTP target is killed and the time until DiscoverInstances
   (HEALTHY) stops returning it is measured (interval 1 s, FailureThreshold 1; bound 2 s).

The load generators share the machine with the server, so the figures are a lower bound.
wrk runs at ``nice 19`` by default: it takes the CPU the server leaves, which is what a load
generator on another machine would cost the server (nothing); ``--wrk-nice 0`` measures wrk
competing with the server for the 2 cores instead.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import statistics
import subprocess
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


def wrk_discover(
    url: str, headers: dict[str, str], body: bytes, conns: int, seconds: float, nice: int = 0
) -> dict:
    """DiscoverInstances load from ``wrk`` (C, one thread): the replayed pre-signed request,
    at scheduling priority ``nice`` (19: wrk takes only the CPU the server leaves, as a load
    generator on another machine would; 0: it competes with the server for the 2 cores).

    Returns req/s and the p50/p99 that ``wrk --latency`` reports."""
    lua = "wrk.method = 'POST'\nwrk.body = " + json.dumps(body.decode()) + "\n" + "".join(
        f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}\n" for k, v in headers.items()
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        out = subprocess.run(
            ["nice", "-n", str(nice), "wrk", "-t1", f"-c{conns}", f"-d{int(seconds)}s", "--latency",
             "-s", f.name, url + "/"],
            capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.unlink(f.name)

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        assert m, out
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return round(float(m.group(1)) * scale, 2)

    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "client": "wrk",
        "nice": nice,
        "connections": conns,
        "errors": int(errors.group(1)) if errors else 0,
        "req_per_s": round(rps),
        "p50_ms": ms("50"),
        "p99_ms": ms("99"),
    }


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--control-workers", type=int, default=2,
                        help="dockyard up --control-workers (processes on the control port)")
    parser.add_argument(
        "--client", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--wrk-nice", type=int, default=19,
                        help="wrk's nice value: 19 (default) leaves the cores to the server first, as a load "
                             "generator on another machine would; 0 lets wrk compete with it")
    args = parser.parse_args()

    server = Dockyard(
        Path(tempfile.mkdtemp(prefix="dockyard-bench-")) / "data", env={"DOCKYARD_LOG_LEVEL": "warning"},
        extra_args=["--control-workers", str(args.control_workers)],
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
        if args.client == "wrk":
            headers = _signed(server.control_url, key, secret, body)
            results["discover"] = wrk_discover(
                server.control_url, headers, body, args.connections, args.seconds, args.wrk_nice
            )
        else:
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
