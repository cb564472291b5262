"""runner.data: named reads and writes over a real store."""

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
