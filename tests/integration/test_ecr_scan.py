"""Scan on push through the real server and ``aws ecr``: the real OSV PyPI data imported with
``dockyard vulndb import`` into the running server's data dir, an image with urllib3 1.24.1
pushed with skopeo to a repository created with scanOnPush, its findings and summary answered."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
import uuid

from tests.support.oci_layout import image_layout
from tests.support.registry import skopeo_copy, skopeo_ref
from tests.support.vulndb import shared_vulndb

PYPI = shared_vulndb() / "osv-PyPI.zip"
METADATA = b"Metadata-Version: 2.1\nName: urllib3\nVersion: 1.24.1\n\n"


def _layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("app/urllib3-1.24.1.dist-info/METADATA")
        info.size = len(METADATA)
        tar.addfile(info, io.BytesIO(METADATA))
    return gzip.compress(buf.getvalue(), mtime=0)


def _settled(dockyard, name: str, tag: str) -> dict:
    while True:  # polled: the scan's duration is not what this test measures
        out = dockyard.aws(
            "ecr", "describe-image-scan-findings", "--repository-name", name, "--image-id", f"imageTag={tag}"
        )
        if out["imageScanStatus"]["status"] != "IN_PROGRESS":
            return out
        time.sleep(0.2)


def test_a_push_to_a_scan_on_push_repository_is_scanned_with_the_imported_data(dockyard, tmp_path):
    proc = dockyard.cli("vulndb", "import", str(PYPI), "--data-dir", str(dockyard.data_dir))
    assert proc.returncode == 0, proc.stderr
    name = f"scan-{uuid.uuid4().hex[:8]}"
    dockyard.aws(
        "ecr", "create-repository", "--repository-name", name,
        "--image-scanning-configuration", "scanOnPush=true",
    )
    layout = image_layout(tmp_path / "image", [_layer()])
    skopeo_copy(dockyard, f"oci:{layout}:1", skopeo_ref(dockyard, f"{name}:1"), "--preserve-digests")

    out = _settled(dockyard, name, "1")
    assert out["imageScanStatus"]["status"] == "COMPLETE", out["imageScanStatus"]
    found = out["imageScanFindings"]
    names = {f["name"] for f in found["findings"]}
    aliases = {
        a["value"] for f in found["findings"] for a in f["attributes"] if a["key"] == "aliases"
    }
    assert "PYSEC-2019-132" in names and any("CVE-2019-11236" in a for a in aliases)
    urllib3 = next(f for f in found["findings"] if f["name"] == "PYSEC-2019-132")
    attrs = {a["key"]: a["value"] for a in urllib3["attributes"]}
    assert (attrs["package_name"], attrs["package_version"], attrs["fixed_version"]) == (
        "urllib3", "1.24.1", "1.24.3"
    )
    assert sum(found["findingSeverityCounts"].values()) == len(names)

    (detail,) = dockyard.aws("ecr", "describe-images", "--repository-name", name)["imageDetails"]
    assert detail["imageScanStatus"]["status"] == "COMPLETE"
    summary = detail["imageScanFindingsSummary"]
    assert summary["findingSeverityCounts"] == found["findingSeverityCounts"]
    assert "imageScanCompletedAt" in summary and "vulnerabilitySourceUpdatedAt" in summary

    page = dockyard.aws(
        "ecr", "describe-image-scan-findings", "--repository-name", name, "--image-id", "imageTag=1",
        "--max-items", "1",
    )
    assert len(page["imageScanFindings"]["findings"]) == 1

    shown = dockyard.cli("scan", "show", f"{name}:1", "--data-dir", str(dockyard.data_dir))
    assert shown.returncode == 0, shown.stderr
    assert "PYSEC-2019-132" in shown.stdout and "urllib3" in shown.stdout
    data_dir = str(dockyard.data_dir)
    trivy = dockyard.cli("scan", "show", f"{name}:1", "--format", "trivy", "--data-dir", data_dir)
    doc = json.loads(trivy.stdout)
    vulns = [v for r in doc["Results"] for v in r["Vulnerabilities"]]
    assert any(v["VulnerabilityID"] == "PYSEC-2019-132" and v["PkgName"] == "urllib3" for v in vulns)
