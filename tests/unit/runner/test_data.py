"""runner.data: named reads and writes over a real store."""

import dataclasses
from dataclasses import replace

import pytest

from dockyard.store import Store
from runner import data, part, tasks

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")


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


# -- tasks and services (typed rows) -----------------------------------------------------------
DEFN = {
    "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:4",
    "family": "web",
    "revision": 4,
    "networkMode": "bridge",
    "containerDefinitions": [{"name": "app", "image": "app:1", "memory": 32}],
}


async def _new_task(store, tid="t1", group="service:web"):
    new = data.NewTask(tid, "c", "i-1", DEFN, "EC2", 10.0, group=group, started_by="ecs-svc/1",
                       cpu=0, memory=32, host_ports=("8080/tcp",), tags=({"key": "k", "value": "v"},))
    return await data.record_tasks(store, lambda: [new])


async def test_a_recorded_task_reads_back_typed_with_what_a_consumer_of_the_lifecycle_needs(store):
    (task,) = await _new_task(store)
    assert task == data.task(store, "t1") == data.task_in(store, "c", "t1")
    assert data.task_in(store, "other", "t1") is None
    assert (task.cluster, task.service, task.definition_key) == ("c", "web", "web:4")
    assert (task.last_status, task.desired_status, task.version) == ("PROVISIONING", "RUNNING", 1)
    assert task.host_ports == ("8080/tcp",) and task.tags == ({"key": "k", "value": "v"},)
    assert task.containers == () and task.state_of("app") == data.ContainerState("app")


async def test_progress_is_written_typed_and_never_moves_the_status_backwards(store):
    await _new_task(store)
    app = data.ContainerState("app", runtime_id="c1", last_status="RUNNING", exit_code=0,
                              bindings=(data.Binding(80, 32768),))
    task = await data.update_task(store, "t1", last_status="RUNNING", containers=(app,),
                                  network=data.TaskNetwork("p1", "172.17.0.9", "eni-1"))
    assert task.state_of("app") == app and task.network.ip == "172.17.0.9" and task.version == 2
    task = await data.update_task(store, "t1", last_status="PENDING", health="HEALTHY")
    assert (task.last_status, task.health, task.version) == ("RUNNING", "HEALTHY", 3)
    assert (await data.update_task(store, "t1", health="HEALTHY")).version == 3  # no change, no write
    with pytest.raises(ValueError):
        await data.update_task(store, "t1", desired_status="STOPPED")
    assert await data.update_task(store, "gone", health="HEALTHY") is None


async def test_the_first_stop_request_wins(store):
    await _new_task(store)
    first = await data.request_task_stop(store, "t1", "UserInitiated", "first")
    again = await data.request_task_stop(store, "t1", "ServiceSchedulerInitiated", "second")
    assert (again.stop_code, again.stopped_reason) == ("UserInitiated", "first")
    assert again.stopping_at == first.stopping_at and again.desired_status == "STOPPED"
    assert await data.request_task_stop(store, "gone", "UserInitiated", "x") is None


async def test_tasks_are_listed_by_filter_and_by_group(store):
    await _new_task(store, "t1")
    await _new_task(store, "t2", group="family:web")
    assert data.task_ids(store, "c") == ["t1", "t2"]
    assert data.task_ids(store, "c", group="service:web") == ["t1"]
    assert data.task_ids(store, "c", desired="PENDING", family="web") == ["t1", "t2"]
    assert data.task_ids(store, "c", desired="STOPPED") == []
    assert [t.id for t in data.tasks_of_group(store, "c", "service:web")] == ["t1"]
    assert data.tasks_of_group(store, "c", "service:web", running=True) == []
    live = data.live_tasks_of_group(store, "c", "service:web")
    assert live == [data.TaskBrief("ecs-svc/1", "PROVISIONING")]


def _svc(**over):
    base = data.Service("c", "web", "ACTIVE", {"desiredCount": 1}, 1.0, 1.0,
                        deployments=({"id": "d1", "status": "PRIMARY"},))
    return dataclasses.replace(base, **over)


async def test_a_service_is_created_once_until_it_is_inactive(store):
    assert await data.create_service(store, _svc())
    assert not await data.create_service(store, _svc())
    svc = data.service(store, "c", "web")
    assert (svc.status, svc.spec, svc.primary, svc.key) == ("ACTIVE", {"desiredCount": 1},
                                                            {"id": "d1", "status": "PRIMARY"}, "c/web")
    assert data.service_keys(store) == [("c", "web")]
    assert [s.name for s in data.services_in(store, "c")] == ["web"]
    await data.modify_service(store, "c", "web", lambda s: dataclasses.replace(s, status="INACTIVE"))
    assert data.service_keys(store) == [] and data.active_services(store) == []
    assert await data.create_service(store, _svc())


async def test_a_service_saved_from_a_stale_read_loses_to_the_newer_write(store):
    await data.create_service(store, _svc())
    read = data.service(store, "c", "web")
    assert not await data.save_service(store, read, read)  # nothing changed: nothing written
    await data.modify_service(store, "c", "web", lambda s: dataclasses.replace(s, spec={"desiredCount": 3}))
    assert not await data.save_service(store, read, dataclasses.replace(read, steady=True))
    fresh = data.service(store, "c", "web")
    assert fresh.spec == {"desiredCount": 3} and not fresh.steady
    assert await data.save_service(store, fresh, dataclasses.replace(fresh, steady=True))
    assert data.service(store, "c", "web").steady


def test_an_unknown_cluster_does_not_exist(store):
    assert data.cluster(store, "c") is None


def _typed(mode, **over):
    defn = {**DEFN, "networkMode": mode}
    return data.Task("t", "c", "i", defn["taskDefinitionArn"], "web", defn, "EC2", "RUNNING", "RUNNING", 0.0,
                     group="service:web", **over)


def test_a_task_says_where_each_container_port_is_reached_in_every_network_mode():
    assert _typed("awsvpc", network=data.TaskNetwork(ip="10.0.0.7")).endpoint("app", 80) == ("10.0.0.7", 80)
    assert _typed("awsvpc").endpoint("app", 80) is None  # no address yet
    bound = data.ContainerState("app", bindings=(data.Binding(80, 32768), data.Binding(81, 32769)))
    assert _typed("bridge", containers=(bound,)).endpoint("app", 81) == ("", 32769)
    assert _typed("bridge", containers=(bound,)).endpoint("app", 82) is None
    assert _typed("host").endpoint("app", 80) == ("", 80)
    task = _typed("bridge")
    assert (task.id, task.cluster, task.service, task.definition_key, task.last_status) == (
        "t", "c", "web", "web:4", "RUNNING")
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
