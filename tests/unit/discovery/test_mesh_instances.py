"""``Discovery.mesh_instances``: the mesh's ``InstanceView`` over the in-memory index."""

from __future__ import annotations

from types import SimpleNamespace

from discovery import tables
from discovery.part import MeshInstance, MeshInstances
from tests.unit.discovery.fixtures import sample_index


def view() -> MeshInstances:
    return MeshInstances(SimpleNamespace(index=sample_index()))  # type: ignore[arg-type]


def test_instances_by_namespace_and_service_name_with_health():
    found = {i.instance_id: i for i in view().instances("example.internal", "web")}
    assert len(found) == 12
    assert found["web-sick"].healthy is False and found["web-1"].healthy is True
    assert found["web-1"] == MeshInstance(
        "web-1", {"AWS_INSTANCE_IPV4": "10.0.0.1", "AWS_INSTANCE_PORT": "80"}, True
    )


def test_unknown_health_is_routable_and_unknown_names_are_none():
    v = view()
    assert all(i.healthy for i in v.instances("example.internal", "db") or [])
    assert v.instances("example.internal", "nope") is None
    assert v.instances("nope", "web") is None
    assert set(v.change_topics) == set(tables.TOPICS)
