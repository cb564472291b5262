"""The pure parts of the services' I/O shell: event wording and discovery attributes."""

from __future__ import annotations

import json
from typing import Any

from runner.service_loop import placement_message, registration_attributes


def task_row(mode: str, **over: Any) -> dict[str, Any]:
    defn = {
        "family": "web",
        "revision": 7,
        "networkMode": mode,
        "containerDefinitions": [{"name": "app", "portMappings": [{"containerPort": 80, "hostPort": 0}]}],
    }
    row = {
        "id": "abc",
        "cluster": "prod",
        "definition": json.dumps(defn),
        "network": json.dumps({"ip": "172.17.0.5"} if mode == "awsvpc" else {}),
        "containers": json.dumps({}),
    }
    row.update(over)
    return row


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
    row = task_row("awsvpc", network=json.dumps({}))
    assert registration_attributes(row, {"registryArn": "x"}, "web", "us-east-1a") is None


def test_a_bridge_task_registers_the_host_port_docker_bound() -> None:
    bindings = {"app": {"networkBindings": [{"containerPort": 80, "hostPort": 32768}]}}
    row = task_row("bridge", containers=json.dumps(bindings))
    attrs = registration_attributes(row, {"registryArn": "x"}, "web", "us-east-1a")
    assert attrs is not None and (attrs["AWS_INSTANCE_IPV4"], attrs["AWS_INSTANCE_PORT"]) == (
        "127.0.0.1",
        "32768",
    )
    assert registration_attributes(task_row("bridge"), {"registryArn": "x"}, "web", "us-east-1a") is None


def test_the_registry_port_wins_over_the_port_mapping() -> None:
    attrs = registration_attributes(task_row("host"), {"registryArn": "x", "port": 9000}, "web", "z")
    assert attrs is not None and attrs["AWS_INSTANCE_PORT"] == "9000"
