"""Edge benchmark: requests through the load balancer (the edge Envoy) against requests
straight to the target.

Usage: ``PATH=.venv/bin:$PATH .venv/bin/python bench/edge.py [--quick] [--rate 1000]
[--seconds 5] [--rounds 2] [--connections 16] [--wrk-seconds 5]``

It starts its own ``dockyard up`` (temp data dir, free ports), an upstream (bench/mesh.py's
raw asyncio ``Protocol`` on uvloop in its own process, a fixed 2-byte keep-alive answer: the
cheapest server, so the figures are the load balancer's), and through the real ``aws elbv2``
CLI a load balancer, an ``ip`` target group with that upstream as its target and an HTTP
listener forwarding to it. Once the target is healthy:

1. latency at a fixed ``--rate`` (open loop, bench/mesh.py's client: request ``i`` due at
   ``start + i/rate`` over ``--connections`` keep-alive connections, latency from when it was
   due), direct and through the edge alternating for ``--rounds`` rounds: p50/p90/p99, the
   difference and the ratio;
2. throughput: ``wrk`` (closed loop, 1 thread, ``--connections``) for ``--wrk-seconds``
   each way: requests per second and the ratio edge/direct;
3. the edge Envoy's CPU per 1,000 requests (``/proc/<pid>/stat`` utime+stime over figure 2's
   edge run, divided by the requests wrk made there).

Everything shares the machine's cores (2 on the shared machine): the load average is printed
first and last. Every process started is stopped on the way out. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mesh import _client_main, _summary, _upstream_main  # noqa: E402
from tests.support.edge import edge_port  # noqa: E402
from tests.support.server import Dockyard, free_port  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def envoy_pid(data_dir: Path) -> int:
    """The edge Envoy's pid: the process whose command line names the data dir's bootstrap."""
    config = str(data_dir / "edge" / "envoy.json")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if config.encode() in cmdline:
            return int(entry.name)
    raise RuntimeError("the edge Envoy is not running")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def wrk(port: int, seconds: int, connections: int) -> tuple[float, int]:
    """Requests per second ``wrk`` reaches against ``port`` (closed loop), and how many it made."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", f"http://127.0.0.1:{port}/"],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout
    found = re.search(r"Requests/sec:\s+([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    if found is None or count is None:
        raise RuntimeError(f"wrk printed no rate: {out}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError(f"wrk saw {errors.group(1)} failed answers")
    return float(found.group(1)), int(count.group(1))


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def setup(d: Dockyard, upstream: int) -> tuple[int, str]:
    """A load balancer whose listener forwards to the upstream; its port and target group."""
    lb = d.aws("elbv2", "create-load-balancer", "--name", "bench", "--type", "application")
    tg = d.aws("elbv2", "create-target-group", "--name", "bench", "--protocol", "HTTP",
               "--port", str(upstream), "--target-type", "ip", "--health-check-interval-seconds", "5",
               "--healthy-threshold-count", "2", "--health-check-timeout-seconds", "2",
               )["TargetGroups"][0]["TargetGroupArn"]
    d.aws("elbv2", "register-targets", "--target-group-arn", tg, "--targets", f"Id=127.0.0.1,Port={upstream}")
    port = edge_port()
    d.aws("elbv2", "create-listener", "--load-balancer-arn", lb["LoadBalancers"][0]["LoadBalancerArn"],
          "--protocol", "HTTP", "--port", str(port), "--default-actions", f"Type=forward,TargetGroupArn={tg}")
    return port, tg


def wait_healthy(d: Dockyard, tg: str, port: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = d.aws("elbv2", "describe-target-health", "--target-group-arn", tg)
        health = out["TargetHealthDescriptions"]
        if health and health[0]["TargetHealth"]["State"] == "healthy" and answers(port):
            return
        time.sleep(0.5)
    raise RuntimeError("the target did not become healthy behind the edge")


def run(args: argparse.Namespace) -> dict:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (scripts/dev setup)")
    ctx = mp.get_context("spawn")
    upstream_port = free_port()
    ready = ctx.Event()
    upstream = ctx.Process(target=_upstream_main, args=(upstream_port, ready), daemon=True)
    upstream.start()
    client = None
    tmp = Path(tempfile.mkdtemp(prefix="dockyard-bench-edge-"))
    d = Dockyard(tmp / "data")
    try:
        if not ready.wait(30):
            raise RuntimeError("upstream did not start")
        d.start(timeout=60)
        port, tg = setup(d, upstream_port)
        wait_healthy(d, tg, port)
        pid = envoy_pid(d.data_dir)
        plan: list[tuple[str, int, float]] = [("warm-direct", upstream_port, 0.5), ("warm-edge", port, 0.5)]
        for r in range(args.rounds):
            pair = [("direct", upstream_port, args.seconds), ("edge", port, args.seconds)]
            plan += pair if r % 2 == 0 else pair[::-1]
        out: mp.Queue = ctx.Queue()
        client = ctx.Process(target=_client_main, args=(plan, args.rate, args.connections, out), daemon=True)
        client.start()
        got = out.get(True, 60 + 2 * args.rounds * args.seconds)
        direct, edge = _summary(got["direct"]), _summary(got["edge"])
        rps_direct, _ = wrk(upstream_port, args.wrk_seconds, args.connections)
        cpu_before = cpu_seconds(pid)
        rps_edge, carried = wrk(port, args.wrk_seconds, args.connections)
        cpu_after = cpu_seconds(pid)
    finally:
        if client is not None:
            client.join(5)
            if client.is_alive():
                client.kill()
        if d.proc is not None:
            d.stop()
        upstream.kill()
        upstream.join(5)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "rate": args.rate, "connections": args.connections, "direct": direct, "edge": edge,
        "added_ms": {k: round(edge[k] - direct[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms")},
        "latency_ratio": {k: round(edge[k] / direct[k], 2) if direct[k] else None
                          for k in ("p50_ms", "p99_ms")},
        "rps_direct": round(rps_direct), "rps_edge": round(rps_edge),
        "rps_ratio": round(rps_edge / rps_direct, 3),
        "edge_envoy_cpu_ms_per_1000": round((cpu_after - cpu_before) * 1e6 / max(1, carried), 1),
    }


def report(r: dict) -> None:
    d, e = r["direct"], r["edge"]
    print(f"1. latency at {r['rate']:g} req/s over {r['connections']} connections (open loop)")
    for name, s in (("direct", d), ("edge", e)):
        print(f"   {name:<7} p50 {s['p50_ms']:.3f} ms  p90 {s['p90_ms']:.3f} ms  p99 {s['p99_ms']:.3f} ms"
              f"  ({s['requests']} requests, {s['errors']} errors, machine busy {s['machine_busy']:.0%})")
    a, ratio = r["added_ms"], r["latency_ratio"]
    print(f"   added by the edge: p50 {a['p50_ms']:+.3f} ms, p90 {a['p90_ms']:+.3f} ms,"
          f" p99 {a['p99_ms']:+.3f} ms; ratio edge/direct p50 {ratio['p50_ms']}, p99 {ratio['p99_ms']}")
    print(f"2. throughput (wrk, closed loop): direct {r['rps_direct']} req/s, edge {r['rps_edge']} req/s,"
          f" ratio edge/direct {r['rps_ratio']}")
    print(f"3. edge Envoy CPU: {r['edge_envoy_cpu_ms_per_1000']} ms per 1,000 requests")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short rounds at a low rate (a smoke test)")
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--wrk-seconds", type=int, default=5)
    args = p.parse_args(argv)
    if args.quick:
        args.rate, args.seconds, args.rounds, args.wrk_seconds = 200.0, 1.0, 1, 1
    print(f"load average at start: {load()}")
    results = run(args)
    report(results)
    print(f"load average at end: {load()}")
    print(json.dumps({"edge_vs_direct": results, "quick": args.quick, "mean_busy": statistics.mean(
        [results["direct"]["machine_busy"], results["edge"]["machine_busy"]])}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
