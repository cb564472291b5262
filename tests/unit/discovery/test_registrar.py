"""The Registrar seam (``Discovery.instances``) over a real store: what the runner calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from discovery.errors import InvalidInput, ServiceNotFound
from tests.unit.discovery.live import dns_service, live

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

ATTRS = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}


async def test_a_registered_instance_is_discoverable_at_once_and_gone_after_deregister(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    await api.registrar.register(srv_id, "task-1", ATTRS)
    found = await api.call("DiscoverInstances", {"NamespaceName": "t.internal", "ServiceName": "web"})
    assert [(i["InstanceId"], i["Attributes"]) for i in found["Instances"]] == [("task-1", ATTRS)]
    ops = await api.call("ListOperations", {"Filters": [{"Name": "TYPE", "Values": ["REGISTER_INSTANCE"]}]})
    assert len(ops["Operations"]) == 1
    await api.registrar.deregister(srv_id, "task-1")
    found = await api.call("DiscoverInstances", {"NamespaceName": "t.internal", "ServiceName": "web"})
    assert found["Instances"] == []
    api.store.close()


async def test_registering_again_replaces_the_attributes_and_accepts_the_service_arn(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    arn = api.catalog.index.services[srv_id].arn
    await api.registrar.register(srv_id, "task-1", ATTRS)
    await api.registrar.register(arn, "task-1", {**ATTRS, "AWS_INSTANCE_IPV4": "10.0.0.2"})
    [inst] = api.catalog.index.instances_of(srv_id)
    assert inst.attributes["AWS_INSTANCE_IPV4"] == "10.0.0.2"
    api.store.close()


async def test_deregistering_an_unknown_instance_or_service_is_no_error_and_writes_nothing(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    revision = api.store.current_revision()
    await api.registrar.deregister(srv_id, "never-registered")
    await api.registrar.deregister("srv-doesnotexist", "task-1")
    assert api.store.current_revision() == revision
    ops = await api.call("ListOperations", {"Filters": [{"Name": "TYPE", "Values": ["DEREGISTER_INSTANCE"]}]})
    assert ops["Operations"] == []
    api.store.close()


async def test_register_refuses_what_register_instance_refuses(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    with pytest.raises(ServiceNotFound):
        await api.registrar.register("srv-doesnotexist", "task-1", ATTRS)
    with pytest.raises(InvalidInput):  # the service has an A record
        await api.registrar.register(srv_id, "task-1", {"AWS_INSTANCE_PORT": "80"})
    with pytest.raises(InvalidInput):
        await api.registrar.register(srv_id, "bad id with spaces", ATTRS)
    assert api.catalog.index.instances_of(srv_id) == []
    api.store.close()


async def test_the_health_checker_hook_runs_after_each_registration_change(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    synced: list[str] = []
    api.registrar.on_instances = synced.append
    await api.registrar.register(srv_id, "task-1", ATTRS)
    await api.registrar.deregister(srv_id, "task-1")
    await api.registrar.deregister(srv_id, "task-1")
    assert synced == [srv_id, srv_id]
    api.store.close()
