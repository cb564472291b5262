"""Comparators per ecosystem and severity from CVSS vectors."""

from __future__ import annotations

import pytest

from registry.scan import severity
from registry.scan.versions import compare


@pytest.mark.parametrize(
    ("eco", "a", "b", "want"),
    [
        ("PyPI", "1.24.1", "1.24.3", -1),
        ("PyPI", "2.0.0rc1", "2.0.0", -1),
        ("PyPI", "1.0.post1", "1.0", 1),
        ("Debian:bookworm", "3.0.11-1~deb12u2", "3.0.11-1", -1),
        ("Debian:bookworm", "1:1.0-1", "2.0-1", 1),
        ("Debian:bookworm", "2.36-9+deb12u4", "2.36-9+deb12u10", -1),
        ("Alpine:v3.20", "1.2.3-r9", "1.2.3-r10", -1),
        ("Alpine:v3.20", "3.3.2-r0", "3.3.2_rc1-r0", 1),
        ("npm", "4.17.11", "4.17.12", -1),
        ("npm", "1.0.0-beta.2", "1.0.0", -1),
        ("Go", "v1.2.3", "1.10.0", -1),
        ("Go", "go1.21", "1.21.1", -1),
        ("Go", "v0.0.0-20210101000000-abcdef123456", "0.1.0", -1),
        ("Maven", "1.33", "2.0", -1),
        ("Maven", "2.0-SNAPSHOT", "2.0", -1),
    ],
)
def test_each_ecosystem_orders_versions(eco, a, b, want):
    assert compare(eco, a, b) == want


def test_an_invalid_version_does_not_compare():
    assert compare("PyPI", "not a version!", "1.0") is None
    assert compare("Unknown", "1", "2") is None


# FIRST's CVSS v3.1 specification examples (section 7) and a v4.0 calculator value.
@pytest.mark.parametrize(
    ("vector", "score", "rating"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "CRITICAL"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "MEDIUM"),  # CVE-2013-1937
        ("CVSS:3.1/AV:L/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 6.2, "MEDIUM"),
        ("CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9, "MEDIUM"),  # CVE-2014-3566 (POODLE)
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "LOW"),
        ("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3, "CRITICAL"),
    ],
)
def test_severity_from_cvss_vectors(vector, score, rating):
    assert severity.rate([vector]) == (rating, score, vector)


def test_severity_falls_back_to_the_records_label_then_undefined():
    assert severity.rate(["CVSS:3.1/garbage"], "moderate") == ("MEDIUM", None, "")
    assert severity.rate([], "high")[0] == "HIGH"
    assert severity.rate([], "")[0] == "UNDEFINED"
    assert severity.rate(["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"])[0] == "INFORMATIONAL"
