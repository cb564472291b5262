"""Packages inside single files, found while the layer streams by: Go build info in ELF
binaries, Maven coordinates in Java archives. Both read bounded amounts (see ``Limits``).

Go: the build info blob (``debug/buildinfo``'s format) starts with the 14-byte magic
``\\xff Go buildinf:``, then pointer size and flags bytes at offsets 14 and 15; since Go 1.18
(flag bit 2) the Go version and the module info follow the 32-byte header inline, each as a
uvarint length and bytes. The module info is ``path``/``mod``/``dep``/``=>`` lines between two
16-byte sentinels. Older binaries (pointer-based build info) are not read.
"""

from __future__ import annotations

import io
import posixpath
import zipfile
from typing import BinaryIO

from registry.scan.layers import Limits
from registry.scan.model import Package
from registry.scan.purl import purl

__all__ = ["analyse", "go_packages", "java_packages", "parse_go_buildinfo"]

MAGIC = b"\xff Go buildinf:"
_CHUNK = 1 << 20
_TAIL = 1 << 20  # how much after the header the version and module info may take


def analyse(path: str, stream: BinaryIO, size: int, limits: Limits) -> tuple[Package, ...]:
    """The packages in one file: a Java archive by name, else an ELF binary by content."""
    if path.lower().endswith((".jar", ".war", ".ear", ".jpi", ".hpi")):
        return java_packages(path, stream.read(limits.max_archive_bytes + 1), limits)
    head = stream.read(4)
    if head != b"\x7fELF":
        return ()
    return go_packages(path, head, stream)


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while pos < len(buf) and shift < 64:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
    raise ValueError("bad varint")


def parse_go_buildinfo(blob: bytes) -> tuple[str, str] | None:
    """(Go version, module info text) from bytes starting at the magic, or None."""
    if len(blob) < 33 or not blob.startswith(MAGIC):
        return None
    flags = blob[15]
    if not flags & 2:
        return None  # pre-1.18 pointer format
    try:
        n, pos = _uvarint(blob, 32)
        version = blob[pos : pos + n]
        n2, pos2 = _uvarint(blob, pos + n)
        mod = blob[pos2 : pos2 + n2]
    except ValueError:
        return None
    if not version.startswith(b"go") or len(version) > 64:
        return None
    if len(mod) >= 33 and mod[-17:-16] == b"\n":
        mod = mod[16:-16]
    return version.decode("utf-8", "replace"), mod.decode("utf-8", "replace")


def _find_buildinfo(head: bytes, stream: BinaryIO) -> bytes | None:
    """The bytes from the first magic that parses as build info (a magic inside string data
    is passed over), reading ``stream`` in chunks and keeping at most a few MiB."""
    buf, pos, eof = head, 0, False
    while True:
        at = buf.find(MAGIC, pos)
        if at < 0:
            if eof:
                return None
            chunk = stream.read(_CHUNK)
            eof = not chunk
            buf, pos = buf[-(len(MAGIC) - 1) :] + chunk, 0
            continue
        while len(buf) < at + 32 + _TAIL and not eof:
            chunk = stream.read(_CHUNK)
            eof = not chunk
            buf += chunk
        blob = buf[at : at + 32 + _TAIL]
        if parse_go_buildinfo(blob) is not None:
            return blob
        pos = at + 1


def go_packages(path: str, head: bytes, stream: BinaryIO) -> tuple[Package, ...]:
    """The main module, its dependencies (replacements applied) and ``stdlib`` of a Go binary."""
    blob = _find_buildinfo(head, stream)
    if blob is None:
        return ()
    parsed = parse_go_buildinfo(blob)
    assert parsed is not None
    go_version, modinfo = parsed
    loc = (path,)
    mods: list[tuple[str, str]] = []
    for line in modinfo.splitlines():
        fields = line.split("\t")
        if fields[0] in ("mod", "dep") and len(fields) >= 3:
            mods.append((fields[1], fields[2]))
        elif fields[0] == "=>" and len(fields) >= 3 and mods:
            mods[-1] = (fields[1], fields[2])
    out = [
        Package(name, version, "golang", purl("golang", name, version), loc) for name, version in mods if name
    ]
    out.append(Package("stdlib", go_version, "golang", purl("golang", "stdlib", go_version), loc))
    return tuple(out)


def _props(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#!" or "=" not in line:
            continue
        k, _, v = line.partition("=")
        out[k.strip()] = v.strip()
    return out


def _manifest(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    last = ""
    for line in text.splitlines():
        if line.startswith(" ") and last:
            out[last] += line[1:]
        elif ":" in line:
            k, _, v = line.partition(":")
            last = k.strip()
            out[last] = v.strip()
        elif not line.strip():
            if out:
                break  # only the main section
    return out


def java_packages(path: str, data: bytes, limits: Limits, depth: int = 0) -> tuple[Package, ...]:
    """Maven packages of one archive: every ``pom.properties``, else the manifest's
    title/version, plus nested archives (two levels, each within the archive cap)."""
    if len(data) > limits.max_archive_bytes:
        return ()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return ()
    out: list[Package] = []
    small = 1 << 20

    def read(info: zipfile.ZipInfo, cap: int) -> bytes | None:
        if info.file_size > cap:
            return None
        try:
            with zf.open(info) as f:
                return f.read(cap + 1)[:cap]
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError):
            return None

    for info in infos[:100_000]:
        name = info.filename
        if name.startswith("META-INF/maven/") and name.endswith("/pom.properties"):
            raw = read(info, small)
            props = _props(raw.decode("utf-8", "replace")) if raw else {}
            group, artifact, version = (
                props.get("groupId", ""),
                props.get("artifactId", ""),
                props.get("version", ""),
            )
            if artifact and version:
                out.append(
                    Package(
                        artifact,
                        version,
                        "maven",
                        purl("maven", f"{group}/{artifact}", version),
                        (path,),
                        source_name=group,
                    )
                )
    if not out:
        info = next((i for i in infos if i.filename == "META-INF/MANIFEST.MF"), None)
        raw = read(info, small) if info else None
        m = _manifest(raw.decode("utf-8", "replace")) if raw else {}
        version = (
            m.get("Implementation-Version") or m.get("Bundle-Version") or m.get("Specification-Version", "")
        )
        name = (
            m.get("Implementation-Title")
            or m.get("Bundle-Name")
            or posixpath.basename(path).rsplit(".", 1)[0].rsplit("-", 1)[0]
        )
        if version and name:
            out.append(Package(name, version, "maven", purl("maven", name, version), (path,)))
    if depth < 2:
        for info in infos[:100_000]:
            if info.filename.lower().endswith((".jar", ".war", ".ear")):
                raw = read(info, limits.max_archive_bytes)
                if raw:
                    out.extend(java_packages(f"{path}:{info.filename}", raw, limits, depth + 1))
    return tuple(out)
