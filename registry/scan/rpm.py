"""The rpm database in its sqlite form (``var/lib/rpm/rpmdb.sqlite``, rpm ≥ 4.16; Fedora,
RHEL 9, Amazon Linux 2023), read from memory (``sqlite3`` ``deserialize``, no file written).

Each row of ``Packages`` holds one rpm header blob: big-endian ``il`` (index entries) and ``dl``
(data bytes), ``il`` entries of (tag, type, offset, count), then the data. Read tags: NAME 1000,
VERSION 1001, RELEASE 1002, EPOCH 1003, LICENSE 1014, ARCH 1022, SOURCERPM 1044. The older
Berkeley DB and ndb formats are not read.
"""

from __future__ import annotations

import sqlite3
import struct

from registry.scan.model import OsInfo, Package
from registry.scan.purl import purl

__all__ = ["parse_header", "parse_rpmdb"]

_TAGS = {
    1000: "name",
    1001: "version",
    1002: "release",
    1003: "epoch",
    1014: "license",
    1022: "arch",
    1044: "sourcerpm",
}
_STRING, _INT32, _STRING_ARRAY, _I18N = 6, 4, 8, 9


def parse_header(blob: bytes) -> dict[str, str]:
    """The tags above from one header blob ({} when it is malformed)."""
    if len(blob) < 8:
        return {}
    il, dl = struct.unpack(">II", blob[:8])
    start = 8 + 16 * il
    if il > 100_000 or start + dl > len(blob):
        return {}
    data = blob[start : start + dl]
    out: dict[str, str] = {}
    for i in range(il):
        tag, type_, offset, count = struct.unpack(">iIiI", blob[8 + 16 * i : 24 + 16 * i])
        name = _TAGS.get(tag)
        if name is None or not 0 <= offset < len(data):
            continue
        if type_ in (_STRING, _STRING_ARRAY, _I18N):
            end = data.find(b"\0", offset)
            out[name] = data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")
        elif type_ == _INT32 and count >= 1 and offset + 4 <= len(data):
            out[name] = str(struct.unpack(">i", data[offset : offset + 4])[0])
    return out


def parse_rpmdb(db: bytes, location: str, os: OsInfo | None = None) -> list[Package]:
    """Installed packages of an rpmdb.sqlite image ([] when it is not one)."""
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(db)
        rows = conn.execute("SELECT blob FROM Packages").fetchall()
    except (sqlite3.DatabaseError, AttributeError):
        return []
    finally:
        conn.close()
    out = []
    vendor = os.id if os else ""
    distro = f"{os.id}-{os.version_id}" if os and os.version_id else ""
    for (blob,) in rows:
        h = parse_header(bytes(blob)) if isinstance(blob, bytes | memoryview) else {}
        if not h.get("name") or not h.get("version") or h["name"] == "gpg-pubkey":
            continue
        version = h["version"] + (f"-{h['release']}" if h.get("release") else "")
        if h.get("epoch") and h["epoch"] != "0":
            version = f"{h['epoch']}:{version}"
        src = h.get("sourcerpm", "")
        out.append(
            Package(
                h["name"],
                version,
                "rpm",
                purl("rpm", h["name"], version, vendor, arch=h.get("arch", ""), distro=distro),
                (location,),
                src.removesuffix(".src.rpm").rsplit("-", 2)[0] if src else h["name"],
                version,
                (h["license"],) if h.get("license") else (),
            )
        )
    return out
