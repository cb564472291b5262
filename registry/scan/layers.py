"""Reading layer blobs into a small model of the image's filesystem, with bounded memory.

Each layer is streamed once (gzip, zstd when the ``zstandard`` module is present, or plain tar;
never seeked, never written to disk). Layers are applied in order: a ``.wh.<name>`` entry removes
``<name>`` (and all beneath it) from the layers below, ``.wh..wh..opq`` empties its directory of
what the layers below put there. The model keeps every path with its kind and mode, but file
*content* only for the files the catalogers read (:func:`capture_kind`): small metadata files
(up to a cap each and in total), and packages found while streaming through ELF binaries (Go
build info) and Java archives (read into memory only up to a cap).

Bad layers raise :class:`~registry.scan.model.ScanFailed` with a reason: corrupt or truncated
compression or tar, entry names with ``..`` or absolute, a decompression bomb (more than
``Limits.max_layer_bytes`` out, or more than ``max_ratio`` times the compressed size beyond
``ratio_floor``), an entry claiming more than ``max_member_bytes`` (huge sparse files), too many
entries, and symlink loops (found by :func:`check_symlinks` after the last layer).
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO

from registry.scan.model import Package, ScanFailed

try:  # ISA-L's inflate (PyPI isal): 2-2.5x zlib's on a layer (docs/benchmarks.md, "Scanner")
    from isal import isal_zlib as _inflate
except ImportError:  # pragma: no cover - isal is a dependency; zlib is the same API
    _inflate = zlib  # type: ignore[assignment]
_INFLATE_ERRORS = (zlib.error, _inflate.error)

__all__ = ["Entry", "Filesystem", "Limits", "apply_layer", "capture_kind", "check_symlinks", "decompressed"]

GIB = 1 << 30
MIB = 1 << 20


@dataclass(frozen=True)
class Limits:
    max_layer_bytes: int = 32 * GIB
    max_ratio: int = 200
    ratio_floor: int = 256 * MIB
    max_entries: int = 2_000_000
    max_member_bytes: int = 64 * GIB
    max_text_bytes: int = 4 * MIB
    max_db_bytes: int = 64 * MIB
    max_captured_bytes: int = 256 * MIB
    max_archive_bytes: int = 64 * MIB
    max_binary_bytes: int = 2 * GIB
    max_packages: int = 200_000
    max_symlink_hops: int = 40


class Entry:
    """One path of the merged filesystem. ``data`` is set only for captured text files;
    ``packages`` for binaries and archives analysed while streaming."""

    __slots__ = ("data", "kind", "layer", "link", "mode", "packages")

    def __init__(
        self,
        kind: str,
        layer: int,
        mode: int = 0,
        link: str = "",
        data: bytes | None = None,
        packages: tuple[Package, ...] = (),
    ) -> None:
        self.kind = kind  # "file", "dir", "symlink"
        self.layer = layer
        self.mode = mode
        self.link = link
        self.data = data
        self.packages = packages


Filesystem = dict[str, Entry]
# analyse(path, stream, size, limits) -> packages found in one binary or archive.
Analyser = Callable[[str, BinaryIO, int, Limits], tuple[Package, ...]]

_DB_FILES = {
    "var/lib/dpkg/status",
    "lib/apk/db/installed",
    "var/lib/rpm/rpmdb.sqlite",
    "usr/lib/sysimage/rpm/rpmdb.sqlite",
}
_TEXT_FILES = {"etc/os-release", "usr/lib/os-release"}
_NPM = re.compile(r"(^|/)node_modules/(@[^/]+/)?[^/@][^/]*/package\.json$")
_ARCHIVE = (".jar", ".war", ".ear", ".jpi", ".hpi")


def capture_kind(path: str, mode: int) -> str:
    """What to keep of a regular file: ``"db"``/``"text"`` (its bytes), ``"archive"`` (Java),
    ``"binary"`` (an executable: may be a Go binary), or ``""`` (nothing)."""
    if path in _DB_FILES:
        return "db"
    if path in _TEXT_FILES or path.startswith("var/lib/dpkg/status.d/"):
        return "text"
    base = posixpath.basename(path)
    if base == "METADATA" and path.endswith(".dist-info/METADATA"):
        return "text"
    if base == "PKG-INFO" and (path.endswith(".egg-info/PKG-INFO") or path.endswith(".egg-info")):
        return "text"
    if path.endswith(".egg-info") and "/" in path:
        return "text"
    if base == "package.json" and _NPM.search(path):
        return "text"
    if base.lower().endswith(_ARCHIVE):
        return "archive"
    if mode & 0o111:
        return "binary"
    return ""


class _Counted(io.RawIOBase):
    """A readable stream over ``source`` that counts what it reads (the compressed bytes)."""

    def __init__(self, source: BinaryIO) -> None:
        self.source = source
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n if n is not None and n >= 0 else 1 << 20)
        self.count += len(data)
        return data


class _Inflating(io.RawIOBase):
    """Decompressed bytes of ``source`` (gzip or zstd), refusing bombs (see the module doc)."""

    def __init__(self, source: BinaryIO, kind: str, limits: Limits) -> None:
        self.raw = _Counted(source)
        self.kind = kind
        self.limits = limits
        self.out = 0
        self.buffer = b""
        self.pos = 0
        self.eof = False
        self.pending = b""
        self.started = False
        self.out_of_member = False
        self.decoder = self._decoder()

    def _decoder(self):  # type: ignore[no-untyped-def]
        if self.kind == "gzip":
            return _inflate.decompressobj(16 + zlib.MAX_WBITS)
        import zstandard  # type: ignore[import-not-found]

        return zstandard.ZstdDecompressor(max_window_size=1 << 27).decompressobj()

    def readable(self) -> bool:
        return True

    def _fill(self, want: int) -> None:
        """Decompress until ``want`` bytes are buffered or the stream ends; at most 1 MiB of
        output per step, so memory stays near ``want`` plus one step."""
        while len(self.buffer) < want and not self.eof:
            try:
                if self.kind == "gzip":
                    out = self._gzip_step()
                else:
                    chunk = self.raw.read(64 * 1024)
                    if not chunk:
                        self.eof = True
                        break
                    out = self.decoder.decompress(chunk)
            except _INFLATE_ERRORS as e:
                raise ScanFailed(f"layer is not valid gzip: {e}") from None
            except ScanFailed:
                raise
            except Exception as e:  # zstandard.ZstdError
                raise ScanFailed(f"layer is not valid {self.kind}: {e}") from None
            self._check(len(out))
            self.out += len(out)
            self.buffer += out

    def _gzip_step(self) -> bytes:
        if self.decoder.eof:
            rest = self.decoder.unused_data  # another gzip member may follow
            self.decoder = _inflate.decompressobj(16 + zlib.MAX_WBITS)
            self.pending = rest
        if not self.pending:
            self.pending = self.raw.read(64 * 1024)
            if not self.pending:
                if self.started and not self.decoder.eof and self.out_of_member:
                    raise ScanFailed("layer is truncated: the gzip stream ends early")
                self.eof = True
                return b""
        out = self.decoder.decompress(self.pending, 1 << 20)
        self.pending = self.decoder.unconsumed_tail
        self.started = True
        self.out_of_member = not self.decoder.eof
        return out

    def _check(self, pending: int) -> None:
        total = self.out + pending
        lim = self.limits
        if total > lim.max_layer_bytes:
            raise ScanFailed(f"layer decompresses to more than {lim.max_layer_bytes} bytes")
        if total > lim.ratio_floor and total > lim.max_ratio * max(self.raw.count, 1):
            raise ScanFailed(
                f"layer looks like a decompression bomb: {total} bytes out of {self.raw.count} "
                f"(more than {lim.max_ratio} times)"
            )

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = 1 << 20
        if len(self.buffer) - self.pos < n:
            self.buffer = self.buffer[self.pos :]  # compact, then refill (no quadratic copying)
            self.pos = 0
            self._fill(n)
        data = self.buffer[self.pos : self.pos + n]
        self.pos += len(data)
        return data


def decompressed(blob: BinaryIO, limits: Limits) -> BinaryIO:
    """The tar stream inside a layer blob, by its first bytes (gzip, zstd or plain tar)."""
    head = blob.read(4)
    rest = _Prefixed(head, blob)
    if head[:2] == b"\x1f\x8b":
        return _Inflating(rest, "gzip", limits)  # type: ignore[return-value]
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard  # noqa: F401  # type: ignore[import-not-found]
        except ImportError:
            raise ScanFailed("zstd layers need the zstandard module, which is not installed") from None
        return _Inflating(rest, "zstd", limits)  # type: ignore[return-value]
    if head[:3] == b"BZh" or head[:4] == b"\xfd7zX":
        raise ScanFailed("layer compression not supported (only gzip, zstd and plain tar)")
    return _PlainLimited(rest, limits)  # type: ignore[return-value]


class _Prefixed(io.RawIOBase):
    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head = head
        self.rest = rest

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        if self.head:
            data, self.head = self.head[:n] if n >= 0 else self.head, self.head[n:] if n >= 0 else b""
            return data
        return self.rest.read(n)


class _PlainLimited(io.RawIOBase):
    def __init__(self, source: BinaryIO, limits: Limits) -> None:
        self.source = source
        self.limits = limits
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(n if n >= 0 else 1 << 20)
        self.count += len(data)
        if self.count > self.limits.max_layer_bytes:
            raise ScanFailed(f"layer is more than {self.limits.max_layer_bytes} bytes")
        return data


def _clean(name: str) -> str:
    """The entry's path relative to the root ("" for the root), refusing escapes."""
    if name.startswith("/"):
        raise ScanFailed(f"layer entry has an absolute path: {name[:200]!r}")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ScanFailed(f"layer entry leaves the root: {name[:200]!r}")
    return "/".join(parts)


def _read_capped(stream: BinaryIO, cap: int) -> bytes:
    data = stream.read(cap + 1)
    return data[:cap] if len(data) > cap else data


def apply_layer(
    fs: Filesystem, blob: BinaryIO, layer: int, limits: Limits, analyse: Analyser, budget: list[int]
) -> None:
    """Apply one layer blob onto ``fs`` in place. ``budget`` holds the captured bytes left (one
    int, shared across layers)."""
    stream = decompressed(blob, limits)
    whiteouts: set[str] = set()
    opaque: set[str] = set()
    try:
        with tarfile.open(fileobj=stream, mode="r|") as tar:  # type: ignore[call-overload]
            for member in tar:
                _apply_member(fs, tar, member, layer, limits, analyse, budget, whiteouts, opaque)
    except ScanFailed:
        raise
    except (tarfile.TarError, EOFError) as e:
        raise ScanFailed(f"layer {layer + 1} is not a valid tar: {e or 'truncated'}") from None
    except (OSError, ValueError, UnicodeError) as e:
        raise ScanFailed(f"layer {layer + 1} could not be read: {e}") from None
    if whiteouts or opaque:
        _remove_lower(fs, layer, whiteouts, opaque)


def _apply_member(
    fs: Filesystem,
    tar: tarfile.TarFile,
    m: tarfile.TarInfo,
    layer: int,
    limits: Limits,
    analyse: Analyser,
    budget: list[int],
    whiteouts: set[str],
    opaque: set[str],
) -> None:
    path = _clean(m.name)
    if not path:
        return
    if len(fs) >= limits.max_entries:
        raise ScanFailed(f"image has more than {limits.max_entries} files")
    if m.size > limits.max_member_bytes:
        raise ScanFailed(
            f"layer entry {path[:200]!r} claims {m.size} bytes (limit {limits.max_member_bytes})"
        )
    parent, base = posixpath.split(path)
    if base == ".wh..wh..opq":
        opaque.add(parent)
        return
    if base.startswith(".wh."):
        whiteouts.add(posixpath.join(parent, base[4:]))
        return
    if m.isdir():
        old = fs.get(path)
        if old is None or old.kind != "dir":
            fs[path] = Entry("dir", layer, m.mode)
        return
    if m.issym():
        fs[path] = Entry("symlink", layer, m.mode, link=m.linkname)
        return
    if m.islnk():
        target = fs.get(_clean(m.linkname))
        if target is not None and target.kind == "file":
            fs[path] = Entry("file", layer, target.mode, data=target.data, packages=target.packages)
        else:
            fs[path] = Entry("file", layer, m.mode)
        return
    if not m.isreg():
        return  # devices, fifos
    kind = capture_kind(path, m.mode)
    entry = Entry("file", layer, m.mode)
    fs[path] = entry
    if not kind or m.size == 0:
        return
    f = tar.extractfile(m)
    if f is None:
        return
    if kind in ("text", "db"):
        cap = min(limits.max_db_bytes if kind == "db" else limits.max_text_bytes, budget[0])
        entry.data = _read_capped(f, cap)  # type: ignore[arg-type]
        budget[0] -= len(entry.data)
    elif kind == "archive" and m.size <= min(limits.max_archive_bytes, budget[0]):
        entry.packages = analyse(path, f, m.size, limits)  # type: ignore[arg-type]
    elif kind == "binary" and m.size <= limits.max_binary_bytes:
        entry.packages = analyse(path, f, m.size, limits)  # type: ignore[arg-type]


def _covered(path: str, prefixes: set[str], strict: bool) -> bool:
    p = path if not strict else posixpath.dirname(path)
    while True:
        if p in prefixes:
            return True
        if not p:
            return False
        p = posixpath.dirname(p)


def _remove_lower(fs: Filesystem, layer: int, whiteouts: set[str], opaque: set[str]) -> None:
    doomed = [
        p
        for p, e in fs.items()
        if e.layer < layer
        and (_covered(p, whiteouts, strict=False) or (bool(opaque) and _covered(p, opaque, strict=True)))
    ]
    for p in doomed:
        del fs[p]


def resolve(fs: Filesystem, path: str, limits: Limits) -> str | None:
    """The path ``path`` names after following symlinks (in any component), or None when it
    does not exist. A loop raises ScanFailed."""
    hops = 0
    parts = path.split("/")
    done: list[str] = []
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        current = "/".join([*done, part])
        entry = fs.get(current)
        if entry is None:
            if parts:  # a directory no tar entry named (implied by the paths beneath it)
                done.append(part)
                continue
            return None
        if entry.kind == "symlink":
            hops += 1
            if hops > limits.max_symlink_hops:
                raise ScanFailed(f"symlink loop at {path[:200]!r}")
            link = entry.link
            if link.startswith("/"):
                done = []
            parts = link.split("/") + parts
            continue
        done.append(part)
    return "/".join(done)


def check_symlinks(fs: Filesystem, limits: Limits, paths: Iterable[str] | None = None) -> None:
    """Raise ScanFailed if any symlink (or one of ``paths``) leads into a loop."""
    for p in paths if paths is not None else [p for p, e in fs.items() if e.kind == "symlink"]:
        resolve(fs, p, limits)
