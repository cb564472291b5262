from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from mesh.sidecar import (
    BINARY_PATH,
    DIGEST_LABEL,
    TOOLS_LABEL,
    extra_digest,
    extra_files,
    image_changes,
    image_tag,
    parse_ldd,
    parse_version,
    write_rootfs,
)

LDD = """\tlinux-vdso.so.1 (0x00007ffd5b1f7000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0abc720000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0abc53e000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0ac3921000)
"""


def test_ldd_output_gives_the_libraries_and_the_loader_without_the_vdso():
    assert parse_ldd(LDD) == ["/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libc.so.6",
                              "/lib64/ld-linux-x86-64.so.2"]


def test_a_static_binary_needs_no_library():
    assert parse_ldd("\tstatically linked\n") == []
    assert parse_ldd("\tnot a dynamic executable\n") == []


def test_a_missing_library_is_an_error():
    with pytest.raises(ValueError):
        parse_ldd("\tlibfoo.so.1 => not found\n")


def test_the_version_comes_from_envoy_version_output():
    out = "\n/x/envoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL\n"
    assert parse_version(out) == "1.40.0"
    assert image_tag("1.40.0") == "dockyard/envoy:1.40.0"
    with pytest.raises(ValueError):
        parse_version("garbage")


def test_the_image_runs_envoy_on_the_mounted_bootstrap_and_carries_the_digest():
    changes = image_changes("1.40.0", "ab" * 32)
    assert changes[0] == 'ENTRYPOINT ["/usr/local/bin/envoy"]'
    assert "/etc/envoy/envoy.json" in changes[1]
    assert changes[2] == f"LABEL {DIGEST_LABEL}={'ab' * 32} dockyard.envoy.version=1.40.0"


def test_the_rootfs_holds_the_binary_and_each_library_at_its_ldd_path(tmp_path):
    binary = tmp_path / "envoy"
    binary.write_bytes(b"\x7fELF binary")
    real = tmp_path / "libc.so.6.real"
    real.write_bytes(b"libc")
    link = tmp_path / "libc.so.6"
    link.symlink_to(real)
    buf = io.BytesIO()
    write_rootfs(buf, binary, [str(link)])
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile(BINARY_PATH).read() == b"\x7fELF binary"
        assert names[BINARY_PATH].mode == 0o755
        lib = str(link).lstrip("/")
        assert names[lib].isfile() and tar.extractfile(lib).read() == b"libc"  # content, not a link
        parent = str(tmp_path).lstrip("/")
        assert names[parent].isdir() and names["tmp"].mode == 0o1777
        assert names["etc/envoy"].isdir() and "etc/passwd" in names


def test_the_image_carries_the_hosts_iptables_its_plugins_and_their_libraries(tmp_path):
    extra = extra_files()
    assert "usr/sbin/iptables" in extra
    assert any(name.endswith("xtables/libxt_REDIRECT.so") for name in extra)
    binary = tmp_path / "envoy"
    binary.write_bytes(b"\x7fELF binary")
    buf = io.BytesIO()
    write_rootfs(buf, binary, [], extra)
    buf.seek(0)
    with tarfile.open(fileobj=buf) as tar:
        names = {m.name: m for m in tar.getmembers()}
        ipt = names["usr/sbin/iptables"]
        assert ipt.isfile() and ipt.mode == 0o755  # the alternatives link's content, not a link
        assert tar.extractfile(ipt).read() == Path("/usr/sbin/iptables").resolve().read_bytes()
        assert any(n.rsplit("/", 1)[-1].startswith("libxtables.so") for n in names)
        assert names["run"].isdir()


def test_the_extra_files_digest_labels_the_image_and_follows_their_content(tmp_path):
    tool = tmp_path / "tool"
    tool.write_bytes(b"one")
    first = extra_digest({"usr/sbin/tool": tool})
    assert first == extra_digest({"usr/sbin/tool": tool}) and extra_digest({}) == ""
    tool.write_bytes(b"two")
    assert extra_digest({"usr/sbin/tool": tool}) != first
    assert image_changes("1.40.0", "ab" * 32, first)[2].endswith(f" {TOOLS_LABEL}={first}")
