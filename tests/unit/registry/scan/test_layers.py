"""Layers applied in order with whiteouts, and bad layers ending as ScanFailed with bounded memory."""

from __future__ import annotations

import gzip
import io
import tarfile
import tracemalloc
import zlib

import pytest

from registry.scan import Limits, ScanFailed, catalog_layers, scan_image
from registry.scan.layers import capture_kind
from tests.unit.registry.scan.layerkit import Blobs, layer, manifest_for

META = "Metadata-Version: 2.1\nName: {0}\nVersion: {1}\n\n"
SITE = "usr/lib/python3/site-packages"


def names(result) -> set[tuple[str, str]]:
    return {(p.name, p.version) for p in result.packages}


def test_upper_layer_replaces_and_whiteout_removes_lower_files():
    lower = layer(
        {
            f"{SITE}/a-1.0.dist-info/METADATA": META.format("a", "1.0"),
            f"{SITE}/b-1.0.dist-info/METADATA": META.format("b", "1.0"),
        }
    )
    upper = layer(
        {
            f"{SITE}/a-1.0.dist-info/METADATA": META.format("a", "2.0"),
            f"{SITE}/.wh.b-1.0.dist-info": "",
        }
    )
    assert names(catalog_layers([io.BytesIO(lower), io.BytesIO(upper)])) == {("a", "2.0")}


def test_opaque_directory_hides_lower_content_but_keeps_its_own():
    lower = layer({f"{SITE}/old-1.dist-info/METADATA": META.format("old", "1")})
    upper = layer(
        {
            f"{SITE}/.wh..wh..opq": "",
            f"{SITE}/new-1.dist-info/METADATA": META.format("new", "1"),
        }
    )
    assert names(catalog_layers([io.BytesIO(lower), io.BytesIO(upper)])) == {("new", "1")}


def test_a_whiteout_does_not_remove_a_file_of_its_own_layer_or_a_later_one():
    lower = layer({f"{SITE}/.wh.x-1.dist-info": ""})
    upper = layer({f"{SITE}/x-1.dist-info/METADATA": META.format("x", "1")})
    assert names(catalog_layers([io.BytesIO(lower), io.BytesIO(upper)])) == {("x", "1")}


def test_plain_tar_layers_and_hardlinks_are_read():
    blob = layer(
        {
            f"{SITE}/a-1.dist-info/METADATA": META.format("a", "1"),
            f"{SITE}/b-1.dist-info/METADATA": ("hardlink", f"{SITE}/a-1.dist-info/METADATA"),
        },
        compress=False,
    )
    result = catalog_layers([io.BytesIO(blob)])
    assert names(result) == {("a", "1")}
    assert len(result.packages[0].locations) == 2


def test_os_release_through_a_symlink():
    blob = layer(
        {
            "usr/lib/os-release": 'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
            "etc/os-release": ("symlink", "../usr/lib/os-release"),
        }
    )
    os = catalog_layers([io.BytesIO(blob)]).os
    assert os is not None and (os.id, os.version_id) == ("alpine", "3.20.3")


def test_capture_kind_keeps_only_what_catalogers_read():
    assert capture_kind("var/lib/dpkg/status", 0o644) == "db"
    assert capture_kind("app/node_modules/@babel/core/package.json", 0o644) == "text"
    assert capture_kind("app/package.json", 0o644) == ""
    assert capture_kind("app/node_modules/x/lib/package.json", 0o644) == ""
    assert capture_kind("usr/share/doc/README", 0o644) == ""
    assert capture_kind("usr/bin/tool", 0o755) == "binary"
    assert capture_kind("opt/app.jar", 0o644) == "archive"


def fails(blobs: list[bytes], limits: Limits | None = None) -> str:
    store = Blobs()
    with pytest.raises(ScanFailed) as info:
        scan_image(store, manifest_for(store, blobs), None, limits)
    assert info.value.status == "FAILED"
    return info.value.reason


def test_corrupt_gzip_fails_with_a_reason():
    blob = bytearray(layer({"a": "x" * 1000}))
    blob[20:40] = b"\x00" * 20
    assert "gzip" in fails([bytes(blob)]) or "tar" in fails([bytes(blob)])


def test_truncated_gzip_and_truncated_tar_fail():
    blob = layer({"a": "x" * 100_000})
    assert "truncated" in fails([blob[: len(blob) // 2]])
    raw = layer({"a": "x" * 100_000}, compress=False)
    assert "tar" in fails([raw[:5000]])


@pytest.mark.parametrize("name", ["../etc/passwd", "a/../../x", "/etc/shadow"])
def test_escaping_and_absolute_entry_names_fail(name):
    reason = fails([layer({name: "x"})])
    assert "absolute" in reason or "leaves the root" in reason


def test_a_symlink_loop_fails():
    reason = fails([layer({"etc/a": ("symlink", "b"), "etc/b": ("symlink", "a")})])
    assert "symlink loop" in reason


def test_a_huge_sparse_file_fails_without_reading_it():
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("var/log/lastlog")
        info.size = 10
        info.pax_headers = {
            "GNU.sparse.size": str(1 << 40),
            "GNU.sparse.numblocks": "1",
            "GNU.sparse.map": "0,10",
        }
        tar.addfile(info, io.BytesIO(b"x" * 10))
    assert "claims" in fails([gzip.compress(buf.getvalue())])


def bomb(total: int) -> bytes:
    """A gzip'd tar of one file of ``total`` zero bytes, built in chunks."""
    header = tarfile.TarInfo("zeros")
    header.size = total
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [comp.compress(header.tobuf(format=tarfile.GNU_FORMAT))]
    chunk = b"\0" * (1 << 20)
    for _ in range(total // len(chunk)):
        out.append(comp.compress(chunk))
    out.append(comp.compress(b"\0" * 1024))
    out.append(comp.flush())
    return b"".join(out)


def test_a_decompression_bomb_fails_with_bounded_memory():
    blob = bomb(300 << 20)  # 300 MiB of zeros in about 300 KB
    assert len(blob) < 1 << 20
    tracemalloc.start()
    try:
        reason = fails([blob])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "decompression bomb" in reason
    assert peak < 16 << 20, f"peak {peak} bytes"


def test_an_oversized_layer_fails_at_the_limit():
    reason = fails([layer({"big": b"\1" * (3 << 20)}, compress=False)], Limits(max_layer_bytes=1 << 20))
    assert "more than" in reason


def test_a_large_metadata_file_is_capped():
    huge = META.format("a", "1") + "x" * (2 << 20)
    result = catalog_layers(
        [io.BytesIO(layer({f"{SITE}/a-1.dist-info/METADATA": huge}))], Limits(max_text_bytes=1 << 16)
    )
    assert names(result) == {("a", "1")}
