"""``Data.namespace_service_ids`` over a real store: the read behind the seam
``runner.seams.NamespaceLookup`` (ECS's ListServicesByNamespace); ``Data.namespace`` and
``Registrar.ensure_service``, behind ``NamespaceInfo`` and ``InstanceRegistry`` (Service Connect)."""

from __future__ import annotations

from pathlib import Path

import pytest

from discovery.errors import NamespaceNotFound
from tests.unit.discovery.live import dns_service, live

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


async def test_a_namespace_by_id_arn_or_name_gives_its_service_ids_and_only_its_own(tmp_path: Path):
    api = live(tmp_path)
    web = await dns_service(api)
    [ns] = api.catalog.index.namespaces.values()
    db = await api.call("CreateService", {"Name": "db", "NamespaceId": ns.id,
                                          "DnsConfig": {"DnsRecords": [{"Type": "A", "TTL": 5}]}})
    other = await api.call("CreateHttpNamespace", {"Name": "other"})
    assert other["OperationId"]
    other_ns = next(n for n in api.catalog.index.namespaces.values() if n.name == "other")
    await api.call("CreateService", {"Name": "api", "NamespaceId": other_ns.id})
    expected = {web, db["Service"]["Id"]}
    assert api.data.namespace_service_ids(ns.id) == expected
    assert api.data.namespace_service_ids(ns.arn) == expected
    assert api.data.namespace_service_ids("t.internal") == expected
    api.store.close()


async def test_an_empty_namespace_gives_no_ids_and_an_unknown_one_none(tmp_path: Path):
    api = live(tmp_path)
    await api.call("CreateHttpNamespace", {"Name": "empty"})
    [ns] = api.catalog.index.namespaces.values()
    assert api.data.namespace_service_ids(ns.id) == set()
    assert api.data.namespace_service_ids("empty") == set()
    assert api.data.namespace_service_ids("ns-doesnotexist0000") is None
    assert api.data.namespace_service_ids("nope") is None
    api.store.close()


async def test_a_namespace_by_id_arn_or_name_for_service_connect(tmp_path: Path):
    api = live(tmp_path)
    await api.call("CreateHttpNamespace", {"Name": "shop"})
    [ns] = api.catalog.index.namespaces.values()
    for given in (ns.id, ns.arn, "shop"):
        found = api.data.namespace(given)
        assert found is not None and (found.id, found.arn, found.name) == (ns.id, ns.arn, "shop")
    assert api.data.namespace("nope") is None
    assert api.data.namespace("arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-x") is None
    api.store.close()


async def test_ensure_service_creates_a_service_connect_service_once_and_reuses_one(tmp_path: Path):
    api = live(tmp_path)
    await api.call("CreateHttpNamespace", {"Name": "shop"})
    [ns] = api.catalog.index.namespaces.values()
    arn = await api.registrar.ensure_service(ns.arn, "web")
    assert arn == await api.registrar.ensure_service("shop", "web")  # once
    [srv] = api.catalog.index.services.values()
    assert (srv.arn, srv.name, srv.namespace_id, srv.type) == (arn, "web", ns.id, "HTTP")
    tags = await api.call("ListTagsForResource", {"ResourceARN": arn})
    assert tags["Tags"] == [{"Key": "AmazonECSManaged", "Value": "true"}]
    made = await api.call("CreateService", {"Name": "db", "NamespaceId": ns.id})
    assert await api.registrar.ensure_service(ns.id, "db") == made["Service"]["Arn"]  # an existing one
    attrs = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "15100"}
    await api.registrar.register(arn, "task-1", attrs)
    found = await api.call("DiscoverInstances", {"NamespaceName": "shop", "ServiceName": "web"})
    assert [i["InstanceId"] for i in found["Instances"]] == ["task-1"]
    with pytest.raises(NamespaceNotFound):
        await api.registrar.ensure_service("nope", "web")
    api.store.close()
