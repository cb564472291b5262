"""Trace collector benchmark: spans ingested per second, in process and over HTTP, and memory per span.

Usage: ``.venv/bin/python bench/traces.py [--quick] [--spans 100000] [--batches 5 100]
[--connections 8] [--seconds 5]``

The spans are shaped as Envoy 1.40's Zipkin tracer sends them (``HTTP_JSON``: a CLIENT span with
one annotation, 16 tags and a local endpoint, ~700 bytes of JSON), each with its own trace id.

1. In process, on one core: ``parse_spans`` (JSON decode + the Zipkin v2 schema check, jsonschema_rs)
   then ``TraceStore.add`` over ``--spans`` spans in POST bodies of each ``--batches`` size
   (Envoy sends a batch once it holds ``min_flush_spans``, 5, or every 5 s): spans/s, and the
   share of the time in JSON decoding, the schema check and the store.
2. Over HTTP: the collector's routes (:class:`mesh.telemetry.traces_api.Collector`) on an aiohttp
   app in a child process on the default asyncio loop, as ``dockyard up`` serves them on its
   control port; ``--connections`` keep-alive clients (aiohttp, another process) POST batches for
   ``--seconds``: spans/s accepted (202), request p50/p99, the server's CPU per span (from
   ``/proc``), and its RSS growth per stored span. Client and server share the machine's cores.

3. Queries on a full store (the default bounds; 50,000 spans offered as 25,000 traces of a
   CLIENT and a SERVER span, of which the byte bound keeps about 44,000): ``TraceStore.traces``
   (``GET /api/v2/traces``) by service (newest 10) and for a span name no trace has (a full
   scan), ``trace(id)``, ``services()``; median of 20 runs.

4. What the tracer costs a sidecar: one Envoy (the wheel's 1.40, ``--concurrency 1``) with an
   HTTP listener answering ``direct_response`` 200, without a tracer and with the one the mesh
   sends (:meth:`mesh.telemetry.traces_envoy.Tracing.hcm`, sampling 100%, spans to figure 2's
   collector process; and again with the spans sent to a second Envoy that answers 202, to
   tell Envoy's own cost from the collector's on these shared cores), loaded by ``wrk -t1 -c8
   --latency`` for ``--seconds``, the three alternating ``--rounds`` times: the best requests/s
   and its p50/p99, and Envoy's own ``tracing.zipkin.*`` counters (spans sent, reports failed).
   wrk is a closed loop (it waits for each answer), so the figure is the throughput one core of
   Envoy keeps, not an open-loop latency; bench/mesh.py's figure 4 measures the sidecars'
   latency that way (without a tracer).

No peer figure: no Zipkin or Jaeger server can be had on this machine (Zipkin is a Java
server, Jaeger a Go binary; neither is on PyPI or in Debian's archive here, and PyPI's Zipkin
packages are clients). The result is printed as one JSON line at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh.telemetry.traces import Bounds, TraceStore, parse_spans  # noqa: E402
from mesh.telemetry.traces_api import Collector  # noqa: E402
from mesh.telemetry.traces_schema import SCHEMA  # noqa: E402


def envoy_span(i: int, now_us: int) -> dict[str, Any]:
    return {
        "traceId": f"{i:032x}", "id": f"{i:016x}", "name": "web.shop.local", "kind": "CLIENT",
        "timestamp": now_us + i, "duration": 1126,
        "localEndpoint": {"ipv4": "192.0.2.2", "serviceName": "front", "port": 0},
        "annotations": [{"timestamp": now_us + i + 1269, "value": "cr"}],
        "tags": {"user_agent": "curl/7.88.1", "response_size": "6", "node_id": "arn:aws:ecs:us-east-1:"
                 "000000000000:task/default/0123456789abcdef0123456789abcdef", "http.method": "GET",
                 "http.protocol": "HTTP/1.1", "response_flags": "-", "upstream_cluster.name": "web",
                 "downstream_cluster": "-", "peer.address": "127.0.0.1", "http.url": "http://web.shop.local/",
                 "request_size": "0", "component": "proxy", "http.status_code": "200",
                 "upstream_cluster": "web", "guid:x-request-id": "3921412f-182c-9b78-a551-f94234ee0e4a"},
    }


def bodies(count: int, batch: int, offset: int = 0) -> list[bytes]:
    now = int(time.time() * 1e6)
    return [json.dumps([envoy_span(offset + i + j, now) for j in range(batch)]).encode()
            for i in range(0, count, batch)]


def in_process(count: int, batch: int) -> dict[str, Any]:
    import jsonschema_rs

    posts = bodies(count, batch)
    store = TraceStore(Bounds(spans=count + 1, bytes=1 << 40))
    started = time.process_time()
    for body in posts:
        store.add(parse_spans(body))
    total = time.process_time() - started
    decode = time.process_time()
    decoded = [json.loads(b) for b in posts]
    decode = time.process_time() - decode
    check = time.process_time()
    validator = jsonschema_rs.validator_for(SCHEMA)
    for d in decoded:
        next(iter(validator.iter_errors(d)), None)
    check = time.process_time() - check
    assert store.span_count == count
    return {"batch": batch, "spans": count, "spans_per_s": round(count / total),
            "us_per_span": round(total / count * 1e6, 1),
            "share_json": round(decode / total, 2), "share_schema": round(check / total, 2),
            "share_store": round(max(0.0, total - decode - check) / total, 2)}


def queries() -> dict[str, Any]:
    from mesh.telemetry.traces import Query

    store = TraceStore(Bounds())
    now = int(time.time() * 1e6)
    count = store.bounds.spans // 2
    for i in range(count):
        client = envoy_span(i, now - count + i)
        server = dict(client, kind="SERVER", shared=True, localEndpoint={"serviceName": "web"})
        store.add([client, server])
    assert store.evicted == 2 * count - store.span_count  # the bytes bound may come first

    def median_ms(fn: Any) -> float:
        times = []
        for _ in range(20):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return round(statistics.median(times) * 1000, 2)

    return {"spans": store.span_count, "bytes": store.byte_count,
            "traces_by_service_ms": median_ms(lambda: store.traces(Query(service="web"))),
            "traces_no_match_ms": median_ms(lambda: store.traces(Query(span_name="nothing"))),
            "trace_by_id_ms": median_ms(lambda: store.trace(f"{count // 2:032x}")),
            "services_ms": median_ms(store.services)}


def tracer_config(admin: int, listen: int, collector: int | None, status: int = 200) -> dict[str, Any]:
    from google.protobuf import json_format

    from mesh.telemetry.traces_envoy import Tracing, collector_cluster

    manager: dict[str, Any] = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                 "HttpConnectionManager",
        "stat_prefix": "bench",
        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
            "match": {"prefix": "/"},
            "direct_response": {"status": status, "body": {"inline_string": "ok"}}}]}]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}
    clusters = []
    if collector is not None:
        manager["tracing"] = json_format.MessageToDict(Tracing(100.0).hcm())
        clusters.append(collector_cluster("127.0.0.1", collector))
    return {
        "node": {"id": "bench", "cluster": "bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {"clusters": clusters, "listeners": [{
            "name": "egress", "traffic_direction": "OUTBOUND",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen}},
            "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                            "typed_config": manager}]}]}]}}


def _wrk(port: int, seconds: float) -> dict[str, float]:
    import re
    import subprocess

    out = subprocess.run(["wrk", "-t1", "-c8", f"-d{max(1, round(seconds))}s", "--latency",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True).stdout

    def latency(q: str) -> float:
        m = re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50_ms": latency("50"), "p99_ms": latency("99")}


def _envoy_stats(admin: int) -> dict[str, int]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/stats?filter=tracing.zipkin", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return {k.split("tracing.zipkin.")[-1]: int(v) for k, _, v in (line.partition(": ") for line in lines)
            if v.strip().isdigit()}


def tracer_cost(seconds: float, rounds: int, flush_wait: float = 5.5) -> dict[str, Any]:
    import shutil
    import subprocess
    import tempfile
    import urllib.error
    import urllib.request

    from mesh.sidecar import envoy_binary
    from tests.support.server import free_port

    if shutil.which("wrk") is None:
        return {"skipped": "wrk is not installed"}
    def start_envoy(config: dict[str, Any], listen: int) -> tuple[subprocess.Popen, Any]:
        f = tempfile.NamedTemporaryFile("w", suffix=".json")
        json.dump(config, f)
        f.flush()
        envoy = subprocess.Popen([str(envoy_binary()), "-c", f.name, "--concurrency", "1",
                                  "--disable-hot-restart", "-l", "error"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{listen}/", timeout=1).read()
                return envoy, f
            except urllib.error.HTTPError:
                return envoy, f  # answering (the sink says 202 to a POST, 202 here too)
            except OSError:
                if time.monotonic() > deadline:
                    envoy.kill()
                    raise
                time.sleep(0.05)

    def stop_envoy(started: tuple[subprocess.Popen, Any]) -> None:
        started[0].terminate()
        started[0].wait(10)
        started[1].close()

    cport, sink_port = free_port(), free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    collector = ctx.Process(target=_serve, args=(cport, ready), daemon=True)
    collector.start()
    sink = start_envoy(tracer_config(free_port(), sink_port, None, status=202), sink_port)
    modes = {"off": None, "on": cport, "on_sink": sink_port}
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    stats: dict[str, dict[str, int]] = {"on": {}, "on_sink": {}}
    try:
        if not ready.wait(30):
            raise RuntimeError("the collector did not start")
        for _ in range(rounds):
            for mode, target in modes.items():
                admin, listen = free_port(), free_port()
                started = start_envoy(tracer_config(admin, listen, target), listen)
                try:
                    runs[mode].append(_wrk(listen, seconds))
                    if target is not None:
                        time.sleep(flush_wait)  # Envoy flushes what it holds every 5 s
                        for k, v in _envoy_stats(admin).items():
                            stats[mode][k] = stats[mode].get(k, 0) + v
                finally:
                    stop_envoy(started)
    finally:
        stop_envoy(sink)
        collector.kill()
        collector.join(5)

    def best(mode: str) -> dict[str, float]:
        return max(runs[mode], key=lambda r: r["rps"])

    out: dict[str, Any] = {m: best(m) for m in modes}
    out.update(runs=runs, zipkin=stats)
    for m in ("on", "on_sink"):
        off = out["off"]["rps"]
        out[f"{m}_throughput_cost"] = round(1 - out[m]["rps"] / off, 3) if off else None
    return out


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(port: int, ready: Any) -> None:
    from aiohttp import web

    async def main() -> None:
        collector = Collector(TraceStore(Bounds(spans=10_000_000, bytes=1 << 40)), 1024 * 1024)
        app = web.Application()
        collector.add_routes(app.router)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


async def _load(port: int, posts: list[bytes], connections: int, seconds: float) -> dict[str, Any]:
    import aiohttp

    url = f"http://127.0.0.1:{port}/api/v2/spans"
    latencies: list[float] = []
    failed = 0
    sent = 0
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession, k: int) -> None:
        nonlocal failed, sent
        i = k
        while time.monotonic() < deadline and i < len(posts):
            t = time.perf_counter()
            async with session.post(url, data=posts[i], headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 202:
                    failed += 1
            latencies.append(time.perf_counter() - t)
            sent += 1
            i += connections

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.monotonic()
        await asyncio.gather(*(client(session, k) for k in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return {"posts": sent, "failed": failed, "elapsed_s": round(elapsed, 2),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2)}


def over_http(batch: int, connections: int, seconds: float, cap: int) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    from tests.support.server import free_port

    port = free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(30):
            raise RuntimeError("the collector did not start")
        posts = bodies(cap, batch)
        rss0, cpu0 = _rss_kib(server.pid), _cpu(server.pid)
        result = asyncio.run(_load(port, posts, connections, seconds))
        cpu = _cpu(server.pid) - cpu0
        rss = _rss_kib(server.pid) - rss0
        spans = (result["posts"] - result["failed"]) * batch
        result.update(batch=batch, connections=connections, spans=spans,
                      spans_per_s=round(spans / result["elapsed_s"]),
                      server_cpu_us_per_span=round(cpu / max(1, spans) * 1e6, 1),
                      server_rss_bytes_per_span=round(rss * 1024 / max(1, spans)))
        return result
    finally:
        server.kill()
        server.join(5)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short, small run (a smoke test)")
    p.add_argument("--spans", type=int, default=100_000)
    p.add_argument("--batches", type=int, nargs="+", default=[5, 100])
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--rounds", type=int, default=2, help="figure 4's off/on alternations")
    args = p.parse_args()
    if args.quick:
        args.spans, args.seconds, args.connections = 2_000, 0.5, 2
    print(f"load average at start: {os.getloadavg()[0]:.2f}", flush=True)
    results: dict[str, Any] = {"in_process": [], "http": []}
    print("1. in process (parse_spans + TraceStore.add)", flush=True)
    for batch in args.batches:
        r = in_process(args.spans, batch)
        results["in_process"].append(r)
        print(f"   batch {batch:>4}: {r['spans_per_s']:>7} spans/s, {r['us_per_span']} us/span "
              f"(json {r['share_json']:.0%}, schema {r['share_schema']:.0%}, store {r['share_store']:.0%})",
              flush=True)
    print("2. over HTTP (POST /api/v2/spans, aiohttp)", flush=True)
    cap = max(args.spans, 400_000) if not args.quick else args.spans
    for batch in args.batches:
        r = over_http(batch, args.connections, args.seconds, cap)
        results["http"].append(r)
        print(f"   batch {batch:>4}: {r['spans_per_s']:>7} spans/s, {r['posts']} posts "
              f"({r['failed']} failed), "
              f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, server {r['server_cpu_us_per_span']} us CPU "
              f"and {r['server_rss_bytes_per_span']} B RSS per span", flush=True)
    print("3. queries on a full store", flush=True)
    q = results["queries"] = queries() if not args.quick else {}
    if q:
        print(f"   {q['spans']} spans ({q['bytes']} bytes of JSON): traces by service "
              f"{q['traces_by_service_ms']} ms, "
              f"a full scan {q['traces_no_match_ms']} ms, a trace by id {q['trace_by_id_ms']} ms, "
              f"services {q['services_ms']} ms", flush=True)
    print("4. the tracer in one Envoy (wrk, direct_response)", flush=True)
    t = results["tracer"] = (tracer_cost(1, 1, flush_wait=0) if args.quick
                             else tracer_cost(args.seconds, args.rounds))
    if "off" in t:
        for mode, what in (("off", "no tracer"), ("on", "spans to Dockyard's collector"),
                           ("on_sink", "spans to an Envoy answering 202")):
            r = t[mode]
            cost = "" if mode == "off" else f" ({t[mode + '_throughput_cost']:.1%} fewer)"
            print(f"   {what}: {r['rps']:.0f} req/s{cost}, p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms",
                  flush=True)
        print(f"   Envoy's zipkin counters: {t['zipkin']}", flush=True)
    else:
        print(f"   {t['skipped']}", flush=True)
    print(f"load average at end: {os.getloadavg()[0]:.2f}", flush=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
