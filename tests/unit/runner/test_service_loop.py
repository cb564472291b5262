"""The pure parts of the services' I/O shell: event wording and discovery attributes."""

from __future__ import annotations

from runner.data import Binding, ContainerState, Task, TaskNetwork
from runner.service_loop import placement_message, registration_attributes


def task_row(mode: str, ip: str = "172.17.0.5", containers: tuple[ContainerState, ...] = ()) -> Task:
    defn = {
        "family": "web",
        "revision": 7,
        "networkMode": mode,
        "containerDefinitions": [{"name": "app", "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
    }
    return Task(
        id="abc",
        cluster="prod",
        instance_id="i",
        definition_arn="arn:td",
        family="web",
        definition=defn,
        launch_type="EC2",
        last_status="RUNNING",
        desired_status="RUNNING",
        created_at=0.0,
        network=TaskNetwork(ip=ip if mode == "awsvpc" else ""),
        containers=containers,
    )


def test_a_placement_failure_reads_as_ecs_writes_it() -> None:
    msg = placement_message("web", "RESOURCE:MEMORY", "0123abcd")
    assert msg == (
        "(service web) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance 0123abcd) has insufficient memory "
        "available. For more information, see the Troubleshooting section of the Amazon ECS Developer Guide."
    )


def test_a_missing_attribute_reads_as_ecs_writes_it_and_names_the_attribute() -> None:
    gelf = "com.amazonaws.ecs.capability.logging-driver.gelf"
    msg = placement_message("web", "ATTRIBUTE", "0123abcd", gelf)
    assert msg == (
        "(service web) was unable to place a task because no container instance met all of its "
        "requirements. The closest matching (container-instance 0123abcd) is missing an attribute required "
        "by your task (com.amazonaws.ecs.capability.logging-driver.gelf). For more information, see the "
        "Troubleshooting section of the Amazon ECS Developer Guide."
    )


def test_a_placement_failure_without_any_instance_says_so() -> None:
    msg = placement_message("web", "", "")
    assert "No Container Instances were found in your cluster." in msg


def test_an_awsvpc_task_registers_its_own_address_and_container_port() -> None:
    attrs = registration_attributes(task_row("awsvpc"), {"registryArn": "x"}, "web", "us-east-1a")
    assert attrs == {
        "AWS_INSTANCE_IPV4": "172.17.0.5",
        "AWS_INSTANCE_PORT": "80",
        "AVAILABILITY_ZONE": "us-east-1a",
        "ECS_CLUSTER_NAME": "prod",
        "ECS_SERVICE_NAME": "web",
        "ECS_TASK_DEFINITION_FAMILY": "web",
        "ECS_TASK_DEFINITION_REVISION": "7",
        "ECS_TASK_ARN_ID": "abc",
        "REGION": "us-east-1",
    }


def test_an_awsvpc_task_without_an_address_yet_is_not_registered() -> None:
    row = task_row("awsvpc", ip="")
    assert registration_attributes(row, {"registryArn": "x"}, "web", "us-east-1a") is None


def test_a_bridge_task_registers_the_host_port_docker_bound() -> None:
    row = task_row("bridge", containers=(ContainerState("app", bindings=(Binding(80, 32768),)),))
    attrs = registration_attributes(row, {"registryArn": "x"}, "web", "us-east-1a")
    assert attrs is not None and (attrs["AWS_INSTANCE_IPV4"], attrs["AWS_INSTANCE_PORT"]) == (
        "127.0.0.1",
        "32768",
    )
    assert registration_attributes(task_row("bridge"), {"registryArn": "x"}, "web", "us-east-1a") is None


def test_the_registry_port_wins_over_the_port_mapping() -> None:
    attrs = registration_attributes(task_row("host"), {"registryArn": "x", "port": 9000}, "web", "z")
    assert attrs is not None and attrs["AWS_INSTANCE_PORT"] == "9000"


async def test_a_reconcile_pass_over_a_real_store_records_why_it_could_not_place(tmp_path) -> None:
    from dockyard.config import Config
    from dockyard.store import Store
    from runner import clusters, data, part, services, taskdefs
    from runner.service_loop import ServiceLoop

    config = Config(docker_host="none")
    store = Store.open(tmp_path / "s.db", part.MIGRATIONS)
    try:
        await clusters.create(store, config, {"clusterName": "c"})
        defn = {"family": "f", "containerDefinitions": [{"name": "s", "image": "busybox", "memory": 16}]}
        await taskdefs.OPERATIONS["RegisterTaskDefinition"](store, config, defn)
        params = {"cluster": "c", "serviceName": "web", "taskDefinition": "f", "desiredCount": 1}
        await services.create(store, config, params)
        before = data.service(store, "c", "web")
        await ServiceLoop(store, config).reconcile("c", "web")
        after = data.service(store, "c", "web")
        assert after.version == before.version + 1
        (event,) = after.events
        assert event["message"].startswith("(service web) was unable to place a task")
        assert "No Container Instances were found in your cluster." in event["message"]
        await ServiceLoop(store, config).reconcile("c", "web")  # the same event is not repeated
        assert len(data.service(store, "c", "web").events) == 1
    finally:
        store.close()
