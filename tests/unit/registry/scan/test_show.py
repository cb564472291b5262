"""``dockyard scan show``'s pure parts: the image reference, table rows and Trivy JSON."""

from __future__ import annotations

from registry.scan.cli import image_params, rows, trivy_json

FINDINGS = [
    {
        "name": "PYSEC-2019-132",
        "severity": "UNDEFINED",
        "uri": "https://osv.dev/PYSEC-2019-132",
        "attributes": [
            {"key": "package_version", "value": "1.24.1"},
            {"key": "package_name", "value": "urllib3"},
            {"key": "package_type", "value": "pypi"},
            {"key": "fixed_version", "value": "1.24.3"},
            {"key": "aliases", "value": "CVE-2019-11236"},
        ],
    },
    {
        "name": "CVE-2019-10744",
        "severity": "CRITICAL",
        "attributes": [
            {"key": "package_version", "value": "4.17.11"},
            {"key": "package_name", "value": "lodash"},
            {"key": "package_type", "value": "npm"},
        ],
    },
]


def test_image_references():
    assert image_params("shop/web:1") == {"repositoryName": "shop/web", "imageId": {"imageTag": "1"}}
    assert image_params("shop/web") == {"repositoryName": "shop/web", "imageId": {"imageTag": "latest"}}
    assert image_params("shop/web@sha256:ab") == {
        "repositoryName": "shop/web", "imageId": {"imageDigest": "sha256:ab"}
    }
    assert image_params(":1") is None


def test_rows_are_most_severe_first():
    out = rows(FINDINGS)
    assert [r["id"] for r in out] == ["CVE-2019-10744", "PYSEC-2019-132"]
    assert out[1] == {
        "severity": "UNDEFINED", "id": "PYSEC-2019-132", "aliases": "CVE-2019-11236",
        "package": "urllib3", "installed": "1.24.1", "fixed": "1.24.3",
    }


def test_trivy_json_has_one_result_per_package_type():
    doc = trivy_json("shop/web:1", {"imageId": {"imageDigest": "sha256:ab"}}, FINDINGS)
    assert doc["SchemaVersion"] == 2 and doc["ArtifactName"] == "shop/web:1"
    by_type = {r["Type"]: r["Vulnerabilities"] for r in doc["Results"]}
    (py,) = by_type["pypi"]
    assert py == {
        "VulnerabilityID": "PYSEC-2019-132", "PkgName": "urllib3", "InstalledVersion": "1.24.1",
        "FixedVersion": "1.24.3", "Severity": "UNKNOWN", "PrimaryURL": "https://osv.dev/PYSEC-2019-132",
        "Title": "", "VendorIDs": ["CVE-2019-11236"],
    }
    assert by_type["npm"][0]["Severity"] == "CRITICAL"
