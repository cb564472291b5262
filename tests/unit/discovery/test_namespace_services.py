"""``Data.namespace_service_ids`` over a real store: the read behind the seam
``runner.seams.NamespaceLookup`` (ECS's ListServicesByNamespace)."""

from __future__ import annotations

from pathlib import Path

from tests.unit.discovery.live import dns_service, live


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
