"""The scanner's values: what a scan finds and how it ends (frozen dataclasses, no I/O).

A :class:`Package` is one installed component (``type`` is the ecosystem: ``deb``, ``apk``,
``pypi``, ``npm``, ``golang``, ``maven``); ``source_name``/``source_version`` are the Debian
source package a binary package was built from (how Debian advisories name it). A
:class:`Finding` is one advisory that applies to one package. A scan that cannot read its
image raises :class:`ScanFailed` (status ``FAILED``) or :class:`UnsupportedImage`
(``UNSUPPORTED_IMAGE``), each with a reason meant for the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "SEVERITIES",
    "Finding",
    "OsInfo",
    "Package",
    "ScanFailed",
    "ScanResult",
    "UnsupportedImage",
]

# ECR's severity names, most severe first.
SEVERITIES = ("CRITICAL", "HIGH", "MEDIUM", "LOW", "INFORMATIONAL", "UNDEFINED")


class ScanFailed(Exception):
    """The image could not be scanned; ``reason`` says why (shown to the user)."""

    status = "FAILED"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnsupportedImage(ScanFailed):
    """Not an image the scanner reads (an index, an artifact, a foreign layer type)."""

    status = "UNSUPPORTED_IMAGE"


@dataclass(frozen=True)
class OsInfo:
    """From ``os-release``: ``id`` (``debian``, ``alpine``), ``version_id``, ``codename``."""

    id: str
    version_id: str = ""
    codename: str = ""
    pretty_name: str = ""


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    type: str
    purl: str
    locations: tuple[str, ...] = ()
    source_name: str = ""
    source_version: str = ""
    licenses: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One advisory on one package. ``fixed_version`` is empty when no fix is known;
    ``aliases`` are the other ids (CVE first); ``score``/``vector`` are from CVSS when the
    record has one."""

    id: str
    package: str
    package_type: str
    installed_version: str
    fixed_version: str
    severity: str
    aliases: tuple[str, ...] = ()
    link: str = ""
    summary: str = ""
    source: str = ""
    score: float | None = None
    vector: str = ""
    purl: str = ""


@dataclass(frozen=True)
class ScanResult:
    os: OsInfo | None
    packages: tuple[Package, ...]
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = field(default=())

    def severity_counts(self) -> dict[str, int]:
        """``findingSeverityCounts``: only severities with at least one finding."""
        counts: dict[str, int] = {}
        for f in self.findings:
            counts[f.severity] = counts.get(f.severity, 0) + 1
        return {s: counts[s] for s in SEVERITIES if s in counts}
