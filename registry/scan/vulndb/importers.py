"""Parsers of advisory files into :class:`~registry.scan.vulndb.records.Advisory` values (pure
but for reading the given file). Each yields ``Advisory`` or ``None`` for a broken record
(skipped and counted by the caller).

* OSV: a zip of ``*.json`` (OSV's ``<ECOSYSTEM>/all.zip``), a directory of ``*.json``/``*.yaml``,
  or one such file. Source ``osv:<ecosystem of the first affected package>``.
* Debian security tracker ``data/DSA/list`` and ``data/DLA/list``: ``[DD Mon YYYY] DSA-N-R pkg -
  text``, ``{CVE ...}``, ``[release] - source-package fixed-version`` (or ``<not-affected>``:
  nothing recorded; ``<unfixed>``: every version). Source ``debian:DSA`` / ``debian:DLA``.
* Retire.js ``jsrepository*.json``: one record per vulnerability of each library. Source ``retirejs``.
* Alpine secdb ``<release>/<repo>.json``: one record per CVE id, fixed version per source package
  (``"0"`` = never affected: nothing recorded). Source ``alpine:<release>/<repo>``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.scan.catalog import normalize_pypi
from registry.scan.vulndb.records import Advisory, Affected

__all__ = ["detect", "parse_alpine", "parse_debian_list", "parse_osv", "parse_retire", "read_path"]

MAX_RECORD_BYTES = 8 << 20

Parsed = Iterator[Advisory | None]


def _strs(value: Any) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def osv_package_name(ecosystem: str, name: str) -> str:
    return normalize_pypi(name) if ecosystem == "PyPI" else name


def parse_osv(doc: Any) -> Advisory | None:
    """One OSV record (a dict from JSON or YAML), or None when it is not one."""
    if not isinstance(doc, dict) or not isinstance(doc.get("id"), str) or not doc["id"]:
        return None
    affected_in = doc.get("affected", [])
    if not isinstance(affected_in, list):
        return None
    affected = []
    for a in affected_in:
        if not isinstance(a, dict) or not isinstance(a.get("package"), dict):
            return None
        eco, name = a["package"].get("ecosystem"), a["package"].get("name")
        if not isinstance(eco, str) or not isinstance(name, str):
            return None
        ranges = a.get("ranges", [])
        versions = a.get("versions", [])
        if not isinstance(ranges, list) or not isinstance(versions, list):
            return None
        for r in ranges:
            if not isinstance(r, dict) or not isinstance(r.get("events", []), list):
                return None
        spec = {"kind": "osv", "ranges": ranges, "versions": [v for v in versions if isinstance(v, str)]}
        affected.append(Affected(eco, osv_package_name(eco, name), spec))
    vectors = []
    for s in doc.get("severity") or []:
        if isinstance(s, dict) and isinstance(s.get("score"), str):
            vectors.append(s["score"])
    label = ""
    for holder in [doc.get("database_specific")] + [
        a.get("database_specific") for a in affected_in if isinstance(a, dict)
    ]:
        if isinstance(holder, dict) and isinstance(holder.get("severity"), str):
            label = holder["severity"]
            break
    if not vectors:  # some records carry CVSS per affected package
        for a in affected_in:
            for s in a.get("severity") or [] if isinstance(a, dict) else []:
                if isinstance(s, dict) and isinstance(s.get("score"), str):
                    vectors.append(s["score"])
    link = ""
    refs = doc.get("references") if isinstance(doc.get("references"), list) else []
    for want in ("ADVISORY", "WEB", "REPORT"):
        link = next(
            (
                r["url"]
                for r in refs
                if isinstance(r, dict) and r.get("type") == want and isinstance(r.get("url"), str)
            ),
            "",
        )
        if link:
            break
    eco0 = affected[0].ecosystem.split(":")[0] if affected else "unknown"
    return Advisory(
        source=f"osv:{eco0}",
        id=doc["id"],
        affected=tuple(affected),
        aliases=_strs(doc.get("aliases")),
        summary=str(doc.get("summary") or doc.get("details") or "")[:500],
        link=link or f"https://osv.dev/vulnerability/{doc['id']}",
        published=str(doc.get("published") or ""),
        modified=str(doc.get("modified") or ""),
        withdrawn=str(doc.get("withdrawn") or ""),
        severity_label=label,
        vectors=tuple(vectors),
    )


def _load(name: str, data: bytes) -> Any:
    if name.endswith((".yaml", ".yml")):
        import yaml

        return yaml.safe_load(data)
    return json.loads(data)


def _osv_zip(path: Path) -> Parsed:
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir() or not info.filename.endswith((".json", ".yaml", ".yml")):
                continue
            if info.file_size > MAX_RECORD_BYTES:
                yield None
                continue
            try:
                yield parse_osv(_load(info.filename, zf.read(info)))
            except (ValueError, zipfile.BadZipFile, OSError, Exception):
                yield None


def _osv_dir(path: Path) -> Parsed:
    for root, _dirs, files in os.walk(path):
        for f in sorted(files):
            if f.endswith((".json", ".yaml", ".yml")):
                yield from _osv_file(Path(root) / f)


def _osv_file(path: Path) -> Parsed:
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            yield None
            return
        yield parse_osv(_load(path.name, path.read_bytes()))
    except Exception:  # a broken record, whatever the parser raised
        yield None


_HEADER = re.compile(r"^\[(\d{1,2} \w{3} \d{4})\] ((?:DSA|DLA)-\d+(?:-\d+)?)\s+(.*)$")
_RELEASE = re.compile(r"^\[([a-z-]+)\] - (\S+)(?: (\S+))?")


def parse_debian_list(text: str) -> Parsed:
    """Records of a DSA or DLA list (see the module doc)."""
    current: dict[str, Any] | None = None

    def finish(cur: dict[str, Any]) -> Advisory | None:
        if cur.get("broken"):
            return None
        kind = cur["id"].split("-")[0]
        return Advisory(
            source=f"debian:{kind}",
            id=cur["id"],
            affected=tuple(cur["affected"]),
            aliases=tuple(cur["cves"]),
            summary=f"{cur['package']}: {cur['text']}".strip(": "),
            link=f"https://security-tracker.debian.org/tracker/{cur['id']}",
            published=cur["date"],
        )

    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("["):
            if current is not None:
                yield finish(current)
            m = _HEADER.match(line.strip())
            if not m:
                current = {"broken": True}
                continue
            try:
                date = dt.datetime.strptime(m.group(1), "%d %b %Y").date().isoformat()
            except ValueError:
                current = {"broken": True}
                continue
            package, _, desc = m.group(3).partition(" - ")
            current = {
                "id": m.group(2),
                "package": package.strip(),
                "text": desc.strip(),
                "date": date,
                "cves": [],
                "affected": [],
            }
            continue
        if current is None or current.get("broken"):
            continue
        s = line.strip()
        if s.startswith("{"):
            current["cves"].extend(c for c in s.strip("{}").split() if c)
        elif s.startswith("["):
            m = _RELEASE.match(s)
            if not m:
                current["broken"] = True
                continue
            release, package, version = m.group(1), m.group(2), m.group(3) or ""
            if version in ("<not-affected>", "<end-of-life>", "<ignored>", "<removed>", "<postponed>", ""):
                continue
            fixed = "" if version == "<unfixed>" else version
            if fixed.startswith("<"):
                continue
            current["affected"].append(
                Affected(f"Debian:{release}", package, {"kind": "fixed", "fixed": fixed})
            )
    if current is not None:
        yield finish(current)


def parse_retire(doc: Any) -> Parsed:
    if not isinstance(doc, dict):
        yield None
        return
    for lib, entry in doc.items():
        if not isinstance(entry, dict):
            yield None
            continue
        name = entry.get("npmname") if isinstance(entry.get("npmname"), str) else lib
        vulns = entry.get("vulnerabilities", [])
        if not isinstance(vulns, list):
            yield None
            continue
        for i, v in enumerate(vulns):
            if not isinstance(v, dict) or not isinstance(v.get("identifiers", {}), dict):
                yield None
                continue
            spec: dict[str, Any] = {"kind": "retire"}
            for k in ("atOrAbove", "above", "below", "atOrBelow"):
                if isinstance(v.get(k), str):
                    spec[k] = v[k]
            if len(spec) == 1:
                yield None
                continue
            ident = v.get("identifiers", {})
            cves = list(_strs(ident.get("CVE")))
            ghsa = ident.get("githubID") if isinstance(ident.get("githubID"), str) else ""
            ids = cves + ([ghsa] if ghsa else [])
            rid = ids[0] if ids else f"retire-{lib}-{i}"
            info = _strs(v.get("info"))
            yield Advisory(
                source="retirejs",
                id=rid,
                affected=(Affected("npm", name, spec),),
                aliases=tuple(x for x in ids if x != rid),
                summary=str(ident.get("summary") or "")[:500],
                link=info[0] if info else "",
                severity_label=str(v.get("severity") or ""),
            )


def parse_alpine(doc: Any) -> Parsed:
    if not isinstance(doc, dict) or not isinstance(doc.get("packages"), list):
        yield None
        return
    release = str(doc.get("distroversion") or "")
    m = re.match(r"v?(\d+\.\d+)", release)
    eco = f"Alpine:v{m.group(1)}" if m else f"Alpine:{release}"
    source = f"alpine:{release}/{doc.get('reponame', '')}"
    by_id: dict[str, list[Affected]] = {}
    for p in doc["packages"]:
        pkg = p.get("pkg") if isinstance(p, dict) else None
        if not isinstance(pkg, dict) or not isinstance(pkg.get("name"), str):
            yield None
            continue
        fixes = pkg.get("secfixes") or {}
        if not isinstance(fixes, dict):
            yield None
            continue
        for fixed, ids in fixes.items():
            for raw in _strs(ids):
                vid = raw.split()[0] if raw.split() else ""
                if not vid:
                    continue
                lst = by_id.setdefault(vid, [])
                if str(fixed) != "0":
                    lst.append(Affected(eco, pkg["name"], {"kind": "fixed", "fixed": str(fixed)}))
    for vid, affected in by_id.items():
        link = f"https://security.alpinelinux.org/vuln/{vid}"
        yield Advisory(source=source, id=vid, affected=tuple(affected), link=link)


def detect(path: Path) -> str:
    """``osv-zip``, ``osv-dir``, ``osv``, ``debian``, ``retire``, ``alpine``, or ``""``."""
    if path.is_dir():
        return "osv-dir"
    with open(path, "rb") as f:
        head = f.read(4096)
    if head.startswith(b"PK\x03\x04"):
        return "osv-zip"
    if head.startswith(b"[") and re.match(rb"^\[\d{1,2} \w{3} \d{4}\] D[SL]A-", head):
        return "debian"
    if path.suffix in (".yaml", ".yml"):
        return "osv"
    text = head.lstrip()
    if text.startswith(b"{"):
        if b'"distroversion"' in head or b'"apkurl"' in head or b'"secfixes"' in head:
            return "alpine"
        if b'"vulnerabilities"' in head:
            return "retire"
        return "osv"
    return ""


def read_path(path: Path) -> Parsed:
    """The records of one file or directory, by its detected format. An unknown format
    raises ValueError."""
    kind = detect(path)
    if kind == "osv-zip":
        yield from _osv_zip(path)
    elif kind == "osv-dir":
        yield from _osv_dir(path)
    elif kind == "osv":
        yield from _osv_file(path)
    elif kind == "debian":
        yield from parse_debian_list(path.read_text("utf-8", "replace"))
    elif kind in ("retire", "alpine"):
        try:
            doc = json.loads(path.read_bytes())
        except ValueError:
            yield None
            return
        yield from (parse_retire(doc) if kind == "retire" else parse_alpine(doc))
    else:
        raise ValueError(
            f"{path}: not a format the vulnerability DB imports (OSV zip/JSON/YAML, "
            "Debian DSA/DLA list, Retire.js JSON, Alpine secdb JSON)"
        )
