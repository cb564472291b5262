"""The scanner's acceptance images, built from real packages once and cached (as layer tars)
under ``~/.cache/dockyard-bench`` (``$DOCKYARD_BENCH_CACHE``); ``bench/scan.py`` and the
integration tests share them.

1. :func:`debian_layer`: a Debian bookworm minbase root file system from
   ``debootstrap --variant=minbase bookworm DIR http://deb.debian.org/debian`` (needs root and
   Debian's mirror; about 90 dpkg packages), one layer. :func:`downgraded` rewrites its dpkg
   status so that some packages claim older versions.
2. :func:`python_npm_layers`: a busybox base layer (``tests.support.images``) and a layer with
   ``pip install --target`` of urllib3 1.24.1, jinja2 2.10 and requests 2.21.0 (their
   dependencies included) plus lodash 4.17.11 under ``app/node_modules`` (``npm pack``; its
   ``package.json`` written by hand when npm cannot reach its registry).
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.support.images import busybox_rootfs

__all__ = [
    "DEBIAN_DOWNGRADES",
    "cache_dir",
    "debian_downgraded_gz",
    "debian_layer",
    "downgraded",
    "gzipped",
    "python_npm_gz",
    "python_npm_layers",
]

MIRROR = "http://deb.debian.org/debian"
PIP_PACKAGES = ["urllib3==1.24.1", "jinja2==2.10", "requests==2.21.0"]
SITE = "usr/lib/python3.11/site-packages"


def _tar_tree(root: Path) -> bytes:
    """An uncompressed layer tar of the tree at ``root`` (paths relative, sorted, owners kept).
    GNU format: no PAX header per entry (``tarfile``'s PAX writer adds one for every float mtime,
    which layers written by Docker's Go tar do not carry)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, recursive=True)
    return buf.getvalue()


def debian_layer(cache: Path) -> bytes:
    """The bookworm minbase layer tar, built with debootstrap on first use."""
    out = cache / "debian-bookworm-minbase.tar"
    if out.exists():
        return out.read_bytes()
    rootfs = cache / "debian-rootfs"
    if not (rootfs / "var/lib/dpkg/status").exists():
        if shutil.which("debootstrap") is None:
            sys.exit("debootstrap is missing: apt-get install debootstrap")
        shutil.rmtree(rootfs, ignore_errors=True)
        print(f"debootstrap --variant=minbase bookworm {rootfs} {MIRROR}", file=sys.stderr)
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR], check=True)
    # As Debian's docker images (debuerreotype) do: no downloaded .debs, no apt lists (49 MB).
    for junk in [
        *(rootfs / "var/cache/apt/archives").glob("*.deb"),
        *(rootfs / "var/lib/apt/lists").glob("*"),
    ]:
        if junk.is_file():
            junk.unlink()
    data = _tar_tree(rootfs)
    out.write_bytes(data)
    return data


def python_npm_layers(cache: Path) -> list[bytes]:
    """The busybox base layer and the Python/npm application layer."""
    out = cache / "python-npm-app.tar"
    if not out.exists():
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            root = Path(tmp) / "root"
            site = root / SITE
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-compile",
                    "--target",
                    str(site),
                    *PIP_PACKAGES,
                ],
                check=True,
            )
            modules = root / "app/node_modules/lodash"
            modules.mkdir(parents=True)
            try:
                subprocess.run(
                    ["npm", "pack", "-q", "lodash@4.17.11", "--pack-destination", tmp],
                    check=True,
                    capture_output=True,
                    timeout=120,
                )
                with tarfile.open(Path(tmp) / "lodash-4.17.11.tgz") as tgz:
                    for m in tgz.getmembers():
                        if m.isfile() and m.name.startswith("package/"):
                            dest = modules / m.name.removeprefix("package/")
                            dest.parent.mkdir(parents=True, exist_ok=True)
                            dest.write_bytes(tgz.extractfile(m).read())  # type: ignore[union-attr]
            except (OSError, subprocess.SubprocessError) as e:
                print(f"npm pack failed ({e}): writing lodash's package.json", file=sys.stderr)
                (modules / "package.json").write_text('{"name": "lodash", "version": "4.17.11"}\n')
            out.write_bytes(_tar_tree(root))
    return [busybox_rootfs(), out.read_bytes()]


def cache_dir() -> Path:
    """Where the images are cached (made if missing)."""
    out = Path(os.environ.get("DOCKYARD_BENCH_CACHE", "~/.cache/dockyard-bench")).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    return out


def downgraded(layer: bytes, versions: Mapping[str, str]) -> bytes:
    """``layer`` with ``var/lib/dpkg/status`` rewritten: each binary package of ``versions``
    (name -> version) claims that version, and so does its source (``Source: NAME (VERSION)``
    where the source version differed). The other entries are copied unchanged."""
    src = tarfile.open(fileobj=io.BytesIO(layer))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as out:
        for member in src.getmembers():
            body = src.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./") == "var/lib/dpkg/status" and body is not None:
                text = _rewrite(body.read().decode(), versions).encode()
                member.size = len(text)
                out.addfile(member, io.BytesIO(text))
            else:
                out.addfile(member, body)
    return buf.getvalue()


def _rewrite(status: str, versions: Mapping[str, str]) -> str:
    stanzas = status.strip("\n").split("\n\n")
    out = []
    for stanza in stanzas:
        lines = stanza.split("\n")
        name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Package:")), "")
        if name in versions:
            new = versions[name]
            rewritten = []
            for ln in lines:
                if ln.startswith("Version:"):
                    ln = f"Version: {new}"
                elif ln.startswith("Source:") and "(" in ln:
                    ln = ln.split("(", 1)[0].rstrip() + f" ({new})"
                rewritten.append(ln)
            lines = rewritten
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


# Packages of the minbase image given versions from before a Debian advisory fixed them:
# glibc (DSA-5678-1, fixed 2.36-9+deb12u7), util-linux (DSA-5650-1, 2.38.1-5+deb12u1) and
# perl (DSA-5902-1, 5.36.0-7+deb12u2).
DEBIAN_DOWNGRADES = {
    "libc6": "2.36-9+deb12u4",
    "libc-bin": "2.36-9+deb12u4",
    "util-linux": "2.38.1-5",
    "perl-base": "5.36.0-7",
}


def gzipped(cache: Path, name: str, layer: bytes) -> bytes:
    """``layer`` gzipped (level 1: these are big), cached as ``<cache>/<name>.tar.gz``."""
    out = cache / f"{name}.tar.gz"
    if not out.exists():
        tmp = out.with_suffix(".tmp")
        tmp.write_bytes(gzip.compress(layer, compresslevel=1, mtime=0))
        tmp.rename(out)
    return out.read_bytes()


def debian_downgraded_gz(cache: Path) -> bytes:
    """The gzipped minbase layer with :data:`DEBIAN_DOWNGRADES` applied (cached)."""
    name = "debian-bookworm-minbase-downgraded"
    if (cache / f"{name}.tar.gz").exists():
        return (cache / f"{name}.tar.gz").read_bytes()
    return gzipped(cache, name, downgraded(debian_layer(cache), DEBIAN_DOWNGRADES))


def python_npm_gz(cache: Path) -> list[bytes]:
    """The gzipped layers of :func:`python_npm_layers` (cached)."""
    return [gzipped(cache, f"python-npm-{i}", layer) for i, layer in enumerate(python_npm_layers(cache))]
