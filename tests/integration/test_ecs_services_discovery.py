"""serviceRegistries: a service's tasks in Cloud Map while RUNNING, gone before they stop."""

from __future__ import annotations

import subprocess
import time

from tests.integration.test_ecs_services import cluster, service_tasks, small_image, stable, wait_for  # noqa: F401
from tests.integration.test_ecs_tasks import until_status


def test_service_tasks_are_registered_in_discovery_and_deregistered_before_they_stop(
    dockyard,
    cluster,  # noqa: F811
    small_image,  # noqa: F811
):
    ecs = dockyard.client("ecs")
    sd = dockyard.client("servicediscovery")
    ns = sd.create_http_namespace(Name=f"{cluster}.local")
    ns_id = sd.get_operation(OperationId=ns["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    srv = sd.create_service(Name="web", NamespaceId=ns_id)["Service"]
    arn = ecs.register_task_definition(
        family="registered",
        networkMode="awsvpc",
        containerDefinitions=[
            {
                "name": "main",
                "image": small_image,
                "memory": 32,
                "command": ["sleep", "3600"],
                "portMappings": [{"containerPort": 8080}],
            }
        ],
    )["taskDefinition"]
    net = {"awsvpcConfiguration": {"subnets": ["subnet-1"]}}
    ecs.create_service(
        cluster=cluster,
        serviceName="web",
        taskDefinition=arn["taskDefinitionArn"],
        desiredCount=2,
        networkConfiguration=net,
        serviceRegistries=[{"registryArn": srv["Arn"]}],
    )
    wait_for(lambda: stable(ecs, cluster, "web"), timeout=60, what="steady")

    def instances() -> dict[str, dict[str, str]]:
        return {i["Id"]: i["Attributes"] for i in sd.list_instances(ServiceId=srv["Id"])["Instances"]}

    registered = wait_for(lambda: len(instances()) == 2 and instances(), timeout=30, what="two instances")
    tasks = {t["taskArn"].rsplit("/", 1)[-1]: t for t in service_tasks(ecs, cluster, "web")}
    assert set(registered) == set(tasks)
    for ident, attrs in registered.items():
        ip = tasks[ident]["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        assert attrs["AWS_INSTANCE_IPV4"] == ip and attrs["AWS_INSTANCE_PORT"] == "8080"
        assert attrs["ECS_CLUSTER_NAME"] == cluster and attrs["ECS_SERVICE_NAME"] == "web"
        assert attrs["ECS_TASK_DEFINITION_FAMILY"] == "registered"
        assert attrs["ECS_TASK_DEFINITION_REVISION"] == str(arn["revision"])
        assert attrs["AVAILABILITY_ZONE"] == "us-east-1a"
    listed = ecs.list_services_by_namespace(namespace=ns_id)["serviceArns"]
    assert listed == [f"arn:aws:ecs:us-east-1:000000000000:service/{cluster}/web"]

    ecs.update_service(cluster=cluster, service="web", desiredCount=1)
    deadline = time.monotonic() + 30
    while len(instances()) != 1:
        assert time.monotonic() < deadline, instances()
        # The states first, then the registrations: a task whose stop had begun before the
        # registrations were read must not be among them (read the other way round, a task
        # deregistered and stopped between the two reads would look registered while stopping).
        states = {
            t["taskArn"].rsplit("/", 1)[-1]: t
            for t in ecs.describe_tasks(cluster=cluster, tasks=list(tasks))["tasks"]
        }
        now_registered = set(instances())
        for ident in now_registered & set(states):  # never registered once its stop has begun
            assert states[ident]["desiredStatus"] == "RUNNING", states[ident]
        time.sleep(0.05)
    [left] = instances()
    assert ecs.describe_tasks(cluster=cluster, tasks=[left])["tasks"][0]["lastStatus"] == "RUNNING"


def test_a_health_checked_task_is_discoverable_only_while_healthy_and_leaves_before_it_stops(
    dockyard,
    cluster,  # noqa: F811
    small_image,  # noqa: F811
):
    ecs = dockyard.client("ecs")
    sd = dockyard.client("servicediscovery")
    ns_name = f"{cluster}-health.local"
    ns = sd.create_http_namespace(Name=ns_name)
    ns_id = sd.get_operation(OperationId=ns["OperationId"])["Operation"]["Targets"]["NAMESPACE"]
    srv = sd.create_service(Name="checked", NamespaceId=ns_id)["Service"]
    # Healthy only once /tmp/ok exists; the start period keeps a missing file from counting.
    arn = ecs.register_task_definition(
        family="checked",
        networkMode="awsvpc",
        containerDefinitions=[
            {
                "name": "main",
                "image": small_image,
                "memory": 32,
                "command": ["sleep", "3600"],
                "portMappings": [{"containerPort": 8080}],
                "healthCheck": {
                    "command": ["CMD-SHELL", "test -f /tmp/ok"],
                    "interval": 5,
                    "timeout": 2,
                    "retries": 1,
                    "startPeriod": 300,
                },
            }
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(
        cluster=cluster,
        serviceName="checked",
        taskDefinition=arn,
        desiredCount=1,
        networkConfiguration={"awsvpcConfiguration": {"subnets": ["subnet-1"]}},
        serviceRegistries=[{"registryArn": srv["Arn"]}],
    )

    def discovered() -> set[str]:
        found = sd.discover_instances(NamespaceName=ns_name, ServiceName="checked", HealthStatus="ALL")
        return {i["InstanceId"] for i in found["Instances"]}

    def exec_in(task: dict, *cmd: str) -> None:
        cid = ecs.describe_tasks(cluster=cluster, tasks=[task["taskArn"]])["tasks"][0]["containers"][0][
            "runtimeId"
        ]
        subprocess.run(["docker", "exec", cid, "busybox", *cmd], check=True, capture_output=True)

    [first] = wait_for(lambda: service_tasks(ecs, cluster, "checked"), timeout=60, what="a running task")
    first_id = first["taskArn"].rsplit("/", 1)[-1]
    until_status(ecs, cluster, first["taskArn"], "RUNNING")
    # RUNNING for a few health-check intervals, never HEALTHY: never discoverable.
    deadline = time.monotonic() + 12
    while time.monotonic() < deadline:
        assert discovered() == set()
        time.sleep(0.5)
    assert (
        ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]["healthStatus"] == "UNKNOWN"
    )

    exec_in(first, "touch", "/tmp/ok")
    wait_for(lambda: discovered() == {first_id}, timeout=30, what="the healthy task in discovery")
    assert (
        ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]["healthStatus"] == "HEALTHY"
    )

    # Failing its check: out of discovery while still running, before the scheduler stops it.
    exec_in(first, "rm", "/tmp/ok")
    deadline = time.monotonic() + 30
    while first_id in discovered():
        assert time.monotonic() < deadline, "the unhealthy task stayed in discovery"
        t = ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]
        assert t["desiredStatus"] == "RUNNING" and t["lastStatus"] == "RUNNING", t
        time.sleep(0.05)
    t = ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]
    assert t["lastStatus"] == "RUNNING" and t["healthStatus"] == "UNHEALTHY"

    # Its replacement joins discovery once healthy; the unhealthy task then stops.
    [second] = wait_for(
        lambda: [x for x in service_tasks(ecs, cluster, "checked") if x["taskArn"] != first["taskArn"]],
        timeout=60,
        what="a replacement task",
    )
    until_status(ecs, cluster, second["taskArn"], "RUNNING")
    exec_in(second, "touch", "/tmp/ok")
    wait_for(
        lambda: discovered() == {second["taskArn"].rsplit("/", 1)[-1]}, timeout=30, what="the replacement"
    )
    wait_for(
        lambda: (
            ecs.describe_tasks(cluster=cluster, tasks=[first["taskArn"]])["tasks"][0]["lastStatus"]
            == "STOPPED"
        ),
        timeout=60,
        what="the unhealthy task to stop",
    )
