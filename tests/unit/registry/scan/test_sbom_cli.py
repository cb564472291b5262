"""SBOM export (CycloneDX, SPDX) and the ``dockyard vulndb`` commands."""

from __future__ import annotations

import json
from dataclasses import asdict

from dockyard import cli
from registry.scan import sbom
from registry.scan.cli import result_of
from registry.scan.model import Finding, OsInfo, Package, ScanResult

RESULT = ScanResult(
    None,
    (
        Package(
            "lodash", "4.17.11", "npm", "pkg:npm/lodash@4.17.11", ("/app/node_modules/lodash/package.json",)
        ),
    ),
    (
        Finding(
            "CVE-2019-10744",
            "lodash",
            "npm",
            "4.17.11",
            "4.17.12",
            "CRITICAL",
            (),
            "https://x",
            "proto",
            "retirejs",
            9.1,
            "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:H",
            "pkg:npm/lodash@4.17.11",
        ),
    ),
)


def test_cyclonedx_has_components_and_vulnerabilities():
    doc = json.loads(sbom.cyclonedx_json(RESULT, "shop/web:1"))
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert [(c["name"], c["version"], c["purl"]) for c in doc["components"]] == [
        ("lodash", "4.17.11", "pkg:npm/lodash@4.17.11")
    ]
    (v,) = doc["vulnerabilities"]
    assert v["id"] == "CVE-2019-10744" and v["affects"] == [{"ref": "pkg:npm/lodash@4.17.11"}]
    assert v["ratings"][0]["severity"] == "critical"


def test_cyclonedx_with_a_cvss_score_passes_the_strict_schema():
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    text = sbom.cyclonedx_json(RESULT, "shop/web:1")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    assert json.loads(text)["vulnerabilities"][0]["ratings"][0]["score"] == 9.1


def test_a_get_image_sbom_answer_gives_back_the_scan_result():
    answer = {
        "os": {"id": "debian", "version_id": "12", "codename": "bookworm", "pretty_name": "Debian 12"},
        "packages": [asdict(p) for p in RESULT.packages],
        "findings": [asdict(f) for f in RESULT.findings],
    }
    back = json.loads(json.dumps(answer))  # as it travels: tuples become lists
    assert result_of(back) == ScanResult(
        OsInfo("debian", "12", "bookworm", "Debian 12"), RESULT.packages, RESULT.findings
    )
    assert result_of({"packages": [], "findings": []}).os is None


def test_spdx_document_describes_each_package():
    doc = json.loads(sbom.spdx_json(RESULT, "shop/web:1"))
    assert doc["spdxVersion"] == "SPDX-2.3" and doc["name"] == "shop/web:1"
    (p,) = doc["packages"]
    assert p["externalRefs"][0]["referenceLocator"] == "pkg:npm/lodash@4.17.11"
    assert doc["relationships"][0]["relatedSpdxElement"] == p["SPDXID"]


def test_vulndb_import_and_status_commands(tmp_path, capsys):
    rec = tmp_path / "PYSEC-1.json"
    rec.write_text(
        json.dumps(
            {
                "id": "PYSEC-1",
                "modified": "2024-01-02T00:00:00Z",
                "affected": [{"package": {"ecosystem": "PyPI", "name": "a"}, "versions": ["1.0"]}],
            }
        )
    )
    bad = tmp_path / "notes.txt"
    bad.write_text("hello")
    data = str(tmp_path / "data")
    assert cli.main(["vulndb", "import", "--data-dir", data, str(rec)]) == 0
    assert cli.main(["vulndb", "import", "--data-dir", data, str(rec)]) == 0  # idempotent
    err = capsys.readouterr().err
    assert "stored osv:PyPI 1" in err
    assert cli.main(["vulndb", "status", "--data-dir", data, "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["source"], row["records"], row["newest"]) == ("osv:PyPI", 1, "2024-01-02T00:00:00Z")
    assert (tmp_path / "data" / "vulndb.sqlite").exists()
    assert cli.main(["vulndb", "import", "--data-dir", data, str(bad)]) == 1
    assert "not a format" in capsys.readouterr().err
