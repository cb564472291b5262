"""Malformed requests: each gets the right 4xx and OCI error code, none a 5xx, nothing is
half-stored; an expired token or one for another repository gets 401 and stores nothing;
and a registry killed during 10 uploads comes back with nothing corrupt."""

from __future__ import annotations

import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from registry.auth import KEY_FILE, TokenService
from registry.scopes import parse_scope
from tests.support.registry import OCI_CONFIG, OCI_MANIFEST, RegistryClient, canonical, sha256
from tests.support.registry_auth import ADMIN_USER
from tests.support.server import Dockyard

REPO = f"bad/{uuid.uuid4().hex[:8]}"
BLOB = b"a blob for the corpus" * 10
DIGEST = sha256(BLOB)
MISSING = sha256(b"never pushed")


@dataclass(frozen=True)
class Case:
    """One malformed request and the answer it must get."""

    id: str
    method: str
    path: str
    status: int
    code: str
    headers: dict[str, str] | None = None
    body: bytes | None = None
    params: dict[str, str] | None = None


CORPUS = [
    # digests
    Case("short digest", "GET", f"/v2/{REPO}/blobs/sha256:abc", 400, "DIGEST_INVALID"),
    Case("unknown algorithm", "GET", f"/v2/{REPO}/blobs/md5:{'a' * 32}", 400, "DIGEST_INVALID"),
    Case("upper-case hex", "GET", f"/v2/{REPO}/blobs/sha256:{'A' * 64}", 400, "DIGEST_INVALID"),
    Case("no algorithm", "HEAD", f"/v2/{REPO}/blobs/{'a' * 64}", 400, ""),
    Case("bad manifest digest", "GET", f"/v2/{REPO}/manifests/sha256:zz", 400, "DIGEST_INVALID"),
    Case("bad digest delete", "DELETE", f"/v2/{REPO}/blobs/sha512:00", 400, "DIGEST_INVALID"),
    Case("bad referrers digest", "GET", f"/v2/{REPO}/referrers/sha256:", 400, "DIGEST_INVALID"),
    Case("bad monolithic digest", "POST", f"/v2/{REPO}/blobs/uploads/", 400, "DIGEST_INVALID",
         body=BLOB, params={"digest": "sha256:nope"}),
    Case("bad mount digest", "POST", f"/v2/{REPO}/blobs/uploads/", 400, "DIGEST_INVALID",
         params={"mount": "garbage", "from": REPO}),
    Case("wrong monolithic digest", "POST", f"/v2/{REPO}/blobs/uploads/", 400, "DIGEST_INVALID",
         body=BLOB, params={"digest": MISSING}),
    # ranges
    Case("backwards range", "GET", f"/v2/{REPO}/blobs/{DIGEST}", 416, "RANGE_INVALID",
         headers={"Range": "bytes=5-2"}),
    Case("huge range", "GET", f"/v2/{REPO}/blobs/{DIGEST}", 416, "RANGE_INVALID",
         headers={"Range": "bytes=99999999999999999999999-"}),
    Case("multi range", "GET", f"/v2/{REPO}/blobs/{DIGEST}", 416, "RANGE_INVALID",
         headers={"Range": "bytes=0-1,3-4"}),
    # manifests
    Case("invalid json", "PUT", f"/v2/{REPO}/manifests/v1", 400, "MANIFEST_INVALID",
         headers={"Content-Type": OCI_MANIFEST}, body=b'{"schemaVersion": 2,'),
    Case("unknown media type", "PUT", f"/v2/{REPO}/manifests/v1", 400, "MANIFEST_INVALID",
         headers={"Content-Type": "application/x-unknown"}, body=b'{"schemaVersion": 2}'),
    Case("schema 1 manifest", "PUT", f"/v2/{REPO}/manifests/v1", 400, "MANIFEST_INVALID",
         headers={"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
         body=b'{"schemaVersion": 1}'),
    Case("missing blobs", "PUT", f"/v2/{REPO}/manifests/v1", 400, "MANIFEST_BLOB_UNKNOWN",
         headers={"Content-Type": OCI_MANIFEST},
         body=canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                         "config": {"mediaType": "a/b", "digest": MISSING, "size": 1}})),
    Case("oversized manifest", "PUT", f"/v2/{REPO}/manifests/v1", 413, "SIZE_INVALID",
         headers={"Content-Type": OCI_MANIFEST}, body=b" " * (4 * 1024 * 1024 + 1)),
    Case("invalid tag", "PUT", f"/v2/{REPO}/manifests/-tag", 400, "TAG_INVALID",
         headers={"Content-Type": OCI_MANIFEST}, body=b"{}"),
    Case("unknown manifest", "GET", f"/v2/{REPO}/manifests/{MISSING}", 404, "MANIFEST_UNKNOWN"),
    # names
    Case("upper case name", "GET", "/v2/Bad/Name/tags/list", 400, "NAME_INVALID"),
    Case("empty segment", "GET", "/v2/bad//name/tags/list", 400, "NAME_INVALID"),
    Case("dot dot segment", "GET", "/v2/bad/%2E%2E/name/manifests/v1", 400, "NAME_INVALID"),
    Case("leading separator", "GET", "/v2/-bad/tags/list", 400, "NAME_INVALID"),
    Case("too long name", "GET", f"/v2/{'a' * 256}/tags/list", 400, "NAME_INVALID"),
    # uploads
    Case("unknown upload", "GET", f"/v2/{REPO}/blobs/uploads/{uuid.uuid4().hex}", 404, "BLOB_UPLOAD_UNKNOWN"),
    Case("nonsense upload id", "PATCH", f"/v2/{REPO}/blobs/uploads/..%2E", 404, "BLOB_UPLOAD_UNKNOWN",
         body=b"x"),
    Case("escaping upload id", "PATCH", f"/v2/{REPO}/blobs/uploads/..%2F..%2Fetc", 404, "NOT_FOUND",
         body=b"x"),
    Case("put without digest", "PUT", f"/v2/{REPO}/blobs/uploads/{uuid.uuid4().hex}", 400, "DIGEST_INVALID"),
    # pagination, routes, methods
    Case("bad page size", "GET", f"/v2/{REPO}/tags/list", 400, "PAGINATION_NUMBER_INVALID",
         params={"n": "ten"}),
    Case("unknown route", "GET", f"/v2/{REPO}/whatever", 404, "NOT_FOUND"),
    Case("wrong method", "PATCH", f"/v2/{REPO}/manifests/v1", 405, "UNSUPPORTED", body=b"x"),
]


@pytest.fixture(scope="module")
def reg(dockyard: Dockyard) -> RegistryClient:
    client = RegistryClient(dockyard)
    client.push_blob(REPO, BLOB)
    return client


def _check(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    if code:
        assert r.json()["errors"][0]["code"] == code


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_a_malformed_request_gets_its_4xx_and_oci_code(reg: RegistryClient, case: Case) -> None:
    r = reg.request(case.method, case.path, headers=case.headers, data=case.body, params=case.params)
    _check(r, case.status, case.code)


def _upload(reg: RegistryClient, data: bytes) -> str:
    r = reg.post(f"/v2/{REPO}/blobs/uploads/")
    location = r.headers["Location"]
    r = reg.patch(location, data=data, headers={"Content-Range": f"0-{len(data) - 1}"})
    assert r.status_code == 202
    return location


@pytest.mark.parametrize("case", [
    ("not a range", {"Content-Range": "abc"}, 416, "RANGE_INVALID"),
    ("backwards", {"Content-Range": "20-10"}, 416, "RANGE_INVALID"),
    ("length mismatch", {"Content-Range": "10-19", "Content-Length": "3"}, 400, "SIZE_INVALID"),
])
def test_a_bad_chunk_is_refused_and_the_upload_keeps_its_offset(
    reg: RegistryClient, case: tuple[str, dict[str, str], int, str]
) -> None:
    _, headers, status, code = case
    location = _upload(reg, b"0123456789")
    _check(reg.patch(location, data=b"abc", headers=headers), status, code)
    assert reg.get(location).headers["Range"] == "0-9"


def _read_answer(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while data := sock.recv(65536):
            chunks.append(data)
    except OSError:
        pass
    sock.close()
    return b"".join(chunks)


def test_a_truncated_chunk_is_not_kept(reg: RegistryClient) -> None:
    location = _upload(reg, b"0123456789")
    sock = reg.raw(
        f"PATCH {location} HTTP/1.1\r\nContent-Length: 100\r\nContent-Range: 10-109\r\nConnection: close",
        b"only forty bytes of the hundred promised", REPO,
    )
    sock.shutdown(socket.SHUT_WR)
    answer = _read_answer(sock)
    assert not answer.startswith(b"HTTP/1.1 5")
    assert reg.get(location).headers["Range"] == "0-9"
    data = b"0123456789" + b"rest of it"
    assert reg.patch(location, data=data[10:], headers={"Content-Range": "10-19"}).status_code == 202
    assert reg.put(location, params={"digest": sha256(data)}).status_code == 201
    assert reg.get(f"/v2/{REPO}/blobs/{sha256(data)}").content == data


def test_a_client_that_disconnects_mid_upload_leaves_nothing_half_stored(reg: RegistryClient) -> None:
    data = uuid.uuid4().bytes * 200_000
    digest = sha256(data)
    sock = reg.raw(
        f"POST /v2/{REPO}/blobs/uploads/?digest={digest} HTTP/1.1\r\nContent-Length: {len(data)}",
        data[: len(data) // 2], REPO,
    )
    sock.close()
    location = _upload(reg, data[:1000])
    head = f"PATCH {location} HTTP/1.1\r\nContent-Length: {len(data) - 1000}"
    sock = reg.raw(head, data[1000:50_000], REPO)
    sock.close()
    for _ in range(100):  # the server notices the disconnects
        if reg.get(location).headers.get("Range") == "0-999":
            break
        time.sleep(0.05)
    assert reg.get(location).headers["Range"] == "0-999"
    assert reg.head(f"/v2/{REPO}/blobs/{digest}").status_code == 404


def test_requests_without_or_with_bad_tokens_are_refused(dockyard: Dockyard, reg: RegistryClient) -> None:
    anonymous = RegistryClient(dockyard, anonymous=True)
    _check(anonymous.get(f"/v2/{REPO}/blobs/{DIGEST}", headers={"Authorization": ""}), 401, "UNAUTHORIZED")
    _check(reg.get(f"/v2/{REPO}/blobs/{DIGEST}", headers={"Authorization": "Bearer not.a.jwt"}), 401,
           "UNAUTHORIZED")


def _expired_token(server: Dockyard, repository: str) -> str:
    """A token signed by the server's own key for every action on ``repository``, that
    expired an hour ago."""
    key = serialization.load_pem_private_key((server.data_dir / KEY_FILE).read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    scope = parse_scope(f"repository:{repository}:pull,push,delete")
    assert scope is not None
    old = TokenService(key, clock=lambda: time.time() - 3600)
    return old.issue(ADMIN_USER, [scope])["token"]


def _bad_tokens(server: Dockyard, reg: RegistryClient) -> list[tuple[str, str, str]]:
    """``(what, token, OCI code)``: an expired token for REPO, a valid one for another repository."""
    return [
        ("expired", _expired_token(server, REPO), "UNAUTHORIZED"),
        ("another repository", reg.token(f"{REPO}-elsewhere"), "DENIED"),
    ]


def _upload_dirs(server: Dockyard) -> set[str]:
    root = server.data_dir / "registry" / "uploads"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def test_an_expired_or_wrongly_scoped_token_is_refused_401_and_nothing_is_stored(
    dockyard: Dockyard, reg: RegistryClient
) -> None:
    started = _upload(reg, b"0123456789")
    for what, token, code in _bad_tokens(dockyard, reg):
        auth = {"Authorization": f"Bearer {token}"}
        blob = f"{what}: a blob that must not be stored".encode()
        manifest = canonical({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [],
                              "config": {"mediaType": OCI_CONFIG, "digest": DIGEST, "size": len(BLOB)}})
        uploads_before = _upload_dirs(dockyard)
        attempts = [
            reg.post(f"/v2/{REPO}/blobs/uploads/", headers=auth, params={"digest": sha256(blob)}, data=blob),
            reg.post(f"/v2/{REPO}/blobs/uploads/", headers=auth),
            reg.patch(started, headers={**auth, "Content-Range": "10-14"}, data=b"extra"),
            reg.put(started, headers=auth, params={"digest": sha256(b"0123456789")}),
            reg.put(f"/v2/{REPO}/manifests/{what.replace(' ', '-')}", data=manifest,
                    headers={**auth, "Content-Type": OCI_MANIFEST}),
            reg.delete(f"/v2/{REPO}/blobs/{DIGEST}", headers=auth),
            reg.get(f"/v2/{REPO}/blobs/{DIGEST}", headers=auth),
        ]
        for r in attempts:
            assert r.status_code == 401, (what, r.request.method, r.request.url, r.text)
            assert r.json()["errors"][0]["code"] == code, (what, r.text)
            challenge = r.headers["WWW-Authenticate"]
            assert challenge.startswith("Bearer ") and f'scope="repository:{REPO}:' in challenge
            assert ('error="insufficient_scope"' in challenge) == (code == "DENIED")
        assert _upload_dirs(dockyard) == uploads_before, what
        assert reg.head(f"/v2/{REPO}/blobs/{sha256(blob)}").status_code == 404
        assert reg.get(f"/v2/{REPO}/manifests/{what.replace(' ', '-')}").status_code == 404
        assert reg.get(f"/v2/{REPO}/blobs/{DIGEST}").content == BLOB
        assert reg.get(started).headers["Range"] == "0-9"


# -- SIGKILL during 10 concurrent uploads ------------------------------------------------------
CHUNK = 1024 * 1024


def _content(i: int) -> bytes:
    return hashlib.sha256(str(i).encode()).digest() * (3 * CHUNK // 32)


def _blob_files(server: Dockyard) -> Iterator[Path]:
    root = server.data_dir / "registry" / "blobs"
    return (p for p in root.rglob("*") if p.is_file())


def test_a_registry_killed_during_ten_uploads_restarts_with_nothing_corrupt(fresh_dockyard: Dockyard) -> None:
    server = fresh_dockyard.start()
    reg = RegistryClient(server)
    name = "crash/uploads"
    locations = []
    for i in range(10):  # each has one acknowledged chunk
        r = reg.post(f"/v2/{name}/blobs/uploads/")
        location = r.headers["Location"]
        data = _content(i)
        r = reg.patch(location, data=data[:CHUNK], headers={"Content-Range": f"0-{CHUNK - 1}"})
        assert r.status_code == 202
        locations.append(location)
    socks = []
    for i, location in enumerate(locations):  # a second chunk in flight, never finished
        data = _content(i)
        head = f"PATCH {location} HTTP/1.1\r\nContent-Length: {2 * CHUNK}\r\n"
        head += f"Content-Range: {CHUNK}-{3 * CHUNK - 1}"
        socks.append(reg.raw(head, data[CHUNK : CHUNK + CHUNK + CHUNK // 2], name))
    for i in range(3):  # and monolithic pushes in flight
        data = _content(100 + i)
        head = f"POST /v2/{name}/blobs/uploads/?digest={sha256(data)} HTTP/1.1\r\nContent-Length: {len(data)}"
        socks.append(reg.raw(head, data[: len(data) - 100], name))
    uploads = server.data_dir / "registry" / "uploads"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # until the server has written past the acknowledged chunk
        sizes = [(uploads / loc.rsplit("/", 1)[1] / "data").stat().st_size for loc in locations]
        if all(s > CHUNK for s in sizes):
            break
        time.sleep(0.05)
    server.kill()
    for s in socks:
        s.close()
    server.start()
    reg = RegistryClient(server)
    for path in _blob_files(server):
        algorithm = path.parent.parent.name
        assert hashlib.new(algorithm, path.read_bytes()).hexdigest() == path.name
    for i in range(3):
        assert reg.head(f"/v2/{name}/blobs/{sha256(_content(100 + i))}").status_code == 404
    resumed = 0
    for i, location in enumerate(locations):
        data = _content(i)
        status = reg.get(location)
        if status.status_code == 404:
            continue  # cleanly gone is allowed
        resumed += 1
        assert (status.status_code, status.headers["Range"]) == (204, f"0-{CHUNK - 1}")
        r = reg.patch(location, data=data[CHUNK:], headers={"Content-Range": f"{CHUNK}-{len(data) - 1}"})
        assert r.status_code == 202, r.text
        assert reg.put(location, params={"digest": sha256(data)}).status_code == 201
        assert reg.get(f"/v2/{name}/blobs/{sha256(data)}").content == data
    assert resumed == 10  # Dockyard keeps every acknowledged upload


WEIRD_PATHS = [
    "/v2", "/v2/_catalog/x", f"/v2/{REPO}/blobs/", f"/v2/{REPO}/blobs/uploads/x/y", f"/v2/{REPO}/manifests/",
    f"/v2/{REPO}/manifests/{'a' * 300}", f"/v2/{REPO}/tags/list/more", f"/v2/{REPO}/referrers/",
    "/v2/%00/tags/list", "/v2/a%2Fb/tags/list", f"/v2/{REPO}/blobs/sha256:{'0' * 64}%00",
    f"/v2/{REPO}/manifests/v1?digest=sha256:x", f"/v2/{REPO}/blobs/uploads/?mount=&from=",
    f"/v2/{REPO}/blobs/uploads/?digest=", f"/v2/{REPO}/tags/list?n=&last=",
    f"/v2/{REPO}/manifests/v1%0D%0AX-Injected:%201", "/v2/a%0D%0Ab/tags/list",
    f"/v2/{REPO}/blobs/uploads/{'0' * 31}%0A",
]


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE"])
def test_odd_paths_never_get_a_5xx_and_errors_are_oci_json(reg: RegistryClient, method: str) -> None:
    for path in WEIRD_PATHS:
        r = reg.request(method, path, data=b"{}")
        assert r.status_code < 500, (method, path, r.status_code, r.text)
        if r.status_code >= 400 and method != "HEAD":
            assert r.json()["errors"][0]["code"], (method, path)
