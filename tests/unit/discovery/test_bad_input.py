"""Strings SQLite cannot store (a lone surrogate such as "\\ud800", which JSON can carry) are
InvalidInput (400), never a UnicodeEncodeError (500) from the store (issue 10)."""

from __future__ import annotations

from pathlib import Path

import pytest

from discovery.errors import InvalidInput
from tests.unit.discovery.live import dns_service, live

LONE = "\ud800"
ATTRS = {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}


async def test_a_lone_surrogate_anywhere_in_a_request_is_invalid_input(tmp_path: Path):
    api = live(tmp_path)
    srv_id = await dns_service(api)
    ns_id = api.catalog.index.services[srv_id].namespace_id
    requests = [
        ("CreateHttpNamespace", {"Name": "h", "Description": LONE}),
        ("CreateHttpNamespace", {"Name": "h", "CreatorRequestId": LONE}),
        ("CreateHttpNamespace", {"Name": "h", "Tags": [{"Key": "k", "Value": LONE}]}),
        ("CreateService", {"Name": "s", "NamespaceId": ns_id, "Description": LONE}),
        ("UpdateService", {"Id": srv_id, "Service": {"Description": "x" + LONE}}),
        ("UpdatePrivateDnsNamespace", {"Id": ns_id, "Namespace": {"Description": LONE}}),
        ("RegisterInstance", {"ServiceId": srv_id, "InstanceId": "i", "Attributes": {**ATTRS, LONE: "v"}}),
        ("RegisterInstance", {"ServiceId": srv_id, "InstanceId": "i", "Attributes": {**ATTRS, "k": LONE}}),
        ("RegisterInstance", {"ServiceId": srv_id, "InstanceId": "i", "CreatorRequestId": LONE,
                              "Attributes": ATTRS}),
        ("GetOperation", {"OperationId": LONE}),
        ("ListTagsForResource", {"ResourceARN": LONE}),
        ("DiscoverInstances", {"NamespaceName": "t.internal", "ServiceName": LONE}),
    ]
    for operation, params in requests:
        with pytest.raises(InvalidInput):
            await api.call(operation, params)
    assert api.catalog.index.instances_of(srv_id) == []
    api.store.close()


async def test_other_non_ascii_text_is_stored_and_answered_as_sent(tmp_path: Path):
    api = live(tmp_path)
    await api.call("CreateHttpNamespace", {"Name": "h", "Description": "café ☕"})
    [ns] = api.catalog.index.namespaces.values()
    got = await api.call("GetNamespace", {"Id": ns.id})
    assert got["Namespace"]["Description"] == "café ☕"
    api.store.close()
