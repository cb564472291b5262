"""One known-good mesh for the pure mesh tests: a canary route ``web.shop.local:8080`` split
90/10 over ``web-v1`` and ``web-v2`` (with timeout and retries), a plain route
``db.shop.local:8081`` to ``db``; node ``task-a`` calls both, ``task-b`` only the db."""

from __future__ import annotations

from mesh.model import Client, Endpoint, MeshConfig, Retry, Route, Service, Target


def sample_config(v1: int = 90, v2: int = 10) -> MeshConfig:
    return MeshConfig(
        services=(Service("web-v1"), Service("web-v2"), Service("db", connect_timeout=0.25)),
        routes=(Route("web.shop.local", 8080, (Target("web-v1", v1), Target("web-v2", v2)),
                      timeout=2.5, retry=Retry(3, per_try_timeout=0.5)),
                Route("db.shop.local", 8081, (Target("db", 1),))),
        clients=(Client("task-a", ("web.shop.local", "db.shop.local")), Client("task-b", ("db.shop.local",))))


def sample_endpoints() -> dict[str, list[Endpoint]]:
    return {
        "web-v1": [Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80),
                   Endpoint("10.0.0.3", 80, healthy=False)],
        "web-v2": [Endpoint("10.0.1.1", 80)],
        "db": [Endpoint("10.0.2.1", 5432)],
    }
