"""Tags on meshes and resources by ARN, over a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.aws.protocol import Call
from dockyard.store import Store
from mesh.appmesh import AppMesh
from mesh.appmesh_errors import NotFoundException, TooManyTagsException
from mesh.appmesh_nodes import Nodes
from mesh.appmesh_tags import Tags
from mesh.data import MESH_TOPIC, MIGRATIONS, TOPICS, VIRTUAL_NODE, Data

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CALL = Call({}, "appmesh", "x", None, "test")


@pytest.fixture
def apis(tmp_path: Path) -> tuple[AppMesh, Nodes, Tags]:
    data = Data(Store.open(tmp_path / "state.db", MIGRATIONS))
    return AppMesh(data, "us-east-1", "0"), Nodes(data, "us-east-1", "0"), Tags(data)


async def test_tags_merge_untag_and_list_on_meshes_and_nodes(apis):
    mesh_api, nodes, tags = apis
    mesh_arn = (await mesh_api.create_mesh(CALL, {"meshName": "m", "tags": [{"key": "a", "value": "1"}]})
                )["mesh"]["metadata"]["arn"]
    node = (await nodes.create(VIRTUAL_NODE, {"meshName": "m", "virtualNodeName": "n"}))["virtualNode"]
    store = mesh_api.data.store
    start = store.current_revision()
    two = [{"key": "a", "value": "2"}, {"key": "b", "value": "3"}]
    await tags.tag(CALL, {"resourceArn": mesh_arn, "tags": two})
    await tags.untag(CALL, {"resourceArn": mesh_arn, "tagKeys": ["b", "never-there"]})
    assert (await tags.list(CALL, {"resourceArn": mesh_arn}))["tags"] == [{"key": "a", "value": "2"}]
    node_arn = node["metadata"]["arn"]
    fifty = [{"key": f"k{i}", "value": "v"} for i in range(50)]
    await tags.tag(CALL, {"resourceArn": node_arn, "tags": fifty})
    first = await tags.list(CALL, {"resourceArn": node_arn, "limit": 30})
    rest = await tags.list(CALL, {"resourceArn": node_arn, "nextToken": first["nextToken"]})
    assert len(first["tags"]) + len(rest["tags"]) == 50
    with pytest.raises(TooManyTagsException):
        await tags.tag(CALL, {"resourceArn": node_arn, "tags": [{"key": "one-more", "value": "v"}]})
    described = (await nodes.describe(VIRTUAL_NODE, {"meshName": "m", "virtualNodeName": "n"}))["virtualNode"]
    assert described["metadata"]["version"] == 1
    assert [(c.topic, c.key) for c in store.changes_since(start)] == [
        (MESH_TOPIC, "m"), (MESH_TOPIC, "m"), (TOPICS[VIRTUAL_NODE], "m/n")]
    for op in (tags.list, tags.untag):
        with pytest.raises(NotFoundException):
            await op(CALL, {"resourceArn": "arn:aws:appmesh:us-east-1:0:mesh/nope", "tagKeys": []})
