"""Importers on small hand-written fixtures, the DB (idempotent re-import, broken records counted)."""

from __future__ import annotations

import json
import zipfile

from registry.scan.vulndb import VulnDB, read_path
from registry.scan.vulndb.importers import detect, parse_debian_list

OSV = {
    "id": "PYSEC-2019-132",
    "modified": "2019-06-13T04:29:00Z",
    "published": "2019-04-15T15:29:00Z",
    "aliases": ["CVE-2019-11236"],
    "affected": [
        {
            "package": {"ecosystem": "PyPI", "name": "URLLib3"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.24.3"}]}],
        }
    ],
    "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    "references": [{"type": "ADVISORY", "url": "https://example.org/a"}],
}

DSA = """[21 Aug 2026] DSA-6001-1 openssl - security update
\t{CVE-2026-1 CVE-2026-2}
\t[bookworm] - openssl 3.0.20-1~deb12u2
\t[trixie] - openssl <not-affected> (vulnerable code not present)
\tNOTE: a note
[20 Aug 2026] DSA-6000-1 jessie end-of-life
[bad header line
\t[bookworm] - x 1
[19 Aug 2026] DSA-5999-1 curl - security update
\t[bookworm] - curl <unfixed>
"""

RETIRE = {
    "lodash": {
        "vulnerabilities": [
            {
                "below": "4.17.12",
                "severity": "high",
                "identifiers": {"CVE": ["CVE-2019-10744"], "githubID": "GHSA-jf85"},
                "info": ["https://nvd.nist.gov/vuln/detail/CVE-2019-10744"],
            }
        ]
    }
}

ALPINE = {
    "distroversion": "v3.20",
    "reponame": "main",
    "urlprefix": "x",
    "packages": [
        {"pkg": {"name": "openssl", "secfixes": {"3.3.2-r1": ["CVE-2024-9143"], "0": ["CVE-2000-1"]}}}
    ],
}


def test_osv_zip_and_directory_and_broken_records_counted(tmp_path):
    z = tmp_path / "all.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("PYSEC-2019-132.json", json.dumps(OSV))
        zf.writestr("broken.json", "{not json")
        zf.writestr("noid.json", json.dumps({"affected": []}))
    db = VulnDB(tmp_path / "v.sqlite")
    count = db.import_records(read_path(z), str(z))
    assert (count.stored, count.skipped) == ({"osv:PyPI": 1}, 2)
    ((adv, _aff),) = db.candidates("PyPI", "urllib3")  # stored under its PEP 503 name
    assert adv.aliases == ("CVE-2019-11236",) and adv.link == "https://example.org/a"
    assert adv.vectors == (OSV["severity"][0]["score"],)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "a.yaml").write_text("id: GO-1\naffected:\n- package: {ecosystem: Go, name: example.com/m}\n")
    db.import_records(read_path(d), str(d))
    assert len(db.candidates("Go", "example.com/m")) == 1


def test_reimport_is_idempotent_and_status_reports_sources(tmp_path):
    f = tmp_path / "rec.json"
    f.write_text(json.dumps(OSV))
    db = VulnDB(tmp_path / "v.sqlite")
    db.import_records(read_path(f), str(f))
    db.import_records(read_path(f), str(f))
    assert len(db.candidates("PyPI", "urllib3")) == 1
    (s,) = db.sources()
    assert (s.name, s.records, s.newest) == ("osv:PyPI", 1, "2019-06-13T04:29:00Z")
    assert db.updated_at() == "2019-06-13T04:29:00Z"


def test_debian_list_fixed_per_release_not_affected_unfixed_and_broken_headers():
    recs = list(parse_debian_list(DSA))
    assert recs.count(None) == 1
    dsa = {r.id: r for r in recs if r}
    assert [(a.ecosystem, a.package, a.spec["fixed"]) for a in dsa["DSA-6001-1"].affected] == [
        ("Debian:bookworm", "openssl", "3.0.20-1~deb12u2")
    ]
    assert dsa["DSA-6001-1"].aliases == ("CVE-2026-1", "CVE-2026-2")
    assert dsa["DSA-6001-1"].published == "2026-08-21"
    assert dsa["DSA-6000-1"].affected == ()
    assert dsa["DSA-5999-1"].affected[0].spec == {"kind": "fixed", "fixed": ""}


def test_retire_and_alpine(tmp_path):
    r, a = tmp_path / "jsrepository.json", tmp_path / "main.json"
    r.write_text(json.dumps(RETIRE))
    a.write_text(json.dumps(ALPINE))
    assert (detect(r), detect(a)) == ("retire", "alpine")
    db = VulnDB(tmp_path / "v.sqlite")
    db.import_records(read_path(r), str(r))
    db.import_records(read_path(a), str(a))
    ((adv, aff),) = db.candidates("npm", "lodash")
    assert (adv.id, adv.aliases, adv.severity_label, aff.spec["below"]) == (
        "CVE-2019-10744",
        ("GHSA-jf85",),
        "high",
        "4.17.12",
    )
    ((adv, aff),) = db.candidates("Alpine:v3.20", "openssl")
    assert (adv.id, aff.spec["fixed"]) == ("CVE-2024-9143", "3.3.2-r1")
    assert {s.name for s in db.sources()} == {"retirejs", "alpine:v3.20/main"}
