"""Pull-through cache benchmark: a first pull through Dockyard from a local CNCF Distribution,
the same pull again from Dockyard's cache, and the same bytes straight from Distribution.

Usage: ``.venv/bin/python bench/pull_through.py [--mib 256] [--rounds 3]``

It starts ``/usr/bin/docker-registry serve`` (Distribution 2.8, filesystem storage in a
temporary dir, plain HTTP on a free port, no auth) and ``dockyard up`` (free ports, temporary
data dir), pushes one image to Distribution (an OCI manifest, a config and one layer of
``--mib`` MiB of random bytes) and creates a pull-through cache rule for it. Each round uses a
new image (nothing cached), and measures:

1. cold: the manifest GET through Dockyard, which fetches the layer from Distribution,
   verifies and stores it before answering, then the layer GET (MB/s over both);
2. warm: the manifest and layer GET again, answered from Dockyard's storage (MB/s);
3. peer: the layer GET straight from Distribution (MB/s).

It also prints the Dockyard process's peak resident memory (``VmHWM``) before the first round
and after the last: the layer streams to disk, so the peak should not grow by the layer size.
Client and servers share the machine's cores; the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.registry_auth import ensure_admin, fetch_token  # noqa: E402
from tests.support.server import Dockyard  # noqa: E402
from tests.support.upstream import Distribution  # noqa: E402

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MiB = 1 << 20


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def image(up: Distribution, repo: str, mib: int) -> tuple[str, str]:
    """Push a new image to ``up``; returns the layer digest and the manifest digest."""
    layer = os.urandom(mib * MiB)
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    body = json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}],
    }).encode()
    up.push_blob(repo, config)
    layer_digest = up.push_blob(repo, layer)
    return layer_digest, up.push_manifest(repo, "v1", body, OCI_MANIFEST)


def drain(response: requests.Response) -> int:
    assert response.status_code == 200, response.text[:300]
    return sum(len(c) for c in response.iter_content(1 << 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ptc-") as tmp:
        up = Distribution(Path(tmp) / "upstream").start()
        dy = Dockyard(Path(tmp) / "data", env={"DOCKYARD_GC_INTERVAL": "0"}).start()
        try:
            config = Path(tmp) / "aws-config"
            config.write_text("[default]\ncli_follow_urlparam = false\n")
            dy.aws("ecr", "create-pull-through-cache-rule", "--ecr-repository-prefix", "mirror",
                   "--upstream-registry-url", up.url, env={"AWS_CONFIG_FILE": str(config)})
            user, password = ensure_admin(dy)
            assert dy.proc is not None
            before = peak_rss_mib(dy.proc.pid)
            cold, warm, peer = [], [], []
            for n in range(args.rounds):
                repo = f"bench/r{n}"
                layer, _ = image(up, repo, args.mib)
                scope = f"repository:mirror/{repo}:pull"
                token = fetch_token(dy.registry_url, scope, user=user, password=password).json()["token"]
                auth = {"Authorization": f"Bearer {token}", "Accept": OCI_MANIFEST}
                session = requests.Session()
                for into in (cold, warm):
                    start = time.perf_counter()
                    drain(session.get(f"{dy.registry_url}/v2/mirror/{repo}/manifests/v1", headers=auth))
                    size = drain(session.get(f"{dy.registry_url}/v2/mirror/{repo}/blobs/{layer}",
                                             headers=auth, stream=True))
                    into.append(size / MiB / (time.perf_counter() - start))
                start = time.perf_counter()
                size = drain(session.get(f"{up.url}/v2/{repo}/blobs/{layer}", stream=True))
                peer.append(size / MiB / (time.perf_counter() - start))
            after = peak_rss_mib(dy.proc.pid)
        finally:
            dy.stop()
            up.stop()
    print(f"layer {args.mib} MiB, {args.rounds} rounds (median MB/s)")
    print(f"cold pull through Dockyard (fetch, verify, store, serve): {statistics.median(cold):8.1f}")
    print(f"warm pull from Dockyard's cache:                          {statistics.median(warm):8.1f}")
    print(f"the same layer straight from Distribution:                {statistics.median(peer):8.1f}")
    print(f"Dockyard peak RSS: {before:.0f} MiB before, {after:.0f} MiB after")


if __name__ == "__main__":
    main()
