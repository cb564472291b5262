"""Storage: blobs stored once under the data dir, memory bounded for a 2 GiB blob."""

from __future__ import annotations

import hashlib
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.support.registry import RegistryClient, sha256
from tests.support.server import Dockyard

MiB = 1024 * 1024


def _blob_files(server: Dockyard) -> list[Path]:
    return [p for p in (server.data_dir / "registry" / "blobs").rglob("*") if p.is_file()]


def _memory(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` memory field (``VmRSS``), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc/{pid}/status")


def test_a_blob_pushed_to_many_repositories_is_stored_once(dockyard: Dockyard) -> None:
    reg = RegistryClient(dockyard)
    data = uuid.uuid4().bytes * 1000
    digest = sha256(data)
    for i in range(3):
        reg.push_blob(f"storage/once{i}-{digest[7:15]}", data)
    matches = [p for p in _blob_files(dockyard) if p.name == digest.split(":")[1]]
    assert len(matches) == 1
    assert matches[0].read_bytes() == data


class _PeakRss:
    """Samples a process's VmRSS in a thread until stopped; ``peak`` is the highest seen."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, _memory(pid, "VmRSS")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, _memory(self.pid, "VmRSS"))

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def _stream(total: int, seed: bytes) -> Iterator[bytes]:
    block = hashlib.sha256(seed).digest() * (MiB // 32)
    for i in range(total // MiB):
        yield i.to_bytes(8, "big") + block[8:]


def test_pushing_and_pulling_a_2_gib_blob_keeps_memory_bounded(fresh_dockyard: Dockyard) -> None:
    server = fresh_dockyard.start()
    assert server.proc is not None
    pid = server.proc.pid
    reg = RegistryClient(server)
    warm = b"warm up every code path once"
    reg.push_blob("storage/big", warm)  # also gets the token a streamed body needs up front
    reg.get(f"/v2/storage/big/blobs/{sha256(warm)}")
    before = _memory(pid, "VmRSS")
    sampler = _PeakRss(pid)
    total = 2 * 1024 * MiB
    hasher = hashlib.sha256()
    for chunk in _stream(total, b"big"):
        hasher.update(chunk)
    digest = "sha256:" + hasher.hexdigest()
    r = reg.post("/v2/storage/big/blobs/uploads/", params={"digest": digest}, data=_stream(total, b"big"))
    assert r.status_code == 201, r.text
    pulled = hashlib.sha256()
    size = 0
    with reg.get(f"/v2/storage/big/blobs/{digest}", stream=True) as r:
        assert r.status_code == 200
        for chunk in r.iter_content(MiB):
            pulled.update(chunk)
            size += len(chunk)
    assert (size, "sha256:" + pulled.hexdigest()) == (total, digest)
    grown = max(sampler.stop(), _memory(pid, "VmRSS")) - before
    print(f"2 GiB push+pull: server peak RSS grew by {grown / MiB:.1f} MiB")
    assert grown < 64 * MiB, f"peak RSS grew by {grown / MiB:.1f} MiB"
    assert os.path.getsize(next(p for p in _blob_files(server) if p.name == digest[7:])) == total
