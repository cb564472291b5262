"""Layers for the scanner's tests, written with ``tarfile`` in memory (no Docker)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass, field

__all__ = ["Blobs", "layer", "manifest_for"]


def layer(
    files: dict[str, bytes | str | tuple[str, str]], *, compress: bool = True, mode: int = 0o644
) -> bytes:
    """A layer blob: ``files`` maps a path to its content, or to ``("symlink", target)``,
    ``("dir", "")``, ``("hardlink", target)`` or ``("exec", content)``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.mode = mode
            data = b""
            if isinstance(content, tuple):
                kind, value = content
                if kind == "symlink":
                    info.type, info.linkname = tarfile.SYMTYPE, value
                elif kind == "hardlink":
                    info.type, info.linkname = tarfile.LNKTYPE, value
                elif kind == "dir":
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                elif kind == "exec":
                    data, info.mode = (value.encode() if isinstance(value, str) else value), 0o755
            else:
                data = content.encode() if isinstance(content, str) else content
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    raw = buf.getvalue()
    return gzip.compress(raw, mtime=0) if compress else raw


def digest(blob: bytes) -> str:
    return "sha256:" + hashlib.sha256(blob).hexdigest()


@dataclass
class Blobs:
    """A ``BlobOpener`` over blobs in memory."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def add(self, blob: bytes) -> str:
        d = digest(blob)
        self.blobs[d] = blob
        return d

    def open(self, d: str) -> io.BytesIO:
        return io.BytesIO(self.blobs[d])


def manifest_for(store: Blobs, layers: list[bytes], compressed: bool = True) -> dict:
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    )
    cd = store.add(config.encode())
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compressed else "")
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": cd,
            "size": len(config),
        },
        "layers": [{"mediaType": media, "digest": store.add(b), "size": len(b)} for b in layers],
    }
