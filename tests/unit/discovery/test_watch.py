"""The in-process watch API over a real store (no network): what the mesh and runner use."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from discovery.health import change_health
from discovery.watch import Watch, healthy_endpoints
from tests.unit.discovery.live import Live, live

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


async def setup(tmp_path: Path) -> tuple[Live, Watch, str]:
    api = live(tmp_path)
    await api.call("CreatePrivateDnsNamespace", {"Name": "w.internal", "Vpc": "v"})
    ns_id = next(iter(api.catalog.index.namespaces))
    srv = await api.call("CreateService", {
        "Name": "web",
        "NamespaceId": ns_id,
        "HealthCheckCustomConfig": {},
        "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}]},
    })
    return api, Watch(api.store, api.catalog), srv["Service"]["Id"]


async def timed(watch: Watch, since: int, action) -> tuple[float, int, list]:
    waiter = asyncio.create_task(watch.wait(since, timeout=5))
    await asyncio.sleep(0.01)
    start = time.perf_counter()
    await action()
    revision, events = await waiter
    return time.perf_counter() - start, revision, events


async def test_every_kind_of_change_wakes_a_waiting_watcher_within_100ms(tmp_path: Path):
    api, watch, srv_id = await setup(tmp_path)
    since = watch.revision
    attrs = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}
    service = api.catalog.index.services[srv_id]
    actions = {
        "register": lambda: api.call(
            "RegisterInstance", {"ServiceId": srv_id, "InstanceId": "a", "Attributes": attrs}
        ),
        "attributes": lambda: api.call(
            "RegisterInstance", {"ServiceId": srv_id, "InstanceId": "a", "Attributes": {**attrs, "v": "2"}}
        ),
        "health": lambda: change_health(api.data, api.catalog, service, "a", "UNHEALTHY", "test"),
        "deregister": lambda: api.call("DeregisterInstance", {"ServiceId": srv_id, "InstanceId": "a"}),
    }
    kinds = []
    for name, action in actions.items():
        took, since, events = await timed(watch, since, action)
        assert took < 0.1, (name, took)
        kinds.append([(e.type, e.instance_id) for e in events])
    assert kinds == [[("INSTANCE", "a")], [("INSTANCE", "a")], [("HEALTH", "a")], [("INSTANCE", "a")]]
    api.store.close()


async def test_healthy_endpoints_follow_health_and_a_quiet_watch_times_out(tmp_path: Path):
    api, watch, srv_id = await setup(tmp_path)
    for n in (1, 2):
        await api.call("RegisterInstance", {
            "ServiceId": srv_id,
            "InstanceId": f"i{n}",
            "Attributes": {"AWS_INSTANCE_IPV4": f"10.0.0.{n}", "AWS_INSTANCE_PORT": "8080"},
        })
    service = api.catalog.index.services[srv_id]
    await change_health(api.data, api.catalog, service, "i1", "UNHEALTHY", "test")
    endpoints = healthy_endpoints(watch.index, "w.internal", "web")
    assert [(e.instance_id, e.ipv4, e.port) for e in endpoints] == [("i2", "10.0.0.2", 8080)]
    assert healthy_endpoints(watch.index, "w.internal", "nope") == []
    revision, events = await watch.wait(watch.revision, timeout=0.05)
    assert events == [] and revision == watch.revision
    api.store.close()
