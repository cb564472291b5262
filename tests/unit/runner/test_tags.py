"""ECS tagging by ARN: which row an ARN names, and merge/remove semantics on a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.config import Config
from dockyard.store import Store
from runner import services, tags
from runner.errors import ClusterNotFoundException, InvalidParameterException, ResourceNotFoundException

P = "arn:aws:ecs:us-east-1:000000000000"


@pytest.mark.parametrize(
    "arn,kind,params",
    [
        (f"{P}:cluster/prod", "cluster", ("prod",)),
        (f"{P}:task-definition/web:3", "task-definition", ("web", 3)),
        (f"{P}:service/prod/web", "service", ("prod", "web")),
        (f"{P}:task/prod/0123abcd", "task", ("prod", "0123abcd")),
        (f"{P}:container-instance/prod/ci-1", "container-instance", ("prod", "ci-1")),
    ],
)
def test_each_kind_of_arn_names_its_resource(arn, kind, params):
    target = tags.locate(arn)
    assert (target.kind, target.params) == (kind, params)


@pytest.mark.parametrize(
    "arn",
    [None, "", "web", f"{P}:queue/x", f"{P}:task-definition/web", f"{P}:service/web", "arn:aws:s3:::b"],
)
def test_malformed_arns_are_invalid_parameters(arn):
    with pytest.raises(InvalidParameterException):
        tags.locate(arn)


async def test_tags_merge_by_key_and_are_removed_by_key(tmp_path: Path):
    store = Store.open(tmp_path / "db.sqlite", services.MIGRATIONS)
    async with store.transaction() as tx:
        tx.execute(
            "INSERT INTO services (cluster, name, status, spec, created_at, updated_at)"
            " VALUES ('prod', 'web', 'ACTIVE', '{}', 0, 0)"
        )
    cfg, arn = Config(), f"{P}:service/prod/web"
    both = [{"key": "team", "value": "a"}, {"key": "env", "value": "x"}]
    await tags.tag_resource(store, cfg, {"resourceArn": arn, "tags": both})
    await tags.tag_resource(store, cfg, {"resourceArn": arn, "tags": [{"key": "team", "value": "b"}]})
    listed = await tags.list_tags_for_resource(store, cfg, {"resourceArn": arn})
    assert listed["tags"] == [{"key": "team", "value": "b"}, {"key": "env", "value": "x"}]
    await tags.untag_resource(store, cfg, {"resourceArn": arn, "tagKeys": ["team"]})
    assert (await tags.list_tags_for_resource(store, cfg, {"resourceArn": arn}))["tags"] == [
        {"key": "env", "value": "x"}
    ]
    with pytest.raises(InvalidParameterException, match="reserved"):
        await tags.tag_resource(store, cfg, {"resourceArn": arn, "tags": [{"key": "aws:x", "value": "1"}]})
    many = [{"key": f"k{i}", "value": ""} for i in range(50)]
    with pytest.raises(InvalidParameterException, match="at most 50"):
        await tags.tag_resource(store, cfg, {"resourceArn": arn, "tags": many})
    with pytest.raises(ResourceNotFoundException):
        await tags.list_tags_for_resource(store, cfg, {"resourceArn": f"{P}:service/prod/nope"})
    store.close()


async def test_an_unknown_cluster_is_cluster_not_found(tmp_path: Path):
    from runner import clusters

    store = Store.open(tmp_path / "db.sqlite", clusters.MIGRATIONS)
    with pytest.raises(ClusterNotFoundException):
        await tags.list_tags_for_resource(store, Config(), {"resourceArn": f"{P}:cluster/nope"})
    store.close()
