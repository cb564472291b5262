"""Password checks at the token endpoint cannot be used as a lever (registry.auth.Auth): bounded
hash work, failures limited per user and per address with Retry-After, the same work for known
and unknown users, and no password in the log."""

from __future__ import annotations

import asyncio
import base64
import logging
import threading
import time

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.store import Store
from registry import auth, users
from registry.auth import Auth, BadCredentials, TokenService, TooManyAttempts
from registry.throttle import ADDRESS_BURST, USER_BURST, FailureLimiter


class HashMeter:
    """Wraps users.verify_password: counts the checks and the most run at once."""

    def __init__(self, real):
        self.real, self.calls, self.running, self.peak = real, 0, 0, 0
        self._lock = threading.Lock()

    def __call__(self, password, encoded):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return self.real(password, encoded)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
async def store(tmp_path):
    s = Store.open(tmp_path / "state.db", users.MIGRATIONS)
    await users.create_user(s, "alice", "alice-real-pw", grants={"*": ["pull"]})
    await users.create_user(s, "victim", "victim-real-pw")
    yield s
    s.close()


@pytest.fixture
def meter(monkeypatch):
    m = HashMeter(users.verify_password)
    monkeypatch.setattr(users, "verify_password", m)
    return m


@pytest.fixture
def guard(store):
    # the default burst sizes, refilling too slowly to matter while a test runs
    limiter = FailureLimiter(address=(ADDRESS_BURST, 3600.0), user=(USER_BURST, 3600.0))
    return Auth(store, TokenService(ec.generate_private_key(ec.SECP256R1())), limiter)


async def test_32_concurrent_bad_logins_leave_a_real_login_fast_and_hash_little(guard, meter):
    started = time.perf_counter()
    await asyncio.to_thread(users.verify_password, "x", auth._dummy_hash())
    one_check = time.perf_counter() - started
    async def bad(i):
        return await guard.authenticate("victim", f"guess-{i}", "192.0.2.66")

    attack = [asyncio.create_task(bad(i)) for i in range(32)]
    await asyncio.sleep(0)  # every bad login has arrived
    started = time.perf_counter()
    user = await guard.authenticate("alice", "alice-real-pw", "10.0.0.1")
    real = time.perf_counter() - started
    results = await asyncio.gather(*attack, return_exceptions=True)
    limited = [r for r in results if isinstance(r, TooManyAttempts)]
    wrong = [r for r in results if isinstance(r, BadCredentials)]
    print(f"one scrypt check alone {one_check:.3f} s; real login under attack {real:.3f} s;"
          f" {len(wrong)} bad logins checked, {len(limited)} refused unhashed;"
          f" {meter.calls - 1} scrypt checks, at most {meter.peak} at once")
    assert user.name == "alice"
    # the user's burst is checked, the rest refused before hashing
    assert len(wrong) == USER_BURST == 10 and len(limited) == 22
    assert all(r.retry_after >= 1 for r in limited)
    assert meter.calls == 1 + 11 and meter.peak <= auth.HASH_WORKERS


async def test_an_unknown_user_costs_one_scrypt_check_like_a_known_one(guard, meter):
    with pytest.raises(BadCredentials):
        await guard.authenticate("victim", "wrong", "10.0.0.1")
    with pytest.raises(BadCredentials):
        await guard.authenticate("nobody", "wrong", "10.0.0.1")
    assert meter.calls == 2
    dummy = auth._dummy_hash().split("$")[2]
    assert dummy == users.get_user(guard.store, "victim").password_hash.split("$")[2]  # same cost


async def test_many_users_from_one_address_hit_the_address_limit(guard, meter):
    outcomes = []
    for i in range(25):
        try:
            await guard.authenticate(f"spray{i}", "pw", "192.0.2.9")
        except (BadCredentials, TooManyAttempts) as e:
            outcomes.append(type(e))
    assert outcomes.count(BadCredentials) == ADDRESS_BURST == 20 and outcomes.count(TooManyAttempts) == 5
    assert (await guard.authenticate("alice", "alice-real-pw", "10.0.0.1")).name == "alice"


async def test_the_token_endpoint_answers_429_with_retry_after_and_logs_no_password(guard, caplog):
    app = web.Application()
    app.router.add_get("/token", guard.token)
    client = TestClient(TestServer(app))
    await client.start_server()
    caplog.set_level(logging.INFO, logger="registry.auth")
    try:
        statuses = []
        for i in range(12):
            basic = base64.b64encode(f"victim:Sup3r-Secret-{i}".encode()).decode()
            resp = await client.get("/token", headers={"Authorization": f"Basic {basic}"})
            statuses.append(resp.status)
            last = resp, await resp.json()
    finally:
        await client.close()
    assert statuses == [401] * 10 + [429] * 2
    resp, body = last
    assert int(resp.headers["Retry-After"]) >= 1
    assert body["errors"][0]["code"] == "TOOMANYREQUESTS"
    refused = [r for r in caplog.records if r.getMessage() == "registry login refused"]
    # each checked failure, and the first refusal before any check (not every one: no lever on the log)
    assert [r.reason for r in refused] == ["wrong password"] * 10 + ["rate limited"]
    assert all(r.user == "victim" and r.levelno == logging.INFO and r.client for r in refused)
    assert "Sup3r-Secret" not in caplog.text
    assert not any("Sup3r-Secret" in str(r.__dict__) for r in caplog.records)


async def test_basic_credentials_on_v2_are_challenged_without_any_hashing(guard, meter):
    """docker login sends no password to /v2/ (it follows the Bearer challenge to /token, which
    the limits above cover); Basic credentials sent there anyway cost no scrypt check."""

    async def base(request):
        return web.json_response({})

    app = web.Application(middlewares=[guard.middleware])
    app.router.add_get("/v2/", base)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        for i in range(32):
            basic = base64.b64encode(f"victim:guess-{i}".encode()).decode()
            resp = await client.get("/v2/", headers={"Authorization": f"Basic {basic}"})
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer ")
    finally:
        await client.close()
    assert meter.calls == 0
