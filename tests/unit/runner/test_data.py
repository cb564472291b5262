"""runner.data: named reads and writes over a real store."""

from dataclasses import replace

import pytest

from dockyard.store import Store
from runner import data, part, tasks


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "s.db", part.MIGRATIONS)
    yield s
    s.close()


def test_the_data_layer_names_the_task_topic_as_tasks_does():
    assert data.TASK_TOPIC == tasks.TOPIC


async def test_registrations_are_recorded_per_service_and_task_and_forgotten_one_by_one(store):
    a, b = data.Registration("t1", "srv-a"), data.Registration("t1", "srv-b")
    await data.record_registration(store, a, "c", "web")
    await data.record_registration(store, b, "c", "web")
    await data.record_registration(store, data.Registration("t2", "srv-a"), "c", "api")
    assert sorted(data.registrations_of_service(store, "c", "web"), key=str) == [a, b]
    assert sorted(data.registrations_of_task(store, "t1"), key=str) == [a, b]
    await data.forget_registration(store, a)
    assert data.registrations_of_task(store, "t1") == [b]
    assert data.registrations_of_service(store, "c", "api") == [data.Registration("t2", "srv-a")]


def test_an_unknown_instance_has_no_docker_host_and_no_task_is_expired_on_a_new_store(store):
    assert data.docker_host_of(store, "nope") is None
    assert data.expired_tasks(store, 1e12) == []
    assert data.unstopped_task_ids(store) == []


async def test_a_cluster_is_read_back_as_written_and_counts_what_it_holds(store):
    async with store.transaction() as tx:
        data.put_cluster(tx, "c", [{"key": "k", "value": "v"}], [{"name": "containerInsights"}], {})
    found = data.cluster(store, "c")
    assert found is not None
    assert (found.name, found.status, found.tags) == ("c", "ACTIVE", ({"key": "k", "value": "v"},))
    assert data.active_cluster_names(store) == ["c"]
    counts = data.cluster_counts(store, "c")
    assert (dict(counts.tasks), dict(counts.services)) == ({}, {})
    assert (counts.instances, counts.remote_instances) == (0, 0)
    local = data.StoredInstance("i1", "c", "unix:///", "i-1", "ACTIVE", 1024, 512, (), (), {}, (), True, 0, 1)
    async with store.transaction() as tx:
        data.add_instance(tx, local)
        data.add_instance(tx, replace(local, id="i2", docker_host="tcp://r", local=False))
    counts = data.cluster_counts(store, "c")
    assert (counts.instances, counts.remote_instances) == (2, 1)
    assert data.instance(store, "i2", "c") == data.instance_on(store, "c", "tcp://r")
    assert data.instance(store, "i2", "other") is None
    async with store.transaction() as tx:
        data.deactivate_cluster(tx, "c")
    assert data.active_cluster_names(store) == []
    assert data.instance(store, "i1").status == "INACTIVE"  # the local engine leaves with the cluster
    assert data.instance(store, "i2").status == "ACTIVE"


async def test_definitions_take_the_next_revision_and_move_through_their_statuses(store):
    async with store.transaction() as tx:
        assert data.add_definition(tx, "web", '{"family": "web"}', "me", []) == 1
        assert data.add_definition(tx, "web", '{"family": "web"}', "me", []) == 2
    assert data.latest_active_definition(store, "web").revision == 2
    async with store.transaction() as tx:
        data.set_definition_status(tx, "web", 2, "INACTIVE")
    assert data.latest_active_definition(store, "web").revision == 1
    assert data.definition(store, "web", 2).deregistered_at is not None
    assert data.definition_ids(store, "ACTIVE", None, descending=False) == [("web", 1)]
    assert data.families(store, "w") == [data.Family("web", True)]


async def test_secrets_and_tags_are_named_writes(store):
    async with store.transaction() as tx:
        assert data.put_secret(tx, "s", "v") is True
        assert data.put_secret(tx, "s", "w") is False
    assert data.secret_value(store, "s") == "w" and [i.name for i in data.secret_infos(store)] == ["s"]
    async with store.transaction() as tx:
        assert data.delete_secret(tx, "s") is True
        assert data.delete_secret(tx, "s") is False
        data.put_cluster(tx, "c", [], [], {})
    target = data.TagTarget("cluster", ("c",), data.CLUSTER_TOPIC, "c")
    async with store.transaction() as tx:
        data.set_tags(tx, target, [{"key": "a", "value": "b"}])
    assert data.tags_of(store, target) == [{"key": "a", "value": "b"}]
    assert data.tags_of(store, data.TagTarget("cluster", ("nope",), data.CLUSTER_TOPIC, "nope")) is None
