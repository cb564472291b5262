from __future__ import annotations

import asyncio

import pytest
from envoy.config.cluster.v3 import cluster_pb2

from mesh.cache import SnapshotCache
from mesh.model import Node
from mesh.snapshot import CLUSTER, ENDPOINT, ROUTE, Snapshot, compute
from tests.unit.mesh.fixtures import sample_config, sample_endpoints


def snap(node: str = "task-a", v1: int = 90, v2: int = 10) -> Snapshot:
    return compute(sample_config(v1, v2), sample_endpoints(), Node(node))


async def test_a_watcher_behind_the_cache_returns_at_once():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    got = await asyncio.wait_for(cache.watch("task-a", {CLUSTER: ""}), 1)
    assert got.versions[CLUSTER] == snap().versions[CLUSTER]


async def test_a_watcher_up_to_date_waits_until_its_type_changes():
    cache = SnapshotCache()
    first = snap()
    cache.set_snapshot("task-a", first)
    task = asyncio.create_task(cache.watch("task-a", {ROUTE: first.versions[ROUTE]}))
    await asyncio.sleep(0.01)
    assert not task.done() and cache.watcher_count("task-a") == 1
    second = snap(v1=50, v2=50)
    cache.set_snapshot("task-a", second)
    got = await asyncio.wait_for(task, 1)
    assert got is second and got.versions[ROUTE] != first.versions[ROUTE]


async def test_a_snapshot_that_leaves_the_watched_type_unchanged_does_not_answer():
    cache = SnapshotCache()
    first = snap()
    cache.set_snapshot("task-a", first)
    task = asyncio.create_task(cache.watch("task-a", {CLUSTER: first.versions[CLUSTER]}))
    await asyncio.sleep(0.01)
    cache.set_snapshot("task-a", snap(v1=50, v2=50))  # only the routes change
    await asyncio.sleep(0.01)
    assert not task.done() and cache.watcher_count("task-a") == 1
    task.cancel()


async def test_setting_one_nodes_snapshot_wakes_only_that_nodes_watchers():
    cache = SnapshotCache()
    a = asyncio.create_task(cache.watch("task-a", {CLUSTER: ""}))
    b = asyncio.create_task(cache.watch("task-b", {CLUSTER: ""}))
    await asyncio.sleep(0.01)
    cache.set_snapshot("task-b", snap("task-b"))
    got = await asyncio.wait_for(b, 1)
    assert got.names(CLUSTER) == {"db"}
    await asyncio.sleep(0.01)
    assert not a.done()
    a.cancel()


async def test_a_node_without_snapshot_waits_for_its_first_one():
    cache = SnapshotCache()
    task = asyncio.create_task(cache.watch("task-a", {CLUSTER: "", ENDPOINT: ""}))
    await asyncio.sleep(0.01)
    assert not task.done()
    cache.set_snapshot("task-a", snap())
    assert (await asyncio.wait_for(task, 1)).names(ENDPOINT) == {"web-v1", "web-v2", "db"}


async def test_a_cancelled_watch_is_removed():
    cache = SnapshotCache()
    task = asyncio.create_task(cache.watch("task-a", {CLUSTER: ""}))
    await asyncio.sleep(0.01)
    assert cache.watcher_count("task-a") == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cache.watcher_count("task-a") == 0


async def test_many_watchers_of_one_node_all_wake():
    cache = SnapshotCache()
    tasks = [asyncio.create_task(cache.watch("task-a", {CLUSTER: ""})) for _ in range(20)]
    await asyncio.sleep(0.01)
    cache.set_snapshot("task-a", snap())
    assert len(await asyncio.wait_for(asyncio.gather(*tasks), 1)) == 20


def test_an_inconsistent_snapshot_is_refused_and_the_old_one_kept():
    cache = SnapshotCache()
    good = snap()
    cache.set_snapshot("task-a", good)
    bad = Snapshot.of([cluster_pb2.Cluster(name="x", type=cluster_pb2.Cluster.EDS)])
    with pytest.raises(ValueError, match="cluster x has no load assignment"):
        cache.set_snapshot("task-a", bad)
    assert cache.get_snapshot("task-a") is good


def test_clear_snapshot_forgets_the_node():
    cache = SnapshotCache()
    cache.set_snapshot("task-a", snap())
    cache.clear_snapshot("task-a")
    assert cache.get_snapshot("task-a") is None and cache.nodes() == []
