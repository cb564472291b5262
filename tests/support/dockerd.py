"""Extra Docker Engines on this machine: the container instances of placement tests.

:func:`extra_dockerds` starts ``count`` ``dockerd`` processes, each with its own
``--data-root``, ``--exec-root``, ``--pidfile``, socket ``unix:///run/dockyard-test-N.sock``,
``--iptables=false`` and a bridge of its own (``dyN``, 172.31.N.1/24) created beforehand and
passed as ``--bridge=dyN``. Never ``--bridge=none``: a daemon started so deletes the main
engine's ``docker0``. The test images are loaded into each (``docker save | docker -H load``).
Everything (daemons, their containers, bridges, directories) is torn down afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ExtraDockerd", "extra_dockerds"]


@dataclass
class ExtraDockerd:
    index: int
    root: Path
    proc: subprocess.Popen | None = None
    live_restore: bool = False  # --live-restore: containers keep running while dockerd restarts

    @property
    def bridge(self) -> str:
        return f"dy{self.index}"

    @property
    def socket(self) -> str:
        return f"/run/dockyard-test-{self.index}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    @property
    def exec_root(self) -> str:
        return f"/run/dy-test-{self.index}"  # short: containerd's socket path must fit in 108 bytes

    def docker(self, *args: str, **kw: object) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "-H", self.url, *args], capture_output=True, text=True, **kw)  # type: ignore[call-overload]

    def _ip(self, *args: str, check: bool = True) -> None:
        subprocess.run(["ip", *args], check=check, capture_output=True)

    def start(self, timeout: float = 60, fresh_bridge: bool = True) -> ExtraDockerd:
        if fresh_bridge:
            self._ip("link", "del", self.bridge, check=False)
            self._ip("link", "add", self.bridge, "type", "bridge")
            self._ip("addr", "add", f"172.31.{self.index}.1/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
        self.root.mkdir(parents=True, exist_ok=True)
        log = open(self.root / "dockerd.log", "ab")
        self.proc = subprocess.Popen(
            [
                "dockerd",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                self.exec_root,
                "--pidfile",
                f"/run/dockyard-test-{self.index}.pid",
                "-H",
                self.url,
                "--iptables=false",
                "--ip-masq=false",
                f"--bridge={self.bridge}",
                "--storage-driver=overlay2",
                *(["--live-restore"] if self.live_restore else []),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while self.docker("info", "--format", "{{.ID}}").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"dockerd {self.index} did not start: {(self.root / 'dockerd.log').read_text()[-2000:]}"
                )
            time.sleep(0.3)
        return self

    def load(self, *images: str) -> None:
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        loaded = subprocess.run(["docker", "-H", self.url, "load"], stdin=save.stdout, capture_output=True)
        save.wait()
        if loaded.returncode != 0 or save.returncode != 0:
            raise RuntimeError(f"loading {images} into dockerd {self.index} failed: {loaded.stderr!r}")

    def restart(self, down_for: float = 0.0) -> None:
        """Stop dockerd (SIGTERM) and start it again on the same bridge, after ``down_for``
        seconds without it: without live-restore its containers stop; with it they keep
        running (and keep their network)."""
        self.stop(remove=False)
        time.sleep(down_for)
        self.start(fresh_bridge=False)

    def stop(self, remove: bool = True) -> None:
        if self.proc is not None and self.proc.poll() is None:
            if remove:
                ids = self.docker("ps", "-aq").stdout.split()
                if ids:
                    self.docker("rm", "-f", *ids, timeout=60)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
        if remove:
            self._ip("link", "del", self.bridge, check=False)
            with contextlib.suppress(OSError):
                subprocess.run(["umount", "-R", self.exec_root], capture_output=True)
                # a dockerd with --live-restore leaves its data-root bind-mounted on itself
                subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True)
                shutil.rmtree(self.exec_root, ignore_errors=True)
                shutil.rmtree(self.root, ignore_errors=True)
                os.unlink(self.socket)


@contextlib.contextmanager
def extra_dockerds(
    base: Path, count: int = 3, images: tuple[str, ...] = (), first: int = 1, live_restore: bool = False
) -> Iterator[list[ExtraDockerd]]:
    """Start ``count`` extra engines (numbered from ``first``: modules that run engines of
    their own use distinct numbers) with ``images`` loaded; stop and remove them after."""
    daemons = [
        ExtraDockerd(i, base / f"dockerd-{i}", live_restore=live_restore) for i in range(first, first + count)
    ]
    try:
        for d in daemons:
            d.start()
            if images:
                d.load(*images)
        yield daemons
    finally:
        for d in daemons:
            d.stop()
