"""Registry benchmark: Dockyard's registry beside CNCF Distribution, in one run.

Usage: ``.venv/bin/python bench/registry.py [--seconds 10] [--connections 64] [--skip-docker]
[--push-client curl|python] [--storage disk|s3]``

``--storage s3`` starts one SeaweedFS (``tests/support/seaweed.py``) and puts both registries'
blobs in buckets of it: Dockyard's S3 driver (``blob_url``, streaming GETs) and
Distribution's ``s3`` driver (``redirect: disable``); the disk figures are a run without it.

It starts ``dockyard up`` (free ports, temporary data dir, periodic GC off) and
``/usr/bin/docker-registry serve`` (Distribution 2.8, filesystem storage in a temporary dir on
the same disk, plain HTTP on a free port, no auth, access log off), seeds both the same way,
then measures on each, printing both figures and their ratio (Dockyard / Distribution; for
seconds, Distribution / Dockyard, so above 1 always means Dockyard is faster):

1. manifest GET by tag, ``wrk`` with 64 connections (req/s);
2. 1 MiB blob GET, ``wrk`` with 64 connections (MB/s);
3. one 100 MiB monolithic push (POST, then PUT ?digest= with the whole body) (MB/s, best of 3);
4. 64 concurrent 4 MiB pushes (POST + PUT each) (MB/s, median of alternating rounds), by
   by default from one asyncio process with 64 concurrent aiohttp uploads (``--push-client
   aiohttp``); ``curl`` runs 64 ``curl`` pairs instead (one POST then one PUT
   ``--data-binary @file`` each, files written before the clock); ``python`` keeps the older
   generator (4 processes x 16 threads of ``http.client``). Blobs and digests are always made
   before the clock;
5. ``docker push`` and ``docker pull`` of a 5-layer 200 MB image built locally from random
   data (seconds; before each pull every local copy of the image is removed).

Dockyard enforces token auth: every request carries a bearer token fetched once per phase (as
docker does) for the bench user; Distribution runs without auth. The load generators share the
2 cores with the server under test, so these are lower bounds for both.
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry_auth import docker_env, ensure_admin, fetch_token  # noqa: E402
from tests.support.server import Dockyard, cpu_seconds, free_port  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MiB = 1 << 20
REPO = "bench/app"


class Target:
    """One registry under test: where it is and how to authorise a request to it."""

    def __init__(self, name: str, base: str, token_for: object = None) -> None:
        self.name, self.base = name, base
        self._token_for = token_for

    def headers(self, repository: str = REPO) -> dict[str, str]:
        if self._token_for is None:
            return {}
        return {"Authorization": f"Bearer {self._token_for(repository)}"}  # type: ignore[operator]


def _conn(base: str) -> http.client.HTTPConnection:
    u = urlsplit(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=600)


def _request(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(base: str, headers: dict[str, str], data: bytes, repository: str = REPO,
              conn: http.client.HTTPConnection | None = None, digest: str | None = None) -> str:
    """POST an upload, then PUT the whole body with its digest (works on both registries).
    The timed pushes pass ``digest`` computed beforehand, as a client that knows its blobs."""
    digest = digest or sha256(data)
    conn = conn or _conn(base)
    status, h, body = _request(conn, "POST", f"/v2/{repository}/blobs/uploads/", b"", headers)
    assert status == 202, (status, body[:300])
    location = h["location"]
    u = urlsplit(location)
    path = u.path + "?" + (u.query + "&" if u.query else "")
    status, _, body = _request(conn, "PUT", f"{path}digest={digest}", data,
                               {**headers, "Content-Type": "application/octet-stream"})
    assert status == 201, (status, body[:300])
    return digest


def seed(target: Target) -> None:
    """An image tagged ``v1`` (config + one 1 MiB layer) in REPO; its layer is the blob GET."""
    headers = target.headers()
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    layer = os.urandom(MiB)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": push_blob(target.base, headers, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": push_blob(target.base, headers, layer), "size": len(layer)}],
    }
    body = json.dumps(manifest).encode()
    status, _, text = _request(_conn(target.base), "PUT", f"/v2/{REPO}/manifests/v1", body,
                               {**headers, "Content-Type": OCI_MANIFEST})
    assert status == 201, (status, text[:300])
    target.blob = manifest["layers"][0]["digest"]  # type: ignore[attr-defined]


DOCKYARD_BUCKET, DIST_BUCKET = "bench-dockyard", "bench-distribution"  # --storage s3
S3_KEY, S3_SECRET = "dockyardtestkey", "dockyardtestsecret0123456789"  # tests/support/seaweed.py's key

_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def wrk(url: str, headers: dict[str, str], seconds: int, connections: int) -> tuple[float, float, int]:
    """(requests/s, MB/s, non-2xx) from ``wrk`` with 2 threads."""
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    mbs = float(m.group(1)) * _UNITS[m.group(2)] / 1e6  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, mbs, int(bad.group(1)) if bad else 0


def bench_manifest(target: Target, seconds: int, connections: int) -> float:
    headers = {**target.headers(), "Accept": OCI_MANIFEST}
    rps, _, bad = wrk(f"{target.base}/v2/{REPO}/manifests/v1", headers, seconds, connections)
    assert bad == 0, f"{target.name}: {bad} failed manifest GETs"
    return rps


def bench_blob(target: Target, seconds: int, connections: int) -> float:
    url = f"{target.base}/v2/{REPO}/blobs/{target.blob}"  # type: ignore[attr-defined]
    _, mbs, bad = wrk(url, target.headers(), seconds, connections)
    assert bad == 0, f"{target.name}: {bad} failed blob GETs"
    return mbs


def bench_big_push(target: Target, size: int = 100 * MiB, runs: int = 3) -> float:
    best = 0.0
    for _ in range(runs):
        data = os.urandom(size)
        digest, headers = sha256(data), target.headers()
        started = time.perf_counter()
        push_blob(target.base, headers, data, digest=digest)
        best = max(best, size / 1e6 / (time.perf_counter() - started))
    return best


def _push_worker(base: str, headers: dict[str, str], threads: int, size: int, barrier: object,
                 results: object) -> None:
    """One load process: makes ``threads`` blobs of ``size`` random bytes, waits for the others
    at ``barrier``, then pushes them from ``threads`` threads; puts (start, end) on ``results``."""
    blobs = [os.urandom(size) for _ in range(threads)]
    digests = [sha256(b) for b in blobs]
    conns = [_conn(base) for _ in range(threads)]
    barrier.wait()  # type: ignore[attr-defined]
    started = time.time()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda i: push_blob(base, headers, blobs[i], conn=conns[i], digest=digests[i]),
                      range(threads)))
    results.put((started, time.time()))  # type: ignore[attr-defined]


def bench_concurrent_push(
    target: Target, processes: int = 4, threads: int = 16, size: int = 4 * MiB
) -> float:
    """64 pushes at once (``processes`` x ``threads``); MB/s from the first start to the last end."""
    ctx = mp.get_context("fork")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    headers = target.headers()
    procs = [ctx.Process(target=_push_worker, args=(target.base, headers, threads, size, barrier, results))
             for _ in range(processes)]
    for p in procs:
        p.start()
    spans = [results.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
        assert p.exitcode == 0, f"{target.name}: a push process failed"
    elapsed = max(e for _, e in spans) - min(s for s, _ in spans)
    return processes * threads * size / 1e6 / elapsed


# One push by curl: POST, read Location (relative on Dockyard, absolute on Distribution), PUT the
# file with its digest; prints the PUT's status. It first waits for a line on stdin (the start).
_CURL_PUSH = r"""
read go
loc=$(curl -s -o /dev/null -D - -X POST -H "$AUTH" "$BASE/v2/$REPO/blobs/uploads/" \
      | sed -n 's/^[Ll]ocation: *//p' | tr -d '\r')
case "$loc" in http*) ;; *) loc="$BASE$loc" ;; esac
case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
curl -s -o /dev/null -w '%{http_code}' -X PUT -H "$AUTH" -H 'Expect:' \
     -H 'Content-Type: application/octet-stream' --data-binary @"$FILE" "$loc${sep}digest=$DIGEST"
"""


def bench_concurrent_push_curl(target: Target, pushes: int = 64, size: int = 4 * MiB) -> float:
    """``pushes`` pushes at once, one ``curl`` pair per push (see _CURL_PUSH); MB/s from the
    start signal to the last exit. Files and digests are made before the clock."""
    with tempfile.TemporaryDirectory(prefix="pushes-", dir=os.environ.get("BENCH_TMP")) as d:
        jobs = []
        for i in range(pushes):
            data = os.urandom(size)
            path = Path(d, f"blob{i}")
            path.write_bytes(data)
            auth = target.headers().get("Authorization", "X-No-Auth: 1")
            auth = f"Authorization: {auth}" if auth.startswith("Bearer") else auth
            env = {"PATH": os.environ["PATH"], "AUTH": auth, "BASE": target.base, "REPO": REPO,
                   "FILE": str(path), "DIGEST": sha256(data)}
            jobs.append(subprocess.Popen(["sh", "-c", _CURL_PUSH], env=env, stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, text=True))
        started = time.perf_counter()
        for p in jobs:
            p.stdin.write("go\n")  # type: ignore[union-attr]
            p.stdin.close()  # type: ignore[union-attr]
        codes = [p.stdout.read() for p in jobs]  # type: ignore[union-attr]
        for p in jobs:
            p.wait()
        elapsed = time.perf_counter() - started
    assert codes == ["201"] * pushes, f"{target.name}: push answers {sorted(set(codes))}"
    return pushes * size / 1e6 / elapsed


def _aiohttp_pushes(base: str, headers: dict[str, str], pushes: int, size: int, results: object) -> None:
    """In a process of its own: make the blobs and digests, then push them all at once from one
    asyncio loop (aiohttp, ``pushes`` connections); puts the elapsed seconds on ``results``."""
    import asyncio

    import aiohttp
    from yarl import URL

    blobs = [os.urandom(size) for _ in range(pushes)]
    digests = [sha256(b) for b in blobs]

    async def push(session: aiohttp.ClientSession, data: bytes, digest: str) -> None:
        async with session.post(f"{base}/v2/{REPO}/blobs/uploads/", headers=headers) as r:
            assert r.status == 202, (r.status, await r.text())
            location = r.headers["Location"]
        url = location if location.startswith("http") else base + location
        url += ("&" if "?" in url else "?") + f"digest={digest}"
        put_headers = {**headers, "Content-Type": "application/octet-stream"}
        async with session.put(URL(url, encoded=True), data=data, headers=put_headers) as r:
            assert r.status == 201, (r.status, await r.text())

    async def run() -> float:
        connector = aiohttp.TCPConnector(limit=pushes)
        async with aiohttp.ClientSession(connector=connector) as session:
            started = time.perf_counter()
            await asyncio.gather(*(push(session, b, d) for b, d in zip(blobs, digests, strict=True)))
            return time.perf_counter() - started

    results.put(asyncio.run(run()))  # type: ignore[attr-defined]


def bench_concurrent_push_aiohttp(target: Target, pushes: int = 64, size: int = 4 * MiB) -> float:
    """``pushes`` pushes at once from one asyncio process (aiohttp); MB/s."""
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    proc = ctx.Process(target=_aiohttp_pushes, args=(target.base, target.headers(), pushes, size, results))
    proc.start()
    elapsed = results.get(timeout=600)
    proc.join()
    assert proc.exitcode == 0, f"{target.name}: the push process failed"
    return pushes * size / 1e6 / elapsed


def _docker(*args: str, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)}: {proc.stderr}")
    return time.perf_counter() - started


def build_big_image(tag: str, layers: int = 5, layer_size: int = 40 * 1000 * 1000) -> None:
    with tempfile.TemporaryDirectory() as d:
        lines = ["FROM scratch"]
        for i in range(layers):
            Path(d, f"layer{i}.bin").write_bytes(os.urandom(layer_size))
            lines.append(f"COPY layer{i}.bin /layer{i}.bin")
        Path(d, "Dockerfile").write_text("\n".join(lines) + "\n")
        subprocess.run(["docker", "build", "-q", "-t", tag, d], check=True, capture_output=True)


def _dockerd_pid() -> int:
    return int(Path("/var/run/docker.pid").read_text().strip())


def bench_docker(dockyard: Dockyard, dist_addr: str, dist_pid: int,
                 rounds: int = 3) -> dict[str, tuple[float, float]]:
    """(Dockyard, Distribution) medians over ``rounds`` for docker push and pull (seconds), and
    the CPU seconds the registry and dockerd spent during each.

    Each round builds a new image (fresh random layers, so nothing can be skipped or mounted),
    alternates which registry goes first, and runs ``sync`` before each timed command, so
    neither registry inherits the other's dirty pages or dockerd's cleanup work."""
    env = docker_env(dockyard)
    pids = {"dockyard": dockyard.proc.pid, "distribution": dist_pid}  # type: ignore[union-attr]
    dockerd = _dockerd_pid()
    out: dict[str, dict[str, list[float]]] = {}

    def timed(kind: str, name: str, *args: str) -> None:
        os.sync()
        cpu_reg, cpu_docker = cpu_seconds(pids[name]), cpu_seconds(dockerd)
        seconds = _docker(*args, env=env)
        figures = out.setdefault(kind, {})
        figures.setdefault(f"{name} s", []).append(seconds)
        figures.setdefault(f"{name} registry cpu", []).append(cpu_seconds(pids[name]) - cpu_reg)
        figures.setdefault(f"{name} dockerd cpu", []).append(cpu_seconds(dockerd) - cpu_docker)

    for r in range(rounds):
        local = f"dockyard-bench/big:r{r}"
        build_big_image(local)
        refs = {"dockyard": f"{dockyard.registry}/bench/big{r}:v1",
                "distribution": f"{dist_addr}/bench/big{r}:v1"}
        order = list(refs) if r % 2 == 0 else list(reversed(refs))
        try:
            for name in order:
                _docker("tag", local, refs[name])
                timed("push", name, "push", "-q", refs[name])
            for name in order:
                subprocess.run(["docker", "rmi", "-f", local, *refs.values()], capture_output=True)
                subprocess.run(["docker", "builder", "prune", "-af"], capture_output=True)
                timed("pull", name, "pull", "-q", refs[name])
        finally:
            subprocess.run(["docker", "rmi", "-f", local, *refs.values()], capture_output=True)
    result = {}
    for kind, figures in out.items():
        med = {k: statistics.median(v) for k, v in figures.items()}
        print(f"  docker {kind}, medians of {rounds}: " + ", ".join(
            f"{name} {med[f'{name} s']:.1f} s (registry CPU {med[f'{name} registry cpu']:.1f} s, "
            f"dockerd CPU {med[f'{name} dockerd cpu']:.1f} s)" for name in ("dockyard", "distribution")),
            flush=True)
        label = f"docker {kind} 5 x 40 MB (s, median of {rounds})"
        result[label] = (med["dockyard s"], med["distribution s"])
    return result


def start_distribution(root: Path, s3: str = "") -> tuple[subprocess.Popen, str]:
    """Distribution on local disk, or with ``s3`` (an endpoint URL) its ``s3`` driver on bucket
    DIST_BUCKET there, redirects off (it streams, as Dockyard does in this bench)."""
    port = free_port()
    config = root / "config.yml"
    if s3:
        storage = (
            f"storage:\n  s3:\n    region: us-east-1\n    regionendpoint: {s3}\n    bucket: {DIST_BUCKET}\n"
            f"    accesskey: {S3_KEY}\n    secretkey: {S3_SECRET}\n    secure: false\n    v4auth: true\n"
            "    forcepathstyle: true\n    rootdirectory: /registry\n"
            "  redirect:\n    disable: true\n  delete:\n    enabled: true\n"
        )
    else:
        storage = (f"storage:\n  filesystem:\n    rootdirectory: {root / 'storage'}\n"
                   "  delete:\n    enabled: true\n")
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"{storage}"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    # aws-sdk-go v1 (Distribution's s3 driver) refuses to start with AWS_CA_BUNDLE set
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.Popen(["/usr/bin/docker-registry", "serve", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(root / "registry.log", "wb"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if _request(_conn(f"http://127.0.0.1:{port}"), "GET", "/v2/")[0] == 200:
                return proc, f"127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip-docker", action="store_true", help="leave out docker push/pull")
    parser.add_argument("--rounds", type=int, default=7, help="rounds of the concurrent pushes")
    parser.add_argument("--docker-rounds", type=int, default=3, help="rounds of docker push and pull")
    parser.add_argument("--only", choices=["manifest", "blob", "push", "pushes", "docker"], action="append",
                        help="run only these measures (repeatable; default: all)")
    parser.add_argument("--push-client", choices=["aiohttp", "curl", "python"], default="aiohttp",
                        help="load generator of the concurrent pushes: one asyncio process with 64 "
                             "aiohttp uploads (default), 64 curl processes, or the older 4 processes "
                             "x 16 threads of http.client")
    parser.add_argument("--storage", choices=["disk", "s3"], default="disk",
                        help="s3: both registries keep blobs in buckets of one SeaweedFS started here "
                             "(Dockyard's S3 driver streaming; Distribution's s3 driver, redirect off)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/registry.py needs wrk (apt-get install wrk)")

    tmp = Path(tempfile.mkdtemp(prefix="registry-bench-", dir=os.environ.get("BENCH_TMP")))
    (tmp / "dist").mkdir()
    env = {"DOCKYARD_GC_INTERVAL": "0"}
    seaweed = None
    if args.storage == "s3":
        from tests.support.seaweed import SeaweedS3

        seaweed = SeaweedS3.start(tmp / "seaweed")
        seaweed.bucket(DOCKYARD_BUCKET)
        seaweed.bucket(DIST_BUCKET)
        env.update({"DOCKYARD_BLOB_URL": f"s3://{DOCKYARD_BUCKET}/registry",
                    "DOCKYARD_S3_ENDPOINT": seaweed.endpoint,
                    "DOCKYARD_S3_ACCESS_KEY_ID": S3_KEY, "DOCKYARD_S3_SECRET_ACCESS_KEY": S3_SECRET})
    dockyard = Dockyard(tmp / "data", env=env)
    dist_proc = None
    try:
        dockyard.start()
        dist_proc, dist_addr = start_distribution(tmp / "dist", seaweed.endpoint if seaweed else "")
        user, password = ensure_admin(dockyard)

        def token(repository: str) -> str:
            r = fetch_token(dockyard.registry_url, f"repository:{repository}:pull,push", user=user,
                            password=password)
            r.raise_for_status()
            return r.json()["token"]

        targets = [Target("dockyard", dockyard.registry_url, token),
                   Target("distribution", f"http://{dist_addr}")]
        for t in targets:
            seed(t)
        rows: list[tuple[str, float, float, bool]] = []  # (measure, dockyard, distribution, higher better)

        def measure(label: str, fn: object, *fargs: object, rounds: int = 1) -> None:
            """Both targets, alternating, ``rounds`` times; the median of each."""
            runs: list[list[float]] = [[], []]
            for _ in range(rounds):
                for i, t in enumerate(targets):
                    runs[i].append(fn(t, *fargs))  # type: ignore[operator]
            values = [statistics.median(r) for r in runs]
            rows.append((label, values[0], values[1], True))
            print(f"  {label}: dockyard {values[0]:.1f}, distribution {values[1]:.1f}", flush=True)

        c = args.connections
        only = set(args.only or ["manifest", "blob", "push", "pushes", "docker"])
        if "manifest" in only:
            measure(f"manifest GET by tag, {c} conns (req/s)", bench_manifest, args.seconds, c)
        if "blob" in only:
            measure(f"1 MiB blob GET, {c} conns (MB/s)", bench_blob, args.seconds, c)
        if "push" in only:
            measure("100 MiB monolithic push (MB/s)", bench_big_push)
        if "pushes" in only:
            pusher = {"aiohttp": bench_concurrent_push_aiohttp, "curl": bench_concurrent_push_curl,
                      "python": bench_concurrent_push}[args.push_client]
            measure(f"64 concurrent 4 MiB pushes, {args.push_client} (MB/s, median of {args.rounds})", pusher,
                    rounds=args.rounds)
        if "docker" in only and not args.skip_docker:
            docker = bench_docker(dockyard, dist_addr, dist_proc.pid, args.docker_rounds)
            for label, (ours, theirs) in docker.items():
                rows.append((label, ours, theirs, False))
                print(f"  {label}: dockyard {ours:.1f}, distribution {theirs:.1f}", flush=True)

        print()
        storage = "S3 (SeaweedFS)" if seaweed else "disk"
        print(f"| measure, on {storage} | Dockyard | Distribution 2.8 | ratio |\n|---|---|---|---|")
        for label, ours, theirs, higher in rows:
            ratio = ours / theirs if higher else theirs / ours
            print(f"| {label} | {ours:,.1f} | {theirs:,.1f} | {ratio:.2f}x |")
    finally:
        if dist_proc is not None:
            dist_proc.terminate()
            dist_proc.wait(30)
        dockyard.stop()
        if seaweed is not None:
            seaweed.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
