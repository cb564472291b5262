"""Registry auth over HTTP: challenges, the token endpoint, and the checks on every request."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
import uuid

import pytest
import requests
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from registry import jwt
from tests.support.registry import OCI_MANIFEST, RegistryClient
from tests.support.registry_auth import (
    DockerLogin,
    allow_anonymous_pull,
    bearer,
    challenge,
    create_user,
    ensure_admin,
    fetch_token,
    jwt_parts,
)

KEY_FILE = "registry-token-key.pem"
FORM = "application/x-www-form-urlencoded"


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def user(dockyard):
    """A fresh user with pull,push on ``<name>/`` and pull on ``shared/``."""
    name = unique("u")
    create_user(dockyard, name, "pw-" + name, f"{name}/=pull,push", "shared/=pull")
    return name, "pw-" + name


def token_for(dockyard, user, *scopes):
    resp = fetch_token(dockyard.registry_url, *scopes, user=user[0], password=user[1])
    assert resp.status_code == 200, resp.text
    return resp.json()["token"]


def server_key(dockyard) -> ec.EllipticCurvePrivateKey:
    return serialization.load_pem_private_key((dockyard.data_dir / KEY_FILE).read_bytes(), None)


def test_the_base_without_a_token_is_challenged_without_a_scope(dockyard):
    resp = requests.get(f"{dockyard.registry_url}/v2/", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert challenge(resp) == {"realm": f"{dockyard.registry_url}/token", "service": "dockyard"}
    assert resp.headers["Docker-Distribution-API-Version"] == "registry/2.0"


def test_a_repository_request_without_a_token_is_challenged_with_its_scope(dockyard):
    resp = requests.post(f"{dockyard.registry_url}/v2/shop/web/blobs/uploads/", timeout=10)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert challenge(resp)["scope"] == "repository:shop/web:pull,push"


def test_a_token_holds_only_the_granted_actions_and_verifies_with_the_server_key(dockyard, user):
    name = user[0]
    token = token_for(
        dockyard, user, f"repository:{name}/app:pull,push,delete", "repository:shared/base:pull,push",
        "repository:other/app:pull", "registry:catalog:*",
    )
    header, claims = jwt_parts(token)
    assert header["alg"] == "ES256" and header["kid"]
    assert claims["access"] == [
        {"type": "repository", "name": f"{name}/app", "actions": ["pull", "push"]},
        {"type": "repository", "name": "shared/base", "actions": ["pull"]},
    ]
    assert claims["sub"] == name and claims["aud"] == "dockyard" and claims["iss"]
    assert claims["nbf"] <= time.time() + 5 < claims["exp"] and claims["iat"] and claims["jti"]
    # Verify the signature independently of registry.jwt, with the key kept in the data dir.
    key_path = dockyard.data_dir / KEY_FILE
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    server_key(dockyard).public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))


def test_the_token_answer_has_the_fields_docker_reads(dockyard, user):
    resp = fetch_token(dockyard.registry_url, user=user[0], password=user[1])
    body = resp.json()
    assert body["token"] == body["access_token"]
    assert body["expires_in"] >= 60
    assert body["issued_at"].endswith("Z")


def test_a_wrong_password_or_unknown_user_gets_401(dockyard, user):
    for name, password in ((user[0], "wrong"), ("nobody-" + user[0], user[1])):
        resp = fetch_token(dockyard.registry_url, "repository:x:pull", user=name, password=password)
        assert resp.status_code == 401
        assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_malformed_basic_credentials_or_scopes_get_4xx(dockyard):
    url = f"{dockyard.registry_url}/token"
    assert requests.get(url, headers={"Authorization": "Basic !!"}, timeout=10).status_code == 401
    assert requests.get(url, params={"scope": "repository:x"}, timeout=10).status_code == 400


def test_the_password_grant_form_post_issues_a_token(dockyard, user):
    resp = requests.post(
        f"{dockyard.registry_url}/token",
        data={"grant_type": "password", "username": user[0], "password": user[1], "service": "dockyard",
              "client_id": "test", "scope": f"repository:{user[0]}/a:pull"},
        timeout=10,
    )
    assert resp.status_code == 200
    assert jwt_parts(resp.json()["access_token"])[1]["access"][0]["actions"] == ["pull"]
    bad = requests.post(f"{dockyard.registry_url}/token", data={"grant_type": "password", "username": user[0],
                        "password": "wrong"}, timeout=10)
    assert bad.status_code == 401
    other = requests.post(f"{dockyard.registry_url}/token", data={"grant_type": "refresh_token"}, timeout=10)
    assert other.status_code == 400


def test_a_token_lets_the_base_through(dockyard, user):
    resp = requests.get(f"{dockyard.registry_url}/v2/", headers=bearer(token_for(dockyard, user)), timeout=10)
    assert resp.status_code == 200


def test_a_token_without_the_needed_action_is_denied_with_the_scope_to_ask_for(dockyard, user):
    name = user[0]
    token = token_for(dockyard, user, f"repository:{name}/app:pull")
    ok = requests.get(f"{dockyard.registry_url}/v2/{name}/app/tags/list", headers=bearer(token), timeout=10)
    assert ok.status_code != 401
    resp = requests.put(
        f"{dockyard.registry_url}/v2/{name}/app/manifests/v1", headers=bearer(token), data=b"{}", timeout=10
    )
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "DENIED"
    assert challenge(resp)["scope"] == f"repository:{name}/app:push"
    assert challenge(resp)["error"] == "insufficient_scope"


def test_a_push_outside_the_grant_is_denied_even_with_a_token(dockyard, user):
    token = token_for(dockyard, user, "repository:shared/base:pull,push")
    resp = requests.post(f"{dockyard.registry_url}/v2/shared/base/blobs/uploads/", headers=bearer(token),
                         timeout=10)
    assert resp.status_code == 401 and resp.json()["errors"][0]["code"] == "DENIED"


def test_the_catalog_needs_an_admin(dockyard, user):
    token = token_for(dockyard, user, "registry:catalog:*")
    resp = requests.get(f"{dockyard.registry_url}/v2/_catalog", headers=bearer(token), timeout=10)
    assert resp.status_code == 401 and challenge(resp)["scope"] == "registry:catalog:*"
    admin = ensure_admin(dockyard)
    token = token_for(dockyard, admin, "registry:catalog:*")
    resp = requests.get(f"{dockyard.registry_url}/v2/_catalog", headers=bearer(token), timeout=10)
    assert resp.status_code != 401


def test_an_expired_token_is_unauthorized(dockyard, user):
    key = server_key(dockyard)
    now = int(time.time())
    claims = {
        "iss": "dockyard", "aud": "dockyard", "sub": user[0], "exp": now - 60, "nbf": now - 400,
        "iat": now - 400, "jti": "x", "access": [{"type": "repository", "name": "a", "actions": ["pull"]}],
    }
    token = jwt.encode(claims, key, jwt.key_id(key.public_key()))
    resp = requests.get(f"{dockyard.registry_url}/v2/a/tags/list", headers=bearer(token), timeout=10)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert challenge(resp)["scope"] == "repository:a:pull"


@pytest.mark.parametrize("kind", ["other key", "tampered", "garbage", "empty"])
def test_a_badly_signed_or_malformed_token_is_unauthorized(dockyard, user, kind):
    good = token_for(dockyard, user, f"repository:{user[0]}/a:pull")
    if kind == "other key":
        stranger = ec.generate_private_key(ec.SECP256R1())
        token = jwt.encode(jwt_parts(good)[1], stranger, jwt_parts(good)[0]["kid"])
    elif kind == "tampered":
        head, _, sig = good.split(".")
        claims = {**jwt_parts(good)[1], "access": [{"type": "repository", "name": "x", "actions": ["push"]}]}
        token = f"{head}.{jwt.b64url(repr(claims).encode())}.{sig}"
    else:
        token = "not.a.token" if kind == "garbage" else ""
    url = f"{dockyard.registry_url}/v2/{user[0]}/a/tags/list"
    resp = requests.get(url, headers=bearer(token), timeout=10)
    assert resp.status_code == 401
    assert resp.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_anonymous_pull_is_allowed_only_under_allowed_prefixes(dockyard):
    prefix = unique("pub")
    allow_anonymous_pull(dockyard, f"{prefix}/")
    url = dockyard.registry_url
    # Tokenless: pulls under the prefix pass the check, anything else is challenged.
    assert requests.get(f"{url}/v2/{prefix}/app/tags/list", timeout=10).status_code != 401
    assert requests.get(f"{url}/v2/{prefix}x/app/tags/list", timeout=10).status_code == 401
    assert requests.post(f"{url}/v2/{prefix}/app/blobs/uploads/", timeout=10).status_code == 401
    assert requests.get(f"{url}/v2/", timeout=10).status_code == 401
    # An anonymous token carries pull on the prefix only.
    anon = fetch_token(url, f"repository:{prefix}/app:pull,push", f"repository:{prefix}x/app:pull").json()
    assert jwt_parts(anon["token"])[1]["access"] == [
        {"type": "repository", "name": f"{prefix}/app", "actions": ["pull"]}
    ]
    assert jwt_parts(anon["token"])[1]["sub"] == ""
    allow_anonymous_pull(dockyard, f"{prefix}/", allow=False)
    assert requests.get(f"{url}/v2/{prefix}/app/tags/list", timeout=10).status_code == 401


def test_grants_changed_with_the_cli_apply_to_the_next_token(dockyard, user):
    name = user[0]
    assert jwt_parts(token_for(dockyard, user, "repository:late/app:pull"))[1]["access"] == []
    proc = dockyard.cli("users", "grant", name, "late/", "pull,delete", "--data-dir", str(dockyard.data_dir))
    assert proc.returncode == 0, proc.stderr
    access = jwt_parts(token_for(dockyard, user, "repository:late/app:pull,push,delete"))[1]["access"]
    assert access == [{"type": "repository", "name": "late/app", "actions": ["pull", "delete"]}]
    proc = dockyard.cli("users", "delete", name, "--data-dir", str(dockyard.data_dir))
    assert proc.returncode == 0
    assert fetch_token(dockyard.registry_url, user=name, password=user[1]).status_code == 401


def test_docker_login_succeeds_with_a_dockyard_user_and_fails_with_a_wrong_password(dockyard, user):
    docker = DockerLogin()
    try:
        ok = docker.login(dockyard.registry, *user)
        assert ok.returncode == 0, ok.stderr
        assert "Login Succeeded" in ok.stdout
        assert dockyard.registry in (docker.config / "config.json").read_text()
        bad = docker.login(dockyard.registry, user[0], "wrong")
        assert bad.returncode != 0
        assert "unauthorized" in bad.stderr.lower() or "incorrect" in bad.stderr.lower()
    finally:
        docker.close()


def test_the_users_cli_lists_and_refuses_bad_input(dockyard, user):
    d = ["--data-dir", str(dockyard.data_dir)]
    listed = dockyard.cli("users", "list", "--json", *d)
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows[user[0]]["grants"] == {user[0]: ["pull", "push"], "shared": ["pull"]}
    assert "password" not in listed.stdout.lower() and "scrypt" not in listed.stdout
    for args, message in (
        (["users", "grant", user[0], "Bad..Prefix", "pull"], "invalid repository prefix"),
        (["users", "grant", user[0], "ok/", "fly"], "invalid actions"),
        (["users", "delete", "nobody-" + user[0]], "no user"),
    ):
        proc = dockyard.cli(*args, *d)
        assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    dup = dockyard.cli("users", "create", user[0], "--password-stdin", *d, input="x\n")
    assert dup.returncode == 1 and "already exists" in dup.stderr


def test_a_mount_from_a_repository_the_user_cannot_pull_becomes_a_plain_upload(dockyard, user):
    name = user[0]
    admin = RegistryClient(dockyard)
    blob = uuid.uuid4().bytes * 100
    digest = admin.push_blob(f"secret{name}/src", blob)
    admin.push_blob("shared/src", blob)
    client = RegistryClient(dockyard, credentials=user)
    uploads = f"/v2/{name}/dst/blobs/uploads/"
    refused = client.post(uploads, params={"mount": digest, "from": f"secret{name}/src"})
    assert refused.status_code == 202, refused.text
    assert client.head(f"/v2/{name}/dst/blobs/{digest}").status_code == 404
    mounted = client.post(f"/v2/{name}/dst/blobs/uploads/", params={"mount": digest, "from": "shared/src"})
    assert mounted.status_code == 201, mounted.text
    assert client.get(f"/v2/{name}/dst/blobs/{digest}").content == blob


def test_an_anonymous_client_pulls_content_under_an_anonymous_prefix_and_cannot_push(dockyard):
    prefix = unique("anon")
    allow_anonymous_pull(dockyard, prefix)
    digest, manifest = RegistryClient(dockyard).push_image(f"{prefix}/app", "v1", [uuid.uuid4().bytes])
    anonymous = RegistryClient(dockyard, anonymous=True)
    got = anonymous.get(f"/v2/{prefix}/app/manifests/v1", headers={"Accept": OCI_MANIFEST})
    assert got.status_code == 200 and got.content == manifest
    assert got.headers["Docker-Content-Digest"] == digest
    tokenless = requests.get(f"{dockyard.registry_url}/v2/{prefix}/app/manifests/{digest}", timeout=10)
    assert tokenless.status_code == 200 and tokenless.content == manifest
    pushed = anonymous.post(f"/v2/{prefix}/app/blobs/uploads/")
    assert pushed.status_code == 401 and pushed.json()["errors"][0]["code"] == "DENIED"
    deleted = anonymous.delete(f"/v2/{prefix}/app/manifests/{digest}")
    assert deleted.status_code == 401


def test_the_token_endpoint_refuses_too_many_scopes(dockyard):
    scopes = [f"repository:r{i}:pull" for i in range(65)]
    assert fetch_token(dockyard.registry_url, *scopes).status_code == 400


def raw_request(dockyard, request: bytes) -> bytes:
    """Send bytes as they are and return the whole answer (the server closes after it)."""
    import socket

    with socket.create_connection(("127.0.0.1", dockyard.ports["registry"]), timeout=10) as s:
        s.sendall(request)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    ("method", "kwargs", "status"),
    [
        ("GET", {"headers": {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xff").decode()}}, 401),
        ("GET", {"headers": {"Authorization": "Basic " + base64.b64encode(b"x" * 60000).decode()}}, None),
        ("GET", {"headers": {"Authorization": "Bearer abc"}}, 401),
        ("GET", {"headers": {"Authorization": "Digest x"}}, 401),
        ("GET", {"auth": ("a" * 5000, "pw")}, 401),
        ("GET", {"params": {"scope": "repository:" + "a" * 3000 + ":pull"}}, 200),
        ("GET", {"params": {"scope": "repository:Bad..Name/%00:pull,fly"}}, 200),
        ("POST", {"data": b"{not a form", "headers": {"Content-Type": "application/json"}}, 400),
        ("POST", {"data": {"grant_type": "password"}}, 401),
        ("POST", {"data": {"grant_type": "client_credentials"}}, 400),
        ("POST", {"data": b"x" * (5 << 20), "headers": {"Content-Type": FORM}}, None),
    ],
)
def test_malformed_token_requests_get_a_4xx_and_never_a_5xx(dockyard, method, kwargs, status):
    """``status`` None: any 4xx (oversized headers and bodies are refused before the handler)."""
    resp = requests.request(method, f"{dockyard.registry_url}/token", timeout=30, **kwargs)
    if status is None:
        assert 400 <= resp.status_code < 500, resp.text[:300]
    else:
        assert resp.status_code == status, resp.text[:300]
    if status == 200:
        assert jwt_parts(resp.json()["token"])[1]["access"] == []


def test_an_unsafe_host_header_never_reaches_the_challenge(dockyard):
    request = b'GET /v2/ HTTP/1.1\r\nHost: evil"x, realm="http://evil\r\nConnection: close\r\n\r\n'
    answer = raw_request(dockyard, request)
    head = answer.split(b"\r\n\r\n")[0].decode()
    assert head.startswith("HTTP/1.1 401") or head.startswith("HTTP/1.1 400")
    assert "evil" not in head


def test_token_outcomes_and_refusals_are_counted_in_the_metrics(dockyard, user):
    def metric(line_start: str) -> float:
        text = requests.get(f"{dockyard.control_url}/metrics", timeout=10).text
        found = [ln for ln in text.splitlines() if ln.startswith(line_start)]
        return float(found[0].split()[-1]) if found else 0.0

    bad = 'dockyard_registry_token_requests_total{outcome="bad_credentials"}'
    refused = 'dockyard_registry_auth_refused_total{code="UNAUTHORIZED"}'
    before = metric(bad), metric(refused)
    assert fetch_token(dockyard.registry_url, user=user[0], password="wrong").status_code == 401
    assert requests.get(f"{dockyard.registry_url}/v2/", timeout=10).status_code == 401
    assert (metric(bad), metric(refused)) == (before[0] + 1, before[1] + 1)
