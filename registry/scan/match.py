"""Matching packages against advisories (pure: the DB is reached through ``Candidates``).

OSV (ossf.github.io/osv-schema, "Evaluation"): a version is affected when it is listed in
``versions`` or falls in a range; ``GIT`` ranges are skipped; ECOSYSTEM ranges compare with the
ecosystem's comparator, SEMVER ranges with SemVer 2.0. Walking the events sorted by version
(``introduced: "0"`` first): ``introduced <= v`` makes it affected, ``fixed <= v`` or
``last_affected < v`` makes it not. A withdrawn record matches nothing. The fixed version shown
is the lowest ``fixed`` above the installed version.

Debian (DSA/DLA) and Alpine (secdb): a package is matched by its *source* package and the
release (``Debian:<codename>``, ``Alpine:v<major>.<minor>``) and is affected when its source
version is below the fixed version (or no fix exists). Retire.js: ``atOrAbove``/``above`` and
``below``/``atOrBelow`` bounds, compared as npm SemVer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

import registry.scan.severity as severity
import registry.scan.versions as versions
from registry.scan.catalog import normalize_pypi
from registry.scan.model import SEVERITIES, Finding, OsInfo, Package
from registry.scan.vulndb.records import Advisory, Affected

__all__ = ["Candidates", "evaluate", "lookup_keys", "match", "osv_affected"]

Candidates = Callable[[str, str], list[tuple[Advisory, Affected]]]


def lookup_keys(pkg: Package, os: OsInfo | None) -> list[tuple[str, str, str]]:
    """(ecosystem, package name, version to compare) under which advisories name ``pkg``."""
    if pkg.type == "pypi":
        return [("PyPI", normalize_pypi(pkg.name), pkg.version)]
    if pkg.type == "npm":
        return [("npm", pkg.name, pkg.version)]
    if pkg.type == "golang":
        if pkg.version in ("(devel)", ""):
            return []
        return [("Go", pkg.name, pkg.version)]
    if pkg.type == "maven":
        group = pkg.source_name
        return [("Maven", f"{group}:{pkg.name}" if group else pkg.name, pkg.version)]
    if pkg.type == "deb" and os and os.id == "debian" and os.codename:
        return [(f"Debian:{os.codename}", pkg.source_name or pkg.name, pkg.source_version or pkg.version)]
    if pkg.type == "apk" and os and os.id == "alpine":
        m = re.match(r"(\d+\.\d+)", os.version_id)
        if m:
            return [(f"Alpine:v{m.group(1)}", pkg.source_name or pkg.name, pkg.version)]
    return []


def _event_key(eco: str, event: dict[str, Any]) -> Any:
    ((kind, value),) = (
        (k, v) for k, v in event.items() if k in ("introduced", "fixed", "last_affected", "limit")
    )
    return kind, value


def _in_range(eco: str, rng: dict[str, Any], version: str) -> tuple[bool, str]:
    kind = rng.get("type", "")
    if kind == "GIT":
        return False, ""
    cmp_eco = "SEMVER" if kind == "SEMVER" else eco
    v = versions.key(cmp_eco, version)
    if v is None:
        return False, ""
    events: list[tuple[Any, str, str]] = []
    for e in rng.get("events", []):
        if not isinstance(e, dict):
            continue
        for k in ("introduced", "fixed", "last_affected", "limit"):
            value = e.get(k)
            if isinstance(value, str):
                if k == "introduced" and value == "0":
                    events.append((None, k, value))
                    continue
                kv = versions.key(cmp_eco, value)
                if kv is None:
                    return False, ""  # an event we cannot place: say nothing rather than guess
                events.append((kv, k, value))
    zero = [e for e in events if e[0] is None]
    placed = sorted((e for e in events if e[0] is not None), key=lambda e: e[0])
    affected = False
    for kv, k, _value in zero + placed:
        if k == "introduced" and (kv is None or v >= kv):
            affected = True
        elif k == "fixed" and v >= kv:
            affected = False
        elif k == "last_affected" and v > kv:
            affected = False
        elif k == "limit" and v >= kv:
            affected = False
    if not affected:
        return False, ""
    fixes = [e for e in placed if e[1] == "fixed" and e[0] > v]
    return True, fixes[0][2] if fixes else ""


def osv_affected(eco: str, spec: dict[str, Any], version: str) -> tuple[bool, str]:
    """(affected, fixed version) of an OSV ``affected`` entry for ``version``."""
    listed = spec.get("versions") or []
    hit, fixed = False, ""
    if version in listed:
        hit = True
    elif eco == "PyPI" and listed:
        v = versions.key(eco, version)
        hit = v is not None and any(versions.key(eco, x) == v for x in listed)
    for rng in spec.get("ranges") or []:
        if isinstance(rng, dict):
            in_range, fix = _in_range(eco, rng, version)
            if in_range:
                return True, fix
    return hit, fixed


def _retire_key(version: str) -> Any:
    v = versions.key("npm", version)
    if v is not None:
        return (0, v)
    parts = re.findall(r"\d+", version)
    return (1, tuple(int(p) for p in parts)) if parts else None


def _retire_affected(spec: dict[str, Any], version: str) -> tuple[bool, str]:
    v = _retire_key(version)
    if v is None:
        return False, ""
    checks = {
        "atOrAbove": lambda b: v >= b,
        "above": lambda b: v > b,
        "below": lambda b: v < b,
        "atOrBelow": lambda b: v <= b,
    }
    for k, test in checks.items():
        if k in spec:
            bound = _retire_key(spec[k])
            if bound is None or bound[0] != v[0] or not test(bound):
                return False, ""
    return True, spec.get("below", "")


def evaluate(eco: str, spec: dict[str, Any], version: str) -> tuple[bool, str]:
    """(affected, fixed version) for any spec kind (see :mod:`registry.scan.vulndb.records`)."""
    kind = spec.get("kind")
    if kind == "osv":
        return osv_affected(eco, spec, version)
    if kind == "fixed":
        fixed = spec.get("fixed", "")
        if not fixed:
            return True, ""
        c = versions.compare(eco, version, fixed)
        return (c is not None and c < 0), fixed
    if kind == "retire":
        return _retire_affected(spec, version)
    return False, ""


def _link(adv: Advisory) -> str:
    return adv.link or f"https://osv.dev/vulnerability/{adv.id}"


def match(packages: Iterable[Package], os: OsInfo | None, candidates: Candidates) -> list[Finding]:
    """Every finding, one per (advisory, package, version), most severe first."""
    out: dict[tuple[str, str, str, str], Finding] = {}
    for pkg in packages:
        for eco, name, version in lookup_keys(pkg, os):
            for adv, aff in candidates(eco, name):
                if adv.withdrawn:
                    continue
                hit, fixed = evaluate(eco, aff.spec, version)
                if not hit:
                    continue
                key = (adv.id, pkg.type, pkg.name, pkg.version)
                old = out.get(key)
                if old is not None and (
                    not old.fixed_version
                    or not fixed
                    or versions.compare(eco, old.fixed_version, fixed) in (-1, 0, None)
                ):
                    continue
                sev, score, vector = severity.rate(list(adv.vectors), adv.severity_label)
                cves = tuple(sorted(a for a in adv.aliases if a.startswith("CVE-")))
                others = tuple(a for a in adv.aliases if not a.startswith("CVE-"))
                out[key] = Finding(
                    adv.id,
                    pkg.name,
                    pkg.type,
                    pkg.version,
                    fixed,
                    sev,
                    cves + others,
                    _link(adv),
                    adv.summary,
                    adv.source,
                    score,
                    vector,
                    pkg.purl,
                )
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(out.values(), key=lambda f: (rank[f.severity], f.package, f.id))
