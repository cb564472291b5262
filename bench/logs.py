"""Log store benchmark: ingest rate and FilterLogEvents latency over 100k events, and the
measurement behind the storage choice (SQLite table vs append-only files).

Usage: ``.venv/bin/python bench/logs.py [--events 100000] [--repeats 5]``

1. **Ingest through the collector** (:class:`runner.logs.collector.Collector`): a fake engine
   yields ``--events`` Docker-format lines (``<RFC 3339 stamp> <message>``, chunks of 64 KiB,
   a mix of text and JSON lines of about 90 bytes); timed from the first ``follow`` to
   ``drained``: parsing, the queue, batching and SQLite commits. Lines per second.
2. **FilterLogEvents** (:class:`runner.logs.api.LogsApi`, in process, no HTTP) over the
   ``--events`` events of one group in 10 streams: a term pattern matching 1%, a JSON pattern
   matching 1%, one matching nothing (a whole scan), no pattern (the first 10,000), and a
   space-delimited one (``[verb = GET, path = /items/1, ...]``, 0.05%); median
   and best of ``--repeats``. Also GetLogEvents of a stream's last 100 events.
3. **Storage candidates**, the same events each: the SQLite store (``LogStore.append`` in
   batches of 2,000) and append-only files (one file per stream, a JSON line per event, as a
   file layout would keep them): ingest rate, a whole-group term scan, a stream's last 100
   events (files: read backwards from the end), and dropping the oldest half (retention; files:
   rewrite each file without its old lines, as no segment boundary falls there).

Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dockyard.config import Config  # noqa: E402
from runner.logs import pattern  # noqa: E402
from runner.logs.api import LogsApi  # noqa: E402
from runner.logs.collector import Collector  # noqa: E402
from runner.logs.data import LogStore  # noqa: E402

STREAMS = 10
BASE_MS = int(time.time() * 1000) - 3_600_000


def message(i: int) -> str:
    if i % 2:
        return json.dumps({"status": 500 if i % 100 == 1 else 200, "path": f"/items/{i % 977}",
                           "ms": i % 300})
    tail = " ERROR" if i % 100 == 0 else ""
    return f"GET /items/{i % 977} served in {i % 300} ms by worker-{i % 8}{tail}"


def docker_lines(n: int) -> Iterator[bytes]:
    chunk = []
    size = 0
    for i in range(n):
        ms = BASE_MS + i
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}000000Z"
        line = f"{stamp} {message(i)}\n".encode()
        chunk.append(line)
        size += len(line)
        if size >= 65536:
            yield b"".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield b"".join(chunk)


def bench_collector(tmp: Path, n: int) -> float:
    store = LogStore(tmp / "collector.db")
    chunks = list(docker_lines(n))
    collector = Collector(store, follow=lambda url, cid, since: iter(chunks))
    lc = {"logDriver": "awslogs", "options": {"awslogs-group": "/bench/c", "awslogs-stream-prefix": "p",
                                              "awslogs-create-group": "true"}}

    async def go() -> float:
        await collector.prepare(lc)
        started = time.perf_counter()
        await collector.follow("", "cid", "task", "app", lc)
        assert await collector.drained("cid", 600)
        return time.perf_counter() - started

    took = asyncio.run(go())
    collector.close()
    group = store.group("/bench/c")
    assert group is not None and store.stream(group.id, "p/app/task").stored_bytes > 0
    return n / took


def fill_sqlite(store: LogStore, n: int) -> tuple[float, int]:
    store.create_group("/bench/g")
    group = store.group("/bench/g")
    assert group is not None
    streams = []
    for s in range(STREAMS):
        store.create_stream(group.id, f"s/{s}")
        streams.append(store.stream(group.id, f"s/{s}"))
    started = time.perf_counter()
    batch: dict[int, list[tuple[int, str]]] = {s: [] for s in range(STREAMS)}
    for i in range(n):
        batch[i % STREAMS].append((BASE_MS + i, message(i)))
        if len(batch[i % STREAMS]) == 2000:
            store.append(streams[i % STREAMS], batch[i % STREAMS])
            batch[i % STREAMS] = []
    for s, events in batch.items():
        if events:
            store.append(streams[s], events)
    return n / (time.perf_counter() - started), group.id


def fill_files(root: Path, n: int) -> float:
    root.mkdir()
    files = [open(root / f"s{s}.log", "a", encoding="utf-8") for s in range(STREAMS)]
    started = time.perf_counter()
    pending: list[list[str]] = [[] for _ in range(STREAMS)]
    for i in range(n):
        pending[i % STREAMS].append(json.dumps([BASE_MS + i, message(i)]) + "\n")
        if len(pending[i % STREAMS]) == 2000:
            files[i % STREAMS].write("".join(pending[i % STREAMS]))
            files[i % STREAMS].flush()
            pending[i % STREAMS] = []
    for f, p in zip(files, pending, strict=True):
        f.write("".join(p))
        f.close()
    return n / (time.perf_counter() - started)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    times = []
    out = None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, min(times) * 1000, out


def file_scan(root: Path, needle: str) -> int:
    compiled = pattern.compile(needle)
    hits = 0
    for s in range(STREAMS):
        with open(root / f"s{s}.log", encoding="utf-8") as f:
            for line in f:
                if needle in line and compiled.matches(json.loads(line)[1]):
                    hits += 1
    return hits


def file_tail(path: Path, count: int) -> list[str]:
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        block = b""
        while end > 0 and block.count(b"\n") <= count:
            step = min(65536, end)
            end -= step
            f.seek(end)
            block = f.read(step) + block
    return [json.loads(x)[1] for x in block.splitlines()[-count:]]


def file_expire(root: Path, cutoff: int) -> None:
    for s in range(STREAMS):
        path = root / f"s{s}.log"
        tmp = path.with_suffix(".tmp")
        with open(path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
            for line in src:
                if json.loads(line)[0] >= cutoff:
                    dst.write(line)
        os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    n, repeats = args.events, args.repeats
    results: dict[str, Any] = {"events": n}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        results["collector_lines_per_s"] = round(bench_collector(tmp, n))
        store = LogStore(tmp / "logs.db")
        rate, gid = fill_sqlite(store, n)
        results["sqlite_append_per_s"] = round(rate)
        store.checkpoint()
        results["sqlite_bytes_full"] = (tmp / "logs.db").stat().st_size
        results["stored_bytes"] = store.total_bytes()  # as CloudWatch counts them (what the bound counts)
        api = LogsApi(store, Config())

        def filt(p: str) -> Callable[[], Any]:
            def run() -> Any:
                params = {"logGroupName": "/bench/g", "filterPattern": p}
                return asyncio.run(api.filter_log_events(None, params))
            return run

        for key, p in (("term", "ERROR"), ("json", "{ $.status = 500 }"), ("none_match", "NOTHERE"),
                       ("no_pattern", ""), ("delimited", "[verb = GET, path = /items/1, ...]")):
            med, best, out = timed(filt(p), repeats)
            results[f"filter_{key}_ms"] = [round(med, 1), round(best, 1), len(out["events"])]
        med, best, out = timed(lambda: asyncio.run(api.get_log_events(
            None, {"logGroupName": "/bench/g", "logStreamName": "s/3", "limit": 100})), repeats)
        results["get_tail_ms"] = [round(med, 2), round(best, 2), len(out["events"])]
        med, best, hits = timed(lambda: sum(1 for e in store.group_events(
            gid, start=None, end=None, after=None, stream_ids=None, needles=["ERROR"])), repeats)
        results["sqlite_scan_term_ms"] = [round(med, 1), round(best, 1), hits]
        store.set_retention("/bench/g", 1)
        started = time.perf_counter()
        while store.expire(now=BASE_MS + n // 2 + 86_400_000) > 0:  # a day after the middle event
            pass
        results["sqlite_expire_half_ms"] = round((time.perf_counter() - started) * 1000, 1)
        root = tmp / "files"
        results["files_append_per_s"] = round(fill_files(root, n))
        results["files_bytes_full"] = sum(f.stat().st_size for f in root.glob("*.log"))
        med, best, hits = timed(lambda: file_scan(root, "ERROR"), repeats)
        results["files_scan_term_ms"] = [round(med, 1), round(best, 1), hits]
        med, best, out = timed(lambda: file_tail(root / "s3.log", 100), repeats)
        results["files_tail_ms"] = [round(med, 2), round(best, 2), len(out)]
        started = time.perf_counter()
        file_expire(root, BASE_MS + n // 2)
        results["files_expire_half_ms"] = round((time.perf_counter() - started) * 1000, 1)
    for key, value in results.items():
        print(f"{key:26} {value}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
