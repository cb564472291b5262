"""/healthz and /metrics (dockyard.probes) on the main process's control app and a control
worker's: open to probes, no pid or revision without credentials, /metrics behind a key when
configured."""

from __future__ import annotations

import base64
import json
import os

import pytest
from aiohttp.test_utils import TestClient, TestServer

from dockyard import keys
from dockyard.config import Config
from dockyard.control._http1 import Request
from dockyard.control.workers import ControlApp
from dockyard.platform import Platform
from dockyard.store import Store

METRICS_KEY = "prom-" + "k" * 30


def basic(key: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


@pytest.fixture
async def platform(tmp_path, request):
    store = Store.open(tmp_path / "state.db", keys.MIGRATIONS)
    metrics_key = getattr(request, "param", "")
    yield Platform(Config(data_dir=str(tmp_path), metrics_key=metrics_key), store)
    store.close()


@pytest.fixture
async def client(platform):
    c = TestClient(TestServer(platform.control))
    await c.start_server()
    yield c
    await c.close()


async def test_healthz_tells_anyone_only_that_it_is_up(client):
    resp = await client.get("/healthz")
    assert resp.status == 200 and await resp.json() == {"status": "ok"}


async def test_healthz_with_an_access_key_adds_role_pid_and_revision(platform, client):
    key = await keys.create(platform.store, "ops")
    resp = await client.get("/healthz", headers=basic(key.access_key_id, key.secret))
    body = await resp.json()
    assert resp.status == 200
    assert body == {"status": "ok", "role": "main", "pid": os.getpid(), "revision": platform.store.revision}
    wrong = await client.get("/healthz", headers=basic(key.access_key_id, "not-the-secret"))
    assert wrong.status == 403 and "pid" not in await wrong.text()


async def test_metrics_are_open_when_no_key_is_configured(client):
    resp = await client.get("/metrics")
    assert resp.status == 200 and resp.content_type == "text/plain"
    assert "python_info" in await resp.text()


@pytest.mark.parametrize("platform", [METRICS_KEY], indirect=True)
async def test_metrics_need_the_configured_key_which_also_shows_healthz_detail(client):
    refused = await client.get("/metrics")
    assert refused.status == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "python_info" not in await refused.text()
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    ok = await client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_KEY}"})
    assert ok.status == 200 and "python_info" in await ok.text()
    health = await client.get("/healthz", headers={"Authorization": f"Bearer {METRICS_KEY}"})
    assert (await health.json())["pid"] == os.getpid()


class Recorded:
    """A worker connection that keeps what it was asked to answer."""

    sent = 0  # bytes written (the access log reads it)

    def respond(self, status, body, content_type, headers=()):
        self.status, self.body, self.content_type, self.headers = status, body, content_type, dict(headers)


def worker_request(path: str, headers: dict[str, str] | None = None) -> Request:
    lower = {k.lower(): v for k, v in (headers or {}).items()}
    return Request("GET", path, list(lower.items()), lower, b"", "1.1", True)


@pytest.mark.parametrize("platform", [METRICS_KEY], indirect=True)
async def test_a_control_worker_answers_the_same(platform):
    platform.role = "worker"
    app = ControlApp(platform, forward=None)  # type: ignore[arg-type]
    key = await keys.create(platform.store, "ops")
    answers = {}
    for name, path, headers in (
        ("health", "/healthz", None),
        ("health_key", "/healthz", basic(key.access_key_id, key.secret)),
        ("metrics", "/metrics", None),
        ("metrics_key", "/metrics", {"Authorization": f"Bearer {METRICS_KEY}"}),
    ):
        conn = Recorded()
        await app(worker_request(path, headers), conn)  # type: ignore[arg-type]
        answers[name] = conn
    assert json.loads(answers["health"].body) == {"status": "ok"}
    assert json.loads(answers["health_key"].body)["role"] == "worker"
    assert answers["metrics"].status == 401 and "WWW-Authenticate" in answers["metrics"].headers
    assert answers["metrics_key"].status == 200 and b"python_info" in answers["metrics_key"].body
