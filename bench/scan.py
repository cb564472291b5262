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
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from registry.scan import scan_image  # noqa: E402
from registry.scan.vulndb import VulnDB, read_path  # noqa: E402
from tests.support.scan_images import debian_layer, python_npm_layers  # noqa: E402
from tests.unit.registry.scan.layerkit import manifest_for  # noqa: E402
from tests.unit.registry.scan.syftkit import docker_archive, syft_json  # noqa: E402


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
