"""Test images built from local material only (Debian's static busybox), never pulled.

* ``busybox_image()``: ``docker import`` of a root file system holding ``/bin/busybox`` and
  its applets as symlinks.
* ``echo_image()``: busybox ``httpd`` that answers ``GET /`` with ``$VERSION`` and
  ``GET /cgi-bin/call`` by fetching ``$DOWNSTREAM_URL`` and relaying its answer; it listens on
  ``$PORT`` (default 8080). The mesh and end-to-end tests use it.
* ``layer_tar()``: an uncompressed layer tar written with ``tarfile``, for registry tests.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

BUSYBOX = Path(shutil.which("busybox.static") or "/bin/busybox")
APPLETS = ["sh", "httpd", "wget", "nc", "sleep", "cat", "echo", "ls", "mkdir", "env", "true", "false", "id"]
BUSYBOX_TAG = "dockyard-test/busybox:latest"
ECHO_TAG = "dockyard-test/echo:latest"

ECHO_RUN = """#!/bin/sh
mkdir -p /www/cgi-bin
echo "${VERSION:-unknown}" > /www/index.html
exec httpd -f -p "${PORT:-8080}" -h /www
"""

ECHO_CALL = """#!/bin/sh
echo "Content-Type: text/plain"
echo ""
wget -q -O - "$DOWNSTREAM_URL" 2>&1 || echo "downstream call failed"
"""


def _add_file(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
    tar.addfile(info)


def busybox_rootfs(extra: dict[str, bytes] | None = None) -> bytes:
    """A root file system tar: busybox, its applets, /tmp, plus ``extra`` files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for d in ("bin", "tmp", "etc", "www", "www/cgi-bin", "app"):
            _add_dir(tar, d)
        _add_file(tar, "bin/busybox", BUSYBOX.read_bytes())
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 0
            tar.addfile(info)
        _add_file(tar, "etc/passwd", b"root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n", 0o644)
        _add_file(tar, "etc/group", b"root:x:0:\nnobody:x:65534:\n", 0o644)
        for name, data in (extra or {}).items():
            _add_file(tar, name, data)
    return buf.getvalue()


def _image_exists(tag: str) -> bool:
    return subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode == 0


def docker_import(tag: str, rootfs: bytes, changes: list[str]) -> str:
    args = ["docker", "import"]
    for c in changes:
        args += ["--change", c]
    subprocess.run([*args, "-", tag], input=rootfs, check=True, capture_output=True)
    return tag


def busybox_image(tag: str = BUSYBOX_TAG) -> str:
    if not _image_exists(tag):
        docker_import(tag, busybox_rootfs(), ['CMD ["/bin/sh"]', "ENV PATH=/bin"])
    return tag


def echo_image(tag: str = ECHO_TAG) -> str:
    if not _image_exists(tag):
        rootfs = busybox_rootfs({"app/run": ECHO_RUN.encode(), "www/cgi-bin/call": ECHO_CALL.encode()})
        docker_import(
            tag, rootfs, ['CMD ["/app/run"]', "ENV PATH=/bin", "ENV PORT=8080", "EXPOSE 8080"]
        )
    return tag


ECHO_STATUS_TAG = "dockyard-test/echo-status:latest"

ECHO_STATUS = """#!/bin/sh
printf 'HTTP/1.1 %s Status\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' \\
  "${QUERY_STRING:-200}" "${VERSION:-unknown}"
"""


def echo_status_image(tag: str = ECHO_STATUS_TAG) -> str:
    """The echo image plus ``/cgi-bin/status?CODE``, which answers with that status code."""
    if not _image_exists(tag):
        rootfs = busybox_rootfs({"app/run": ECHO_RUN.encode(), "www/cgi-bin/call": ECHO_CALL.encode(),
                                 "www/cgi-bin/status": ECHO_STATUS.encode()})
        docker_import(
            tag, rootfs, ['CMD ["/app/run"]', "ENV PATH=/bin", "ENV PORT=8080", "EXPOSE 8080"]
        )
    return tag


ECHO_FLAKY_TAG = "dockyard-test/echo-flaky:latest"

ECHO_FLAKY = """#!/bin/sh
if [ "${FAIL_PERCENT:-0}" -gt 0 ] && [ $((RANDOM % 100)) -lt "$FAIL_PERCENT" ]; then
  printf 'HTTP/1.1 500 Failing\\r\\nContent-Type: text/plain\\r\\n\\r\\nfailed %s\\n' "${VERSION:-unknown}"
else
  printf 'HTTP/1.1 200 OK\\r\\nContent-Type: text/plain\\r\\n\\r\\n%s\\n' "${VERSION:-unknown}"
fi
"""


def echo_flaky_image(tag: str = ECHO_FLAKY_TAG) -> str:
    """The echo image plus ``/cgi-bin/flaky``, which answers 500 (``failed $VERSION``) on about
    ``$FAIL_PERCENT`` percent of requests (default 0), else 200 with ``$VERSION``."""
    if not _image_exists(tag):
        rootfs = busybox_rootfs({"app/run": ECHO_RUN.encode(), "www/cgi-bin/call": ECHO_CALL.encode(),
                                 "www/cgi-bin/flaky": ECHO_FLAKY.encode()})
        docker_import(
            tag, rootfs, ['CMD ["/app/run"]', "ENV PATH=/bin", "ENV PORT=8080", "EXPOSE 8080"]
        )
    return tag


def build_image(tag: str, dockerfile: str, files: dict[str, bytes] | None = None) -> str:
    """``docker build`` a Dockerfile whose FROM names a local image (e.g. busybox_image())."""
    with tempfile.TemporaryDirectory() as d:
        Path(d, "Dockerfile").write_text(dockerfile)
        for name, data in (files or {}).items():
            Path(d, name).parent.mkdir(parents=True, exist_ok=True)
            Path(d, name).write_bytes(data)
        subprocess.run(["docker", "build", "-q", "-t", tag, d], check=True, capture_output=True)
    return tag


def layer_tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            _add_file(tar, name, data, 0o644)
    return buf.getvalue()
