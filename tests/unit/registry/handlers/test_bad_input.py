"""Inputs that once made the registry answer 500: each must get its 4xx (issue 10)."""

from __future__ import annotations

import base64
import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.store import Store
from registry.auth import Auth, TokenService
from tests.unit.registry.handlers.conftest import error_codes


async def test_a_page_size_of_non_ascii_digits_is_invalid_not_a_crash(client: TestClient) -> None:
    for path in ("/v2/_catalog", "/v2/r/tags/list"):
        for n in ("²", "١٢", "\uff13"):  # superscript two, Arabic-Indic, fullwidth three
            r = await client.get(path, params={"n": n})
            assert r.status == 400, (path, n, r.status)
            assert await error_codes(r) == ["PAGINATION_NUMBER_INVALID"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _auth_client(store: Store) -> tuple[TestClient, Auth]:
    from registry.errors import error_middleware

    auth = Auth(store, TokenService(ec.generate_private_key(ec.SECP256R1())))
    app = web.Application(middlewares=[error_middleware, auth.middleware])
    app.router.add_get("/token", auth.token)
    app.router.add_post("/token", auth.token)
    async def base(request: web.Request) -> web.Response:
        return web.json_response({})

    app.router.add_get("/v2/", base)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, auth


async def test_a_token_whose_header_nests_deep_is_unauthorized(store: Store) -> None:
    client, _ = await _auth_client(store)
    try:
        header = _b64(("[" * 3000 + "]" * 3000).encode())
        claims = _b64(json.dumps({"sub": "x"}).encode())
        token = f"{header}.{claims}.{_b64(b'0' * 64)}"
        r = await client.get("/v2/", headers={"Authorization": f"Bearer {token}"})
        assert r.status == 401 and await error_codes(r) == ["UNAUTHORIZED"]
        deep_claims = f"{_b64(json.dumps({'alg': 'ES256'}).encode())}.{header}.{_b64(b'0' * 64)}"
        r = await client.get("/v2/", headers={"Authorization": f"Bearer {deep_claims}"})
        assert r.status == 401 and await error_codes(r) == ["UNAUTHORIZED"]
    finally:
        await client.close()


async def test_unreadable_token_forms_get_400(store: Store) -> None:
    client, _ = await _auth_client(store)
    form = "grant_type=password&username=a&password=b&service=dockyard"
    bodies = [
        ("multipart/form-data", b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--x--\r\n"),
        ("multipart/form-data; boundary=zz", b"not multipart at all"),
        ("application/x-www-form-urlencoded; charset=utf-16", form.encode("utf-16")),
        ("application/x-www-form-urlencoded; charset=no-such-charset", form.encode()),
    ]
    try:
        for content_type, body in bodies:
            r = await client.post("/token", data=body, headers={"Content-Type": content_type})
            assert r.status == 400, (content_type, r.status, await r.text())
        r = await client.post("/token", data=form.encode(),
                              headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        assert r.status == 401  # readable, wrong password: the usual answer
    finally:
        await client.close()
