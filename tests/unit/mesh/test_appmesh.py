"""App Mesh's meshes over a real store: shapes, errors and the change published per write."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.aws.protocol import Call
from dockyard.store import Store
from mesh.appmesh import AppMesh, mesh_spec
from mesh.appmesh_errors import BadRequestException, ConflictException, NotFoundException
from mesh.data import MESH_TOPIC, MIGRATIONS, Data

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CALL = Call({}, "appmesh", "x", None, "test")


@pytest.fixture
def api(tmp_path: Path) -> AppMesh:
    return AppMesh(Data(Store.open(tmp_path / "state.db", MIGRATIONS)), "eu-west-1", "123456789012")


def test_a_spec_gets_app_meshs_default_egress_filter_unless_it_names_one():
    assert mesh_spec(None) == {"egressFilter": {"type": "DROP_ALL"}}
    assert mesh_spec({"egressFilter": {"type": "ALLOW_ALL"}}) == {"egressFilter": {"type": "ALLOW_ALL"}}


async def test_each_write_publishes_a_mesh_change(api: AppMesh):
    store = api.data.store
    start = store.current_revision()
    created = (await api.create_mesh(CALL, {"meshName": "shop"}))["mesh"]
    assert created["metadata"]["arn"] == "arn:aws:appmesh:eu-west-1:123456789012:mesh/shop"
    await api.update_mesh(CALL, {"meshName": "shop", "spec": {"egressFilter": {"type": "ALLOW_ALL"}}})
    await api.delete_mesh(CALL, {"meshName": "shop"})
    assert [(c.topic, c.key) for c in store.changes_since(start)] == [(MESH_TOPIC, "shop")] * 3


async def test_versions_count_writes_and_delete_answers_deleted(api: AppMesh):
    await api.create_mesh(CALL, {"meshName": "m"})
    updated = (await api.update_mesh(CALL, {"meshName": "m"}))["mesh"]
    assert updated["metadata"]["version"] == 2
    assert (await api.describe_mesh(CALL, {"meshName": "m"}))["mesh"]["metadata"]["version"] == 2
    assert (await api.delete_mesh(CALL, {"meshName": "m"}))["mesh"]["status"] == {"status": "DELETED"}
    assert (await api.list_meshes(CALL, {}))["meshes"] == []


async def test_duplicates_unknown_meshes_and_bad_tokens_get_app_meshs_errors(api: AppMesh):
    await api.create_mesh(CALL, {"meshName": "m"})
    with pytest.raises(ConflictException):
        await api.create_mesh(CALL, {"meshName": "m"})
    for op in (api.describe_mesh, api.update_mesh, api.delete_mesh):
        with pytest.raises(NotFoundException):
            await op(CALL, {"meshName": "other"})
    with pytest.raises(BadRequestException):
        await api.list_meshes(CALL, {"nextToken": "garbage"})
    assert (ConflictException.status, NotFoundException.status, BadRequestException.status) == (409, 404, 400)


async def test_list_meshes_pages_in_creation_order(api: AppMesh):
    for n in ("a", "b", "c"):
        await api.create_mesh(CALL, {"meshName": n})
    first = await api.list_meshes(CALL, {"limit": 2})
    rest = await api.list_meshes(CALL, {"limit": 2, "nextToken": first["nextToken"]})
    assert [m["meshName"] for m in first["meshes"] + rest["meshes"]] == ["a", "b", "c"]
    assert "nextToken" not in rest
