"""The real advisory data in ../shared/vulndb (required: tests/support/vulndb.py): counts as its
README gives them, and the acceptance image (urllib3, jinja2, requests, lodash, an old bookworm openssl)."""

from __future__ import annotations

import time

import pytest

from registry.scan import scan_image
from registry.scan.vulndb import VulnDB, read_path
from tests.support.vulndb import shared_vulndb
from tests.unit.registry.scan.layerkit import Blobs, layer, manifest_for

SHARED = shared_vulndb()


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    start = time.monotonic()
    db = VulnDB(tmp_path_factory.mktemp("vulndb") / "vulndb.sqlite")
    for p in sorted(SHARED.iterdir()):
        if p.name != "README.md":
            db.import_records(read_path(p), str(p))
    assert time.monotonic() - start < 30
    return db


def test_record_counts_match_the_readme(db):
    s = {x.name: x for x in db.sources()}
    assert s["osv:PyPI"].records == 7080
    assert s["osv:Go"].records == 4291
    assert s["debian:DSA"].records == 6503
    assert s["debian:DLA"].records == 4927
    assert s["retirejs"].entries == 723  # vulnerabilities; the same CVE in several ranges is one record
    assert s["osv:PyPI"].newest.startswith("2026-07-23")
    assert s["debian:DSA"].newest == "2026-08-21"
    assert all(x.skipped == 0 for x in s.values())
    assert {"alpine:v3.20/main", "alpine:v3.21/community"} <= set(s)


def metadata(name, version):
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"


def test_acceptance_image_findings(db):
    site = "usr/lib/python3.11/site-packages"
    base = layer(
        {
            "etc/os-release": 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'
            "VERSION_CODENAME=bookworm\n",
            "var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nSource: openssl\n"
            "Version: 3.0.11-1~deb12u1\nArchitecture: amd64\n",
        }
    )
    app = layer(
        {
            f"{site}/urllib3-1.24.1.dist-info/METADATA": metadata("urllib3", "1.24.1"),
            f"{site}/Jinja2-2.10.dist-info/METADATA": metadata("Jinja2", "2.10"),
            f"{site}/requests-2.21.0.dist-info/METADATA": metadata("requests", "2.21.0"),
            "app/node_modules/lodash/package.json": '{"name": "lodash", "version": "4.17.11"}',
        }
    )
    store = Blobs()
    start = time.monotonic()
    result = scan_image(store, manifest_for(store, [base, app]), db)
    assert time.monotonic() - start < 5
    by = {(f.package, f.id): f for f in result.findings}
    f = by[("urllib3", "PYSEC-2019-132")]
    assert (f.fixed_version, f.installed_version) == ("1.24.3", "1.24.1")
    assert "CVE-2019-11236" in f.aliases and f.link
    lodash = by[("lodash", "CVE-2019-10744")]
    assert lodash.severity in ("HIGH", "CRITICAL") and lodash.fixed_version == "4.17.12"
    assert any(p == "jinja2" for p, _ in by) and any(p == "requests" for p, _ in by)
    dsa = [f for (p, i), f in by.items() if p == "libssl3" and i.startswith(("DSA-", "DLA-"))]
    assert dsa and all(f.link.startswith("https://security-tracker.debian.org/tracker/") for f in dsa)
    assert any(f.fixed_version == "3.0.20-1~deb12u2" for f in dsa)
    assert result.severity_counts()
