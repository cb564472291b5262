"""Clusters: what DescribeClusters counts and when DeleteCluster refuses (pure, then a real store)."""

from __future__ import annotations

import pytest

from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, part
from runner.errors import (
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
)

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


def counts(tasks=None, services=None, instances=0, remote=0) -> data.ClusterCounts:
    return data.ClusterCounts(tasks or {}, services or {}, instances, remote)


def test_statistics_split_tasks_and_services_by_launch_type_as_ecs_does():
    n = clusters.statistics(counts(
        {("EC2", "RUNNING"): 2, ("FARGATE", "RUNNING"): 1, ("FARGATE", "PROVISIONING"): 1,
         ("EC2", "ACTIVATING"): 1, ("EXTERNAL", "RUNNING"): 1, ("EC2", "DEACTIVATING"): 1},
        {("ACTIVE", "EC2"): 1, ("ACTIVE", "FARGATE"): 2, ("DRAINING", "FARGATE"): 1},
        instances=3,
    ))
    assert (n["runningTasksCount"], n["pendingTasksCount"]) == (4, 2)
    assert (n["activeServicesCount"], n["registeredContainerInstancesCount"]) == (3, 3)
    assert [n[k] for k in clusters.STATISTICS] == [2, 1, 1, 1, 1, 2, 0, 1]


@pytest.mark.parametrize(
    "held,error",
    [
        (counts(instances=2, remote=1), ClusterContainsContainerInstancesException),
        (counts({("EC2", "RUNNING"): 1}, {("DRAINING", "EC2"): 1}, 1), ClusterContainsServicesException),
        (counts({("EC2", "STOPPING"): 1}, instances=1), ClusterContainsTasksException),
    ],
)
def test_a_cluster_that_holds_something_is_not_deleted(held, error):
    with pytest.raises(error):
        clusters.refuse_delete(held)


def test_a_cluster_with_only_the_local_engine_may_be_deleted():
    clusters.refuse_delete(counts(instances=1, remote=0))


async def test_describe_clusters_counts_and_lists_statistics_only_when_asked(tmp_path):
    store = Store.open(tmp_path / "s.db", part.MIGRATIONS)
    try:
        await clusters.create(store, Config(), {"clusterName": "c"})
        plain = (await clusters.describe(store, Config(), {"clusters": ["c"]}))["clusters"][0]
        assert plain["statistics"] == [] and plain["runningTasksCount"] == 0
        out = await clusters.describe(store, Config(), {"clusters": ["c"], "include": ["STATISTICS"]})
        stats = out["clusters"][0]["statistics"]
        assert [s["name"] for s in stats] == list(clusters.STATISTICS)
        assert {s["value"] for s in stats} == {"0"}
        with pytest.raises(clusters.InvalidParameterException):
            await clusters.describe(store, Config(), {"clusters": ["c"], "include": ["NOPE"]})
        deleted = await clusters.delete(store, Config(), {"cluster": "c"})
        assert deleted["cluster"]["status"] == "INACTIVE"
    finally:
        store.close()


async def test_the_local_engine_leaves_with_its_cluster_and_comes_back_with_the_same_id(tmp_path):
    from runner import instances

    store, info = Store.open(tmp_path / "s.db", part.MIGRATIONS), {"NCPU": 1, "MemTotal": 2**30}
    try:
        await clusters.create(store, Config(), {"clusterName": "c"})
        [first] = await instances.ensure_local(store, Config(), info, "unix:///local")
        await clusters.delete(store, Config(), {"cluster": "c"})
        assert instances.instances_in(store, Config(), "c") == []
        await clusters.create(store, Config(), {"clusterName": "c"})
        assert await instances.ensure_local(store, Config(), info, "unix:///local") == [first]
        assert [i.id for i in instances.instances_in(store, Config(), "c")] == [first]
    finally:
        store.close()


async def test_a_deregistered_instance_stays_so_and_its_host_registers_anew(tmp_path):
    from runner import instances
    from runner.errors import ClientException

    store, info = Store.open(tmp_path / "s.db", part.MIGRATIONS), {"NCPU": 1, "MemTotal": 2**30}
    try:
        await clusters.create(store, Config(), {"clusterName": "c"})
        [local] = await instances.ensure_local(store, Config(), info, "unix:///local")
        arn = (await instances.register_op(store, Config(), {
            "cluster": "c", "dockerHost": "tcp://remote"}))["containerInstance"]["containerInstanceArn"]
        remote = arn.rsplit("/", 1)[1]
        beat = {"cluster": "c", "dockerHost": "tcp://remote", "containerInstanceArn": arn}
        assert (await instances.register_op(store, Config(), beat))["containerInstance"]["status"] == "ACTIVE"
        with pytest.raises(ClientException, match="is the Docker host"):
            await instances.register_op(store, Config(), {**beat, "dockerHost": "tcp://other",
                                                          "containerInstanceArn": local})
        for ident in (local, remote):
            await instances.deregister_op(store, Config(), {"cluster": "c", "containerInstance": ident})
        # the heartbeat naming it is refused; the local engine does not come back by itself
        with pytest.raises(ClientException, match="deregistered"):
            await instances.register_op(store, Config(), beat)
        assert await instances.ensure_local(store, Config(), info, "unix:///local") == []
        assert instances.instances_in(store, Config(), "c") == []
        assert data.instance(store, remote).status == "INACTIVE"
        # a registration naming no instance makes the host a new one
        fresh = (await instances.register_op(store, Config(), {"cluster": "c", "dockerHost": "tcp://remote"}))
        assert fresh["containerInstance"]["containerInstanceArn"] != arn
        assert [i.docker_host for i in instances.instances_in(store, Config(), "c")] == ["tcp://remote"]
    finally:
        store.close()
