"""OSV's evaluation rules (examples after the OSV schema), Debian/Alpine fixed versions, Retire.js."""

from __future__ import annotations

from registry.scan.match import evaluate, match
from registry.scan.model import OsInfo, Package
from registry.scan.vulndb.records import Advisory, Affected


def osv(events, kind="ECOSYSTEM", versions=()):
    return {"kind": "osv", "ranges": [{"type": kind, "events": events}], "versions": list(versions)}


def test_introduced_and_fixed():
    spec = osv([{"introduced": "1.0.0"}, {"fixed": "1.24.3"}])
    assert evaluate("PyPI", spec, "1.24.1") == (True, "1.24.3")
    assert evaluate("PyPI", spec, "1.24.3") == (False, "")
    assert evaluate("PyPI", spec, "0.9") == (False, "")


def test_introduced_zero_means_every_earlier_version():
    assert evaluate("PyPI", osv([{"introduced": "0"}, {"fixed": "2.0"}]), "0.0.1") == (True, "2.0")


def test_last_affected_includes_that_version_and_no_fix_is_named():
    spec = osv([{"introduced": "0"}, {"last_affected": "1.5"}])
    assert evaluate("PyPI", spec, "1.5") == (True, "")
    assert evaluate("PyPI", spec, "1.5.1") == (False, "")


def test_several_introduced_fixed_pairs_in_one_range_events_in_any_order():
    spec = osv(
        [{"fixed": "1.2.6"}, {"introduced": "2.0.0"}, {"introduced": "1.0.0"}, {"fixed": "2.0.3"}],
        kind="SEMVER",
    )
    assert evaluate("Go", spec, "1.2.5") == (True, "1.2.6")
    assert evaluate("Go", spec, "1.5.0") == (False, "")
    assert evaluate("Go", spec, "v2.0.1") == (True, "2.0.3")


def test_explicit_versions_list_and_git_ranges_skipped():
    spec = {
        "kind": "osv",
        "versions": ["1.0", "1.1"],
        "ranges": [{"type": "GIT", "events": [{"introduced": "0"}, {"fixed": "abc123"}]}],
    }
    assert evaluate("PyPI", spec, "1.1")[0] is True
    assert evaluate("PyPI", spec, "1.2")[0] is False


def test_debian_and_alpine_fixed_versions():
    fixed = {"kind": "fixed", "fixed": "3.0.11-1~deb12u2"}
    assert evaluate("Debian:bookworm", fixed, "3.0.11-1~deb12u1") == (True, "3.0.11-1~deb12u2")
    assert evaluate("Debian:bookworm", fixed, "3.0.11-1~deb12u2")[0] is False
    assert evaluate("Debian:bookworm", {"kind": "fixed", "fixed": ""}, "1.0")[0] is True
    assert evaluate("Alpine:v3.20", {"kind": "fixed", "fixed": "3.3.2-r1"}, "3.3.2-r0")[0] is True


def test_retire_ranges():
    spec = {"kind": "retire", "atOrAbove": "4.7.0", "below": "4.17.11"}
    assert evaluate("npm", spec, "4.17.10") == (True, "4.17.11")
    assert evaluate("npm", spec, "4.17.11")[0] is False
    assert evaluate("npm", spec, "4.6.9")[0] is False


def advisory(id_, eco, name, spec, **kw):
    return Advisory("test", id_, (Affected(eco, name, spec),), **kw)


def test_match_uses_source_package_and_release_and_skips_withdrawn():
    os = OsInfo("debian", "12", "bookworm")
    ssl = Package(
        "libssl3", "3.0.11-1~deb12u1", "deb", "pkg:deb/debian/libssl3", (), "openssl", "3.0.11-1~deb12u1"
    )
    db = {
        ("Debian:bookworm", "openssl"): [
            advisory(
                "DSA-1",
                "Debian:bookworm",
                "openssl",
                {"kind": "fixed", "fixed": "3.0.13-1~deb12u1"},
                aliases=("CVE-2024-1",),
            )
        ],
        ("PyPI", "urllib3"): [
            advisory(
                "PYSEC-W", "PyPI", "urllib3", osv([{"introduced": "0"}]), withdrawn="2020-01-01T00:00:00Z"
            )
        ],
    }

    def candidates(eco, name):
        return [(a, a.affected[0]) for a in db.get((eco, name), [])]

    found = match([ssl, Package("urllib3", "1.0", "pypi", "pkg:pypi/urllib3@1.0")], os, candidates)
    assert [(f.id, f.package, f.fixed_version, f.aliases) for f in found] == [
        ("DSA-1", "libssl3", "3.0.13-1~deb12u1", ("CVE-2024-1",))
    ]
    assert match([ssl], OsInfo("debian", "11", "bullseye"), candidates) == []
