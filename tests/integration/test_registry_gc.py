"""Garbage collection on a running registry: the CLI, the API operation and the periodic loop.

Each test has a Dockyard of its own (``fresh_dockyard``), since collecting with a short grace
window would take other tests' fresh blobs.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from dockyard.aws.protocol import ECR
from dockyard.client import Client
from registry.gc import OPERATION
from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    RegistryClient,
    canonical,
    descriptor,
    sha256,
)
from tests.support.server import Dockyard

GRACE = 5.0  # longer than any one image push below takes from its first blob to its manifest


def start(server: Dockyard, **env: str) -> Dockyard:
    server.env.update(env)
    return server.start()


def gc_cli(server: Dockyard, *args: str) -> dict[str, Any]:
    proc = server.cli(
        "registry", "gc", "--data-dir", str(server.data_dir), "--endpoint-url", server.control_url,
        "--json", *args,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def blob_file(server: Dockyard, digest: str) -> Path:
    algorithm, hexa = digest.split(":")
    return server.data_dir / "registry" / "blobs" / algorithm / hexa[:2] / hexa


def pull_image(client: RegistryClient, name: str, tag: str) -> tuple[bytes, dict[str, bytes]]:
    """The manifest bytes and every blob's bytes, as a client pulls them."""
    r = client.get(f"/v2/{name}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    assert r.status_code == 200, (name, tag, r.status_code, r.text)
    doc = json.loads(r.content)
    blobs = {}
    for d in [doc["config"], *doc["layers"]]:
        b = client.get(f"/v2/{name}/blobs/{d['digest']}")
        assert b.status_code == 200, (name, d["digest"], b.status_code, b.text)
        blobs[d["digest"]] = b.content
    return r.content, blobs


def test_gc_removes_an_orphaned_blob_and_an_abandoned_upload_and_a_dry_run_removes_nothing(fresh_dockyard):
    server = start(fresh_dockyard, DOCKYARD_GC_INTERVAL="0")
    client = RegistryClient(server)
    kept_digest, kept_manifest = client.push_image("gc/kept", "v1", [b"kept layer"], config=b'{"k":1}')
    orphan = client.push_blob("gc/orphan", os.urandom(4096))
    r = client.post("/v2/gc/orphan/blobs/uploads/")
    assert r.status_code == 202
    upload = r.headers["Location"]
    assert client.patch(upload, data=b"half an upload").status_code == 202

    dry = gc_cli(server, "--dry-run", "--grace", "0")
    assert dry["dry_run"] and dry["blobs_deleted"] == [orphan] and dry["bytes_deleted"] == 4096
    assert len(dry["uploads_deleted"]) == 1 and dry["uploads_deleted"][0] in upload
    assert client.get(f"/v2/gc/orphan/blobs/{orphan}").status_code == 200
    assert client.get(upload).status_code == 204
    assert blob_file(server, orphan).exists()

    kept = gc_cli(server)  # the default grace window (an hour): everything is too fresh to go
    assert kept["blobs_deleted"] == [] and kept["uploads_deleted"] == [] and kept["blobs_kept_recent"] == 1

    done = gc_cli(server, "--grace", "0")
    assert done["blobs_deleted"] == [orphan] and done["uploads_deleted"] == dry["uploads_deleted"]
    r = client.get(f"/v2/gc/orphan/blobs/{orphan}")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    r = client.get(upload)
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"
    assert not blob_file(server, orphan).exists()
    assert list((server.data_dir / "registry" / "uploads").iterdir()) == []
    manifest, blobs = pull_image(client, "gc/kept", "v1")
    assert manifest == kept_manifest and sorted(blobs.values()) == sorted([b"kept layer", b'{"k":1}'])
    assert client.head(f"/v2/gc/kept/manifests/{kept_digest}").status_code == 200

    text = server.cli("registry", "gc", "--data-dir", str(server.data_dir), "--endpoint-url",
                      server.control_url, "--dry-run")
    assert text.returncode == 0 and text.stdout.startswith("would delete 0 blobs"), text.stdout


def test_deleting_a_tag_keeps_the_image_and_deleting_the_manifest_lets_gc_take_its_own_blobs(fresh_dockyard):
    server = start(fresh_dockyard, DOCKYARD_GC_INTERVAL="0")
    client = RegistryClient(server)
    shared = b"shared base layer"
    digest, _ = client.push_image("gc/app", "v1", [shared, b"app layer"], config=b'{"app":1}')
    client.push_image("gc/other", "v1", [shared], config=b'{"other":1}')

    assert client.delete("/v2/gc/app/manifests/v1").status_code == 202
    assert client.get("/v2/gc/app/manifests/v1").status_code == 404
    assert client.get(f"/v2/gc/app/manifests/{digest}").status_code == 200
    assert gc_cli(server, "--grace", "0")["blobs_deleted"] == []

    assert client.delete(f"/v2/gc/app/manifests/{digest}").status_code == 202
    assert client.get(f"/v2/gc/app/manifests/{digest}").status_code == 404
    report = gc_cli(server, "--grace", "0")
    assert sorted(report["blobs_deleted"]) == sorted([sha256(b"app layer"), sha256(b'{"app":1}')])
    assert client.get(f"/v2/gc/other/blobs/{sha256(shared)}").content == shared


def test_the_operation_refuses_a_malformed_grace_or_dry_run(fresh_dockyard):
    server = start(fresh_dockyard, DOCKYARD_GC_INTERVAL="0")
    api = Client(server.control_url, *server.credentials)
    for params in ({"graceSeconds": -1}, {"graceSeconds": "soon"}, {"graceSeconds": True}, {"dryRun": "yes"}):
        with pytest.raises(Exception) as info:
            api.call(ECR, OPERATION, params)
        assert getattr(info.value, "code", None) == "InvalidParameterException", params


def test_the_periodic_gc_collects_without_being_asked(fresh_dockyard):
    server = start(fresh_dockyard, DOCKYARD_GC_INTERVAL="0.2", DOCKYARD_GC_GRACE="0")
    client = RegistryClient(server)
    orphan = client.push_blob("gc/periodic", b"nobody names me")
    deadline = time.monotonic() + 30
    while blob_file(server, orphan).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not blob_file(server, orphan).exists()
    assert client.get(f"/v2/gc/periodic/blobs/{orphan}").status_code == 404


class Pusher:
    """Pushes images as docker does: HEAD each blob, else mount it from ``source``, else upload
    it (POST then PUT, or chunked PATCHes); then the manifest. Records what it pushed."""

    def __init__(self, server: Dockyard, index: int, source: str, base: bytes) -> None:
        self.client = RegistryClient(server)
        self.name = f"gc/push{index:02d}"
        self.source, self.base = source, base
        self.rng = random.Random(index)
        self.pushed: dict[str, bytes] = {}

    def blob(self, data: bytes) -> dict[str, Any]:
        digest, c, name = sha256(data), self.client, self.name
        if c.head(f"/v2/{name}/blobs/{digest}").status_code == 200:
            return descriptor(OCI_LAYER, data)
        r = c.post(f"/v2/{name}/blobs/uploads/", params={"mount": digest, "from": self.source})
        if r.status_code == 201:
            return descriptor(OCI_LAYER, data)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        if self.rng.random() < 0.5:
            half = len(data) // 2
            for start, part in ((0, data[:half]), (half, data[half:])):
                span = f"{start}-{start + len(part) - 1}"
                r = c.patch(location, data=part, headers={
                    "Content-Range": span, "Content-Type": "application/octet-stream"})
                assert r.status_code == 202, r.text
                location = r.headers["Location"]
            r = c.put(location, params={"digest": digest})
        else:
            r = c.put(location, params={"digest": digest}, data=data)
        assert r.status_code == 201, r.text
        return descriptor(OCI_LAYER, data)

    def push(self, tag: str) -> None:
        layers = [self.base, *(os.urandom(self.rng.randint(1, 64) * 1024) for _ in range(2))]
        config = json.dumps({"repo": self.name, "tag": tag}).encode()
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {**self.blob(config), "mediaType": OCI_CONFIG},
            "layers": [self.blob(layer) for layer in layers],
        }
        body = canonical(doc)
        r = self.client.push_manifest(self.name, tag, body)
        assert r.status_code == 201, r.text
        self.pushed[tag] = body


def test_gc_in_a_loop_while_20_clients_push_loses_no_pushed_blob(fresh_dockyard):
    server = start(fresh_dockyard, DOCKYARD_GC_INTERVAL="0")  # the loop below is the only GC
    client = RegistryClient(server)
    # Garbage older than the grace window, sharing its base layer with every push to come: the
    # pushers mount that layer from the garbage's repository just as GC takes it.
    base = os.urandom(32 * 1024)
    trash_only = set()
    for i in range(5):
        layer, config = os.urandom(8192), f'{{"t":{i}}}'.encode()
        digest, _ = client.push_image("gc/trash", f"t{i}", [base, layer], config=config)
        assert client.delete(f"/v2/gc/trash/manifests/{digest}").status_code == 202
        trash_only |= {sha256(layer), sha256(config)}
    time.sleep(GRACE + 0.5)

    api = Client(server.control_url, *server.credentials)
    pushing = threading.Event()
    pushing.set()
    reports: list[dict[str, Any]] = []

    def collect() -> None:
        while pushing.is_set():
            reports.append(api.call(ECR, OPERATION, {"graceSeconds": GRACE}))

    pushers = [Pusher(server, i, "gc/trash", base) for i in range(20)]
    with ThreadPoolExecutor(max_workers=21) as pool:
        collector = pool.submit(collect)
        futures = [pool.submit(lambda p=p: [p.push(f"v{n}") for n in range(4)]) for p in pushers]
        try:
            for f in futures:
                f.result()
        finally:
            pushing.clear()
        collector.result()

    deleted = {d for r in reports for d in r["blobs_deleted"]}
    assert len(reports) >= 2 and trash_only <= deleted  # GC ran during the pushes and took garbage
    puller = RegistryClient(server)
    count = 0
    for p in pushers:
        for tag, body in p.pushed.items():
            manifest, blobs = pull_image(puller, p.name, tag)
            assert manifest == body
            doc = json.loads(body)
            for d in [doc["config"], *doc["layers"]]:
                assert sha256(blobs[d["digest"]]) == d["digest"] and len(blobs[d["digest"]]) == d["size"]
            count += 1
    assert count == 80
    # A last run with the grace window over removes the garbage but none of the 80 images.
    time.sleep(GRACE + 0.5)
    api.call(ECR, OPERATION, {"graceSeconds": GRACE})
    for p in pushers[:3]:
        for tag, body in p.pushed.items():
            assert pull_image(puller, p.name, tag)[0] == body
