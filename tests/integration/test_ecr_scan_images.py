"""The scanner's acceptance images (``tests.support.scan_images``: real pip/npm packages on
busybox, and a debootstrapped Debian bookworm minbase whose dpkg status claims older
versions) pushed with skopeo to scan-on-push repositories, their findings read with
``aws ecr describe-image-scan-findings``, against the real advisory data of ../shared/vulndb."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from dockyard.aws.protocol import ECR
from dockyard.client import ApiError, Client
from tests.support.images import layer_tar
from tests.support.oci_layout import image_layout
from tests.support.registry import skopeo_copy, skopeo_ref
from tests.support.scan_images import cache_dir, debian_downgraded_gz, python_npm_gz
from tests.support.server import Dockyard
from tests.support.vulndb import shared_vulndb

SOURCES = (
    "osv-PyPI.zip",
    "retirejs-jsrepository-v4.json",
    "debian-security-tracker-DSA.list",
    "debian-security-tracker-DLA.list",
)


@pytest.fixture(scope="module")
def advisories(dockyard: Dockyard) -> Iterator[None]:
    """The PyPI, Retire.js and Debian advisories imported into the server's DB."""
    paths = [str(shared_vulndb() / s) for s in SOURCES]
    proc = dockyard.cli("vulndb", "import", *paths, "--data-dir", str(dockyard.data_dir))
    assert proc.returncode == 0, proc.stderr
    yield


def _push_and_scan(dockyard: Dockyard, tmp_path, layers: list[bytes]) -> tuple[str, list[dict]]:
    """Push an image of ``layers`` to a new scan-on-push repository; its settled findings."""
    name = f"scan-accept-{uuid.uuid4().hex[:8]}"
    dockyard.aws(
        "ecr",
        "create-repository",
        "--repository-name",
        name,
        "--image-scanning-configuration",
        "scanOnPush=true",
    )
    layout = image_layout(tmp_path / "image", layers)
    skopeo_copy(dockyard, f"oci:{layout}:1", skopeo_ref(dockyard, f"{name}:1"), "--preserve-digests")
    deadline = time.monotonic() + 300
    while True:  # polled: the scan runs in the background after the push
        out = dockyard.aws(
            "ecr", "describe-image-scan-findings", "--repository-name", name, "--image-id", "imageTag=1"
        )
        if out["imageScanStatus"]["status"] != "IN_PROGRESS" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert out["imageScanStatus"]["status"] == "COMPLETE", out["imageScanStatus"]
    return name, out["imageScanFindings"]["findings"]


def _attrs(finding: dict) -> dict[str, str]:
    return {a["key"]: a["value"] for a in finding["attributes"]}


def _ids(finding: dict) -> set[str]:
    return {finding["name"], *filter(None, _attrs(finding).get("aliases", "").split(","))}


def test_the_python_and_npm_image_is_reported_with_urllib3_and_lodash_advisories(
    dockyard, advisories, tmp_path
):
    name, findings = _push_and_scan(dockyard, tmp_path, python_npm_gz(cache_dir()))
    by_package: dict[str, list[dict]] = {}
    for f in findings:
        by_package.setdefault(_attrs(f)["package_name"], []).append(f)
    urllib3 = next(f for f in by_package["urllib3"] if "PYSEC-2019-132" in _ids(f))
    assert "CVE-2019-11236" in _ids(urllib3)
    attrs = _attrs(urllib3)
    assert (attrs["package_version"], attrs["fixed_version"]) == ("1.24.1", "1.24.3")
    lodash = [f for f in by_package["lodash"] if "CVE-2019-10744" in _ids(f)]
    assert lodash and _attrs(lodash[0])["package_version"] == "4.17.11"
    assert {"jinja2", "requests"} <= set(by_package)  # jinja2 2.10 and requests 2.21.0 have advisories too

    # the stored scan exported from the server as SBOMs
    data_dir = str(dockyard.data_dir)
    shown = dockyard.cli("scan", "show", f"{name}:1", "--format", "cyclonedx", "--data-dir", data_dir)
    assert shown.returncode == 0, shown.stderr
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(shown.stdout) is None
    bom = json.loads(shown.stdout)
    components = {c["bom-ref"]: c for c in bom["components"]}
    assert components["pkg:npm/lodash@4.17.11"]["version"] == "4.17.11"
    lodash_vulns = [
        v for v in bom["vulnerabilities"] if any(a["ref"] == "pkg:npm/lodash@4.17.11" for a in v["affects"])
    ]
    assert any(v["id"] == "CVE-2019-10744" or "CVE-2019-10744" in json.dumps(v) for v in lodash_vulns)
    assert len(bom["vulnerabilities"]) == len(findings)
    spdx = dockyard.cli("scan", "show", f"{name}:1", "--format", "spdx", "--data-dir", data_dir)
    assert spdx.returncode == 0, spdx.stderr
    doc = json.loads(spdx.stdout)
    assert doc["spdxVersion"] == "SPDX-2.3"
    assert {"urllib3", "lodash", "jinja2", "requests"} <= {p["name"] for p in doc["packages"]}
    refs = {r["referenceLocator"] for p in doc["packages"] for r in p["externalRefs"]}
    assert "pkg:pypi/urllib3@1.24.1" in refs


def test_the_downgraded_debian_image_is_reported_with_the_debian_advisories(dockyard, advisories, tmp_path):
    _, findings = _push_and_scan(dockyard, tmp_path, [debian_downgraded_gz(cache_dir())])
    ids = {i for f in findings for i in _ids(f)}
    for advisory, cve in (
        ("DSA-5678-1", "CVE-2024-33599"),  # glibc 2.36-9+deb12u4 < 2.36-9+deb12u7
        ("DSA-5650-1", "CVE-2024-28085"),  # util-linux 2.38.1-5 < 2.38.1-5+deb12u1
        ("DSA-5902-1", "CVE-2024-56406"),  # perl 5.36.0-7 < 5.36.0-7+deb12u2
    ):
        assert advisory in ids or cve in ids, (advisory, sorted(ids)[:50])
    glibc = [f for f in findings if "DSA-5678-1" in _ids(f) or "CVE-2024-33599" in _ids(f)]
    assert {_attrs(f)["package_version"] for f in glibc} == {"2.36-9+deb12u4"}
    # packages left at their current version are not reported by these advisories
    assert not any(_attrs(f)["package_name"] == "libgnutls30" and "DSA-6281-1" in _ids(f) for f in findings)


def test_get_image_sbom_refuses_an_image_without_a_stored_scan_and_a_bad_image_id(dockyard, tmp_path):
    name = f"scan-nosbom-{uuid.uuid4().hex[:8]}"
    dockyard.aws("ecr", "create-repository", "--repository-name", name)
    layout = image_layout(tmp_path / "image", [gzip.compress(layer_tar({"hello.txt": b"hi"}))])
    skopeo_copy(dockyard, f"oci:{layout}:1", skopeo_ref(dockyard, f"{name}:1"))
    data_dir = str(dockyard.data_dir)
    shown = dockyard.cli("scan", "show", f"{name}:1", "--format", "cyclonedx", "--data-dir", data_dir)
    assert shown.returncode != 0
    assert "ScanNotFoundException" in shown.stderr or "No stored SBOM" in shown.stderr, shown.stderr
    client = Client(dockyard.control_url, *dockyard.credentials)
    for params, code in (
        ({"repositoryName": name, "imageId": "1"}, "InvalidParameterException"),
        ({"repositoryName": name, "imageId": {}}, "InvalidParameterException"),
        ({"repositoryName": name, "imageId": {"imageTag": "nope"}}, "ImageNotFoundException"),
        ({"repositoryName": "no-such-repo-x", "imageId": {"imageTag": "1"}}, "RepositoryNotFoundException"),
        ({"repositoryName": name, "imageId": {"imageTag": "1"}}, "ScanNotFoundException"),
    ):
        with pytest.raises(ApiError) as refused:
            client.call(ECR, "GetImageSbom", params)
        assert refused.value.code == code, (params, refused.value)
