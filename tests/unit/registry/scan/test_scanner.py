"""scan_image: manifests it refuses, missing blobs, layer formats, bounded output."""

from __future__ import annotations

import io

import pytest

from registry.scan import Limits, ScanFailed, UnsupportedImage, catalog_layers, layer_digests, scan_image
from tests.unit.registry.scan.layerkit import Blobs, layer, manifest_for


def test_an_index_and_an_artifact_are_unsupported():
    with pytest.raises(UnsupportedImage) as info:
        layer_digests({"mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []})
    assert info.value.status == "UNSUPPORTED_IMAGE"
    with pytest.raises(UnsupportedImage):
        layer_digests(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "layers": [],
                "config": {"mediaType": "application/vnd.cncf.helm.config.v1+json"},
            }
        )
    with pytest.raises(UnsupportedImage):
        layer_digests(b"not json")


def test_a_missing_layer_blob_fails():
    store = Blobs()
    manifest = manifest_for(store, [layer({"a": "b"})])
    store.blobs.pop(manifest["layers"][0]["digest"])
    with pytest.raises(ScanFailed, match="not stored"):
        scan_image(store, manifest, None)


def test_zstd_without_the_module_or_unknown_compression_fails_with_a_reason():
    try:
        import zstandard  # noqa: F401
    except ImportError:
        with pytest.raises(ScanFailed, match="zstandard"):
            catalog_layers([io.BytesIO(b"\x28\xb5\x2f\xfd" + b"\0" * 100)])
    with pytest.raises(ScanFailed, match="not supported"):
        catalog_layers([io.BytesIO(b"BZh91AY&SY" + b"\0" * 100)])


def test_the_package_list_is_bounded():
    files = {
        f"app/node_modules/p{i}/package.json": f'{{"name": "p{i}", "version": "1.0.0"}}' for i in range(20)
    }
    result = catalog_layers([io.BytesIO(layer(files))], Limits(max_packages=5))
    assert len(result.packages) == 5 and "more than 5 packages" in result.notes[0]


def test_captured_bytes_are_bounded_across_layers():
    meta = "Metadata-Version: 2.1\nName: {0}\nVersion: 1\n\n" + "x" * 4000
    files = {f"site/p{i}-1.dist-info/METADATA": meta.format(f"p{i}") for i in range(10)}
    result = catalog_layers([io.BytesIO(layer(files))], Limits(max_captured_bytes=3 * 4100))
    assert 2 <= len(result.packages) <= 4


_WATCH: list[tuple[str, object]] | None = None


def _audit(event: str, args: tuple) -> None:
    if (
        _WATCH is not None
        and event == "open"
        and len(args) >= 2
        and isinstance(args[1], str)
        and (set(args[1]) & set("wax+"))
    ):
        _WATCH.append((event, args[0]))
    if _WATCH is not None and event in ("os.mkdir", "os.rename", "shutil.copyfile"):
        _WATCH.append((event, args[0]))


def test_a_scan_writes_no_file():
    import sys

    global _WATCH
    sys.addaudithook(_audit)  # stays installed, but records only while _WATCH is set
    store = Blobs()
    manifest = manifest_for(
        store,
        [
            layer(
                {
                    "etc/os-release": "ID=debian\n",
                    "opt/a.jar": b"PK\x03\x04xx",
                    "usr/bin/x": ("exec", b"\x7fELF" + b"\0" * 1000),
                }
            )
        ],
    )
    _WATCH = []
    try:
        scan_image(store, manifest, None)
        seen = list(_WATCH)
    finally:
        _WATCH = None
    assert seen == []
