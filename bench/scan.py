"""Scanner benchmark: Dockyard's whole scan (catalog + match) against Syft's cataloging alone.

Usage: ``.venv/bin/python bench/scan.py [--repeats 5] [--cache ~/.cache/dockyard-bench]
[--vulndb /work/shared/vulndb]``

Two images, built once and cached as layer tars under ``--cache``:

1. ``debian``: a Debian bookworm minbase root file system from
   ``debootstrap --variant=minbase bookworm DIR http://deb.debian.org/debian`` (needs root and
   Debian's mirror; about 90 dpkg packages), one layer.
2. ``python-npm``: the scan-on-push test image: a busybox base layer (``tests.support.images``)
   and a layer with ``pip install --target`` of urllib3 1.24.1, jinja2 2.10 and requests 2.21.0
   (their dependencies included) plus lodash 4.17.11 under ``app/node_modules`` (``npm pack``;
   its ``package.json`` written by hand when npm cannot reach its registry).

The advisory data in ``--vulndb`` is imported into a temporary ``VulnDB`` once, outside the
timings (its import time is reported on its own). Then per image, ``--repeats`` rounds, each:

- Dockyard's whole scan: ``scan_image`` over gzip layer blobs read from files (as the registry
  stores them), catalog and match against the DB;
- Dockyard's catalog only (``scan_image`` with no DB);
- Syft: ``syft scan docker-archive:PATH -o json -q`` on the same layers (uncompressed, as
  ``docker save`` writes them), offline. Its time includes its process start.

It prints median and best per measure, the Syft/Dockyard ratio, and a final JSON line.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.scan import scan_image  # noqa: E402
from registry.scan.vulndb import VulnDB, read_path  # noqa: E402
from tests.support.images import busybox_rootfs  # noqa: E402
from tests.unit.registry.scan.layerkit import manifest_for  # noqa: E402
from tests.unit.registry.scan.syftkit import docker_archive, syft_json  # noqa: E402

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


class FileBlobs:
    """A ``BlobOpener`` over blob files in a directory, named by digest."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.blobs: dict[str, bytes] = {}  # manifest_for's interface: digests added here are written

    def add(self, blob: bytes) -> str:
        d = "sha256:" + hashlib.sha256(blob).hexdigest()
        path = self.dir / d.replace(":", "-")
        if not path.exists():
            path.write_bytes(blob)
        return d

    def open(self, d: str) -> BinaryIO:
        return (self.dir / d.replace(":", "-")).open("rb")


def _stats(xs: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(xs), 4), "best": round(min(xs), 4)}


def run(args: argparse.Namespace) -> dict:
    cache = Path(args.cache).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    images = {"debian": [debian_layer(cache)], "python-npm": python_npm_layers(cache)}
    blobdir = cache / "blobs"
    blobdir.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="scanbench-") as tmp:
        start = time.perf_counter()
        db = VulnDB(Path(tmp) / "vulndb.sqlite")
        for p in sorted(Path(args.vulndb).iterdir()):
            if p.name != "README.md":
                db.import_records(read_path(p), str(p))
        import_s = time.perf_counter() - start
        print(f"vulndb import of {args.vulndb}: {import_s:.1f} s (not timed below)")
        report: dict = {"vulndb_import_s": round(import_s, 2), "load_before": os.getloadavg()[0]}
        report["images"] = {}
        for name, layers in images.items():
            store = FileBlobs(blobdir)
            gz = []
            for i, lay in enumerate(layers):
                path = cache / f"{name}-{i}.tar.gz"
                if not path.exists():
                    path.write_bytes(gzip.compress(lay, compresslevel=6, mtime=0))
                gz.append(path.read_bytes())
            manifest = manifest_for(store, gz)
            archive = Path(tmp) / f"{name}.tar"
            docker_archive(archive, layers)
            whole, cat, syft = [], [], []
            result = scan_image(store, manifest, db)  # warm: imports, comparators, SQLite pages
            syft_doc = syft_json(archive)
            for _ in range(args.repeats):
                t = time.perf_counter()
                result = scan_image(store, manifest, db)
                whole.append(time.perf_counter() - t)
                t = time.perf_counter()
                scan_image(store, manifest, None)
                cat.append(time.perf_counter() - t)
                t = time.perf_counter()
                syft_doc = syft_json(archive)
                syft.append(time.perf_counter() - t)
            entry = {
                "layers_bytes": sum(map(len, layers)),
                "gzip_bytes": sum(map(len, gz)),
                "packages": len(result.packages),
                "by_type": _count(p.type for p in result.packages),
                "findings": len(result.findings),
                "syft_packages": len(syft_doc["artifacts"]),
                "dockyard_scan_s": _stats(whole),
                "dockyard_catalog_s": _stats(cat),
                "syft_catalog_s": _stats(syft),
                "ratio_syft_over_scan_median": round(statistics.median(syft) / statistics.median(whole), 1),
            }
            report["images"][name] = entry
            print(
                f"{name}: {entry['packages']} packages {entry['by_type']}, {entry['findings']} findings; "
                f"syft {entry['syft_packages']} artifacts"
            )
            for label, xs in (("dockyard scan", whole), ("dockyard catalog", cat), ("syft catalog", syft)):
                s = _stats(xs)
                print(f"  {label:17} median {s['median'] * 1000:8.1f} ms  best {s['best'] * 1000:8.1f} ms")
            print(f"  syft / dockyard scan (medians): {entry['ratio_syft_over_scan_median']}x")
        db.close()
    deb = report["images"]["debian"]
    report["load_after"] = os.getloadavg()[0]
    report["target_met"] = (
        deb["dockyard_scan_s"]["median"] < 1.0
        and deb["dockyard_scan_s"]["median"] < deb["syft_catalog_s"]["median"]
    )
    return report


def _count(types) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in types:
        out[t] = out.get(t, 0) + 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--cache", default=os.environ.get("DOCKYARD_BENCH_CACHE", "~/.cache/dockyard-bench"))
    ap.add_argument("--vulndb", default="/work/shared/vulndb")
    print(json.dumps(run(ap.parse_args())))


if __name__ == "__main__":
    main()
