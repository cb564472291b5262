"""Catalogers: from the merged filesystem (:mod:`registry.scan.layers`) to packages (pure).

* OS identity: ``etc/os-release`` (following symlinks), else ``usr/lib/os-release``.
* dpkg: ``var/lib/dpkg/status`` (installed paragraphs only) and ``var/lib/dpkg/status.d/*``
  (distroless), with ``Source:`` (``foo`` or ``foo (1.2-3)``) as source name and version.
* apk: ``lib/apk/db/installed`` (``P:``/``V:``/``o:`` origin as source name).
* Python: ``*.dist-info/METADATA`` and ``*.egg-info/PKG-INFO`` (or an ``.egg-info`` file), names
  normalised per PEP 503.
* npm: ``node_modules/<name>/package.json`` and ``node_modules/@scope/<name>/package.json``, at
  any depth.
* Go binaries and Java archives: what :mod:`registry.scan.analysers` found while streaming.

* rpm: ``var/lib/rpm/rpmdb.sqlite`` (:mod:`registry.scan.rpm`); the Berkeley DB form
  (``var/lib/rpm/Packages``) is not read and is reported in ``notes``.
"""

from __future__ import annotations

import json
import posixpath
import re
from email.parser import HeaderParser

from registry.scan.layers import Filesystem, Limits, resolve
from registry.scan.model import OsInfo, Package
from registry.scan.purl import purl
from registry.scan.rpm import parse_rpmdb

__all__ = ["catalog", "normalize_pypi", "os_release", "parse_apk", "parse_dpkg", "parse_os_release"]


def normalize_pypi(name: str) -> str:
    """PEP 503: runs of ``-``, ``_`` and ``.`` become one ``-``, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", "replace")


def parse_os_release(text: str) -> OsInfo | None:
    values: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        k, _, v = line.partition("=")
        v = v.strip()
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
            v = v[1:-1]
        values[k.strip()] = v.replace('\\"', '"')
    if "ID" not in values:
        return None
    codename = values.get("VERSION_CODENAME", "")
    if not codename and values["ID"] == "debian":
        m = re.search(r"\(([a-z]+)\)", values.get("VERSION", ""))
        codename = m.group(1) if m else ""
    return OsInfo(values["ID"], values.get("VERSION_ID", ""), codename, values.get("PRETTY_NAME", ""))


def os_release(fs: Filesystem, limits: Limits) -> OsInfo | None:
    for path in ("etc/os-release", "usr/lib/os-release"):
        real = resolve(fs, path, limits)
        entry = fs.get(real) if real else None
        if entry is not None and entry.data:
            info = parse_os_release(_text(entry.data))
            if info:
                return info
    return None


def _paragraphs(text: str) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    cur: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if not line.strip():
            if cur:
                out.append(cur)
            cur, last = {}, ""
        elif line[0] in " \t":
            if last:
                cur[last] += "\n" + line.strip()
        elif ":" in line:
            k, _, v = line.partition(":")
            last = k.strip()
            cur[last] = v.strip()
    if cur:
        out.append(cur)
    return out


def _distro(os: OsInfo | None) -> str:
    return f"{os.id}-{os.version_id}" if os and os.version_id else ""


def parse_dpkg(text: str, location: str, os: OsInfo | None = None, need_status: bool = True) -> list[Package]:
    """Installed packages of a dpkg status file (or one ``status.d`` file)."""
    out = []
    for p in _paragraphs(text):
        name, version = p.get("Package", ""), p.get("Version", "")
        if not name or not version:
            continue
        status = p.get("Status", "")
        if (need_status or status) and not status.endswith(" installed"):
            continue
        src = p.get("Source", "").strip()
        src_name, src_version = name, version
        if src:
            m = re.match(r"^(\S+)(?:\s*\((\S+)\))?", src)
            if m:
                src_name = m.group(1)
                src_version = m.group(2) or version
        vendor = os.id if os else "debian"
        out.append(
            Package(
                name,
                version,
                "deb",
                purl("deb", name, version, vendor, arch=p.get("Architecture", ""), distro=_distro(os)),
                (location,),
                src_name,
                src_version,
            )
        )
    return out


def parse_apk(text: str, location: str, os: OsInfo | None = None) -> list[Package]:
    out = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if len(line) > 2 and line[1] == ":":
                fields.setdefault(line[0], line[2:])
        name, version = fields.get("P", ""), fields.get("V", "")
        if name and version:
            origin = fields.get("o", name)
            vendor = os.id if os else "alpine"
            out.append(
                Package(
                    name,
                    version,
                    "apk",
                    purl("apk", name, version, vendor, arch=fields.get("A", ""), distro=_distro(os)),
                    (location,),
                    origin,
                    version,
                    tuple(fields["L"].split(" ")) if fields.get("L") else (),
                )
            )
    return out


def parse_python_metadata(text: str, location: str) -> Package | None:
    head = text.split("\n\n", 1)[0]
    msg = HeaderParser().parsestr(head)
    name, version = (msg.get("Name") or "").strip(), (msg.get("Version") or "").strip()
    if not name or not version:
        return None
    norm = normalize_pypi(name)
    lic = (msg.get("License") or "").strip()
    return Package(
        norm,
        version,
        "pypi",
        purl("pypi", norm, version),
        (location,),
        licenses=(lic,) if lic and len(lic) < 100 else (),
    )


def parse_package_json(text: str, location: str) -> Package | None:
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return None
    lic = doc.get("license")
    return Package(
        name,
        version,
        "npm",
        purl("npm", name, version),
        (location,),
        licenses=(lic,) if isinstance(lic, str) else (),
    )


def catalog(fs: Filesystem, limits: Limits) -> tuple[OsInfo | None, list[Package], list[str]]:
    """(OS, packages deduplicated by type/name/version with their locations merged, notes)."""
    os = os_release(fs, limits)
    found: list[Package] = []
    notes: list[str] = []
    for path, entry in sorted(fs.items()):
        if entry.kind != "file":
            continue
        if entry.packages:
            found.extend(entry.packages)
            continue
        if entry.data is None:
            if path in ("var/lib/rpm/Packages", "var/lib/rpm/Packages.db"):
                notes.append(f"rpm database {path} not read (only the sqlite rpmdb is)")
            continue
        if path.endswith("rpm/rpmdb.sqlite"):
            found.extend(parse_rpmdb(entry.data, "/" + path, os))
            continue
        text = _text(entry.data)
        loc = "/" + path
        base = posixpath.basename(path)
        if path == "var/lib/dpkg/status":
            found.extend(parse_dpkg(text, loc, os))
        elif path.startswith("var/lib/dpkg/status.d/"):
            if not base.endswith(".md5sums"):
                found.extend(parse_dpkg(text, loc, os, need_status=False))
        elif path == "lib/apk/db/installed":
            found.extend(parse_apk(text, loc, os))
        elif base == "package.json":
            pkg = parse_package_json(text, loc)
            if pkg:
                found.append(pkg)
        elif base in ("METADATA", "PKG-INFO") or path.endswith(".egg-info"):
            pkg = parse_python_metadata(text, loc)
            if pkg:
                found.append(pkg)
        if len(found) > limits.max_packages:
            notes.append(f"more than {limits.max_packages} packages: the rest are not listed")
            break
    merged: dict[tuple[str, str, str], Package] = {}
    for p in found[: limits.max_packages]:
        key = (p.type, p.name, p.version)
        old = merged.get(key)
        if old is None:
            merged[key] = p
        elif p.locations[0] not in old.locations and len(old.locations) < 50:
            merged[key] = Package(
                old.name,
                old.version,
                old.type,
                old.purl,
                old.locations + p.locations,
                old.source_name,
                old.source_version,
                old.licenses,
            )
    return os, list(merged.values()), notes
