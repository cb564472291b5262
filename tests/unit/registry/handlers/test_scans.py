"""Scan on push over the real handlers, store and memory driver: the lifecycle of a scan
(IN_PROGRESS → COMPLETE, FAILED with a reason, UNSUPPORTED_IMAGE) and the ECR answers
(DescribeImages, DescribeImageScanFindings, StartImageScan)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from registry.ecr import api, data, images, scans
from registry.ecr.errors import ScanNotFoundException
from registry.scan import blob_store_opener
from registry.scan.vulndb import VulnDB, read_path
from tests.unit.registry.handlers.conftest import OCI_MANIFEST, push_image
from tests.unit.registry.scan.layerkit import layer

URLLIB3 = layer(
    {"app/urllib3-1.24.1.dist-info/METADATA": "Metadata-Version: 2.1\nName: urllib3\nVersion: 1.24.1\n\n"}
)
RECORD = {
    "id": "PYSEC-2019-132",
    "modified": "2021-06-01T00:00:00Z",
    "aliases": ["CVE-2019-11236"],
    "summary": "CRLF injection",
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "urllib3"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.24.3"}]}],
        }
    ],
    "references": [{"type": "ADVISORY", "url": "https://osv.dev/PYSEC-2019-132"}],
}


def import_db(tmp_path: Path) -> Path:
    src = tmp_path / "PYSEC-2019-132.json"
    src.write_text(json.dumps(RECORD))
    path = tmp_path / "vulndb.sqlite"
    db = VulnDB(path)
    db.import_records(read_path(src), str(src))
    db.close()
    return path


@pytest.fixture
async def ecr(served: Any, tmp_path: Path) -> api.Ecr:
    _, registry = served
    scanner = scans.Scanner(registry.meta, blob_store_opener(registry.blobs), tmp_path / "vulndb.sqlite")
    scanner.wants_scan = api.wants_scan
    registry.on_push = scanner.pushed
    await data.create(registry.meta.store, data.Settings("shop/web", 0.0, scan_on_push=True))
    await data.create(registry.meta.store, data.Settings("shop/plain", 0.0))
    return api.Ecr(registry, None, "123456789012", "us-east-1", "127.0.0.1:5000", "http", scanner)  # type: ignore[arg-type]


async def settled(ecr: api.Ecr, name: str, digest: str) -> scans.Scan:
    assert ecr.scanner is not None
    while ecr.scanner.tasks:
        await asyncio.gather(*ecr.scanner.tasks)
    scan = scans.get(ecr.store, name, digest)
    assert scan is not None
    return scan


async def test_a_push_is_scanned_in_progress_then_complete(served, ecr, tmp_path):
    client, _ = served
    import_db(tmp_path)
    assert ecr.scanner is not None
    await ecr.scanner.gate.acquire()  # hold the scan so that its IN_PROGRESS row is seen
    digest, _ = await push_image(client, "shop/web", "1", URLLIB3)
    await asyncio.sleep(0.05)
    running = scans.get(ecr.store, "shop/web", digest)
    assert running is not None and running.status == "IN_PROGRESS"
    described = await images.describe_images(ecr, None, {"repositoryName": "shop/web"})  # type: ignore[arg-type]
    assert described["imageDetails"][0]["imageScanStatus"]["status"] == "IN_PROGRESS"
    ecr.scanner.gate.release()
    scan = await settled(ecr, "shop/web", digest)
    assert scan.status == "COMPLETE", scan.reason
    assert scan.counts == {"UNDEFINED": 1} and scan.source_updated is not None

    (detail,) = (await images.describe_images(ecr, None, {"repositoryName": "shop/web"}))["imageDetails"]  # type: ignore[arg-type]
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    summary = detail["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == {"UNDEFINED": 1}
    assert summary["imageScanCompletedAt"] >= summary["vulnerabilitySourceUpdatedAt"]

    params = {"repositoryName": "shop/web", "imageId": {"imageTag": "1"}}
    out = await images.describe_image_scan_findings(ecr, None, params)  # type: ignore[arg-type]
    (finding,) = out["imageScanFindings"]["findings"]
    attrs = {a["key"]: a["value"] for a in finding["attributes"]}
    assert finding["name"] == "PYSEC-2019-132" and finding["uri"] == "https://osv.dev/PYSEC-2019-132"
    assert attrs["package_name"] == "urllib3" and attrs["package_version"] == "1.24.1"
    assert attrs["fixed_version"] == "1.24.3" and attrs["aliases"] == "CVE-2019-11236"
    assert out["imageScanFindings"]["findingSeverityCounts"] == {"UNDEFINED": 1}


async def test_findings_are_paginated(served, ecr, tmp_path):
    client, _ = served
    records = tmp_path / "osv"
    records.mkdir()
    for i in range(3):
        (records / f"R-{i}.json").write_text(json.dumps({**RECORD, "id": f"R-{i}", "aliases": []}))
    db = VulnDB(tmp_path / "vulndb.sqlite")
    db.import_records(read_path(records), str(records))
    db.close()
    digest, _ = await push_image(client, "shop/web", "1", URLLIB3)
    assert (await settled(ecr, "shop/web", digest)).status == "COMPLETE"
    seen, token = [], None
    while True:
        params: dict[str, Any] = {
            "repositoryName": "shop/web", "imageId": {"imageDigest": digest}, "maxResults": 2
        }
        if token:
            params["nextToken"] = token
        out = await images.describe_image_scan_findings(ecr, None, params)  # type: ignore[arg-type]
        seen += [f["name"] for f in out["imageScanFindings"]["findings"]]
        token = out.get("nextToken")
        if not token:
            break
    assert seen == ["R-0", "R-1", "R-2"]


async def test_without_a_db_the_scan_fails_saying_to_import_one(served, ecr):
    client, _ = served
    digest, _ = await push_image(client, "shop/web", "1", URLLIB3)
    scan = await settled(ecr, "shop/web", digest)
    assert (scan.status, scan.reason) == ("FAILED", scans.NO_DB)


async def test_a_corrupt_layer_fails_with_a_reason(served, ecr, tmp_path):
    client, _ = served
    import_db(tmp_path)
    digest, _ = await push_image(client, "shop/web", "1", b"\x1f\x8b\x08\x00 this is not gzip at all")
    scan = await settled(ecr, "shop/web", digest)
    assert scan.status == "FAILED" and scan.reason
    out = await images.describe_images(ecr, None, {"repositoryName": "shop/web"})  # type: ignore[arg-type]
    status = out["imageDetails"][0]["imageScanStatus"]
    assert status["status"] == "FAILED" and status["description"] == scan.reason
    assert "imageScanFindingsSummary" not in out["imageDetails"][0]


async def test_an_index_is_unsupported(served, ecr, tmp_path):
    client, _ = served
    import_db(tmp_path)
    child, body = await push_image(client, "shop/web", "1", URLLIB3)
    await settled(ecr, "shop/web", child)
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": child, "size": len(body)}],
        }
    ).encode()
    r = await client.put(
        "/v2/shop/web/manifests/multi", data=index,
        headers={"Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.status == 201
    scan = await settled(ecr, "shop/web", r.headers["Docker-Content-Digest"])
    assert scan.status == "UNSUPPORTED_IMAGE" and "index" in scan.reason


async def test_a_repository_without_scan_on_push_is_not_scanned_until_asked(served, ecr, tmp_path):
    client, _ = served
    import_db(tmp_path)
    digest, _ = await push_image(client, "shop/plain", "1", URLLIB3)
    assert ecr.scanner is not None and not ecr.scanner.tasks
    params = {"repositoryName": "shop/plain", "imageId": {"imageDigest": digest}}
    with pytest.raises(ScanNotFoundException):
        await images.describe_image_scan_findings(ecr, None, params)  # type: ignore[arg-type]
    started = await images.start_image_scan(ecr, None, params)  # type: ignore[arg-type]
    assert started["imageScanStatus"]["status"] == "IN_PROGRESS"
    assert (await settled(ecr, "shop/plain", digest)).status == "COMPLETE"


async def test_a_registry_rule_scans_on_push(served, ecr, tmp_path):
    client, registry = served
    import_db(tmp_path)
    shop = [{"filter": "shop/*", "filterType": "WILDCARD"}]
    rule = {"scanFrequency": "SCAN_ON_PUSH", "repositoryFilters": shop}
    await data.put_registry_setting(registry.meta.store, "scanning", {"scanType": "BASIC", "rules": [rule]})
    digest, _ = await push_image(client, "shop/plain", "1", URLLIB3)
    assert (await settled(ecr, "shop/plain", digest)).status == "COMPLETE"



async def test_a_new_import_rescans_continuously_scanned_repositories_only(served, ecr, tmp_path):
    client, registry = served
    assert ecr.scanner is not None
    ecr.scanner.continuous = api.continuous
    digest, _ = await push_image(client, "shop/plain", "1", URLLIB3)  # not scanned: no rule yet
    assert await ecr.scanner.rescan_if_updated() == 0  # the first check only notes the DB (none)
    import_db(tmp_path)
    assert await ecr.scanner.rescan_if_updated() == 0  # no repository is scanned continuously
    shop = [{"filter": "shop/plain", "filterType": "WILDCARD"}]
    rule = {"scanFrequency": "CONTINUOUS_SCAN", "repositoryFilters": shop}
    await data.put_registry_setting(registry.meta.store, "scanning", {"scanType": "BASIC", "rules": [rule]})
    assert await ecr.scanner.rescan_if_updated() == 0  # the DB did not change since
    assert scans.get(ecr.store, "shop/plain", digest) is None
    await asyncio.sleep(0.01)
    import_db(tmp_path)  # imported again: a newer import time
    assert await ecr.scanner.rescan_if_updated() == 1
    assert (await settled(ecr, "shop/plain", digest)).status == "COMPLETE"


async def test_the_scans_of_deleted_images_are_pruned(served, ecr):
    client, registry = served
    digest, _ = await push_image(client, "shop/web", "1", URLLIB3)
    kept, _ = await push_image(client, "shop/web", "2", URLLIB3 + b"\0" * 512)
    await settled(ecr, "shop/web", digest)
    await settled(ecr, "shop/web", kept)
    assert await scans.prune(registry.meta.store) == 0
    await registry.meta.delete_manifest("shop/web", digest)
    assert await scans.prune(registry.meta.store) == 1
    assert scans.get(ecr.store, "shop/web", digest) is None
    assert scans.get(ecr.store, "shop/web", kept) is not None
