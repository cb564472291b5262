"""serviceRegistries: a service's tasks in Cloud Map while RUNNING, gone before they stop."""

from __future__ import annotations

import time

from tests.integration.test_ecs_services import cluster, service_tasks, small_image, stable, wait_for  # noqa: F401


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
        now_registered = set(instances())
        states = {
            t["taskArn"].rsplit("/", 1)[-1]: t
            for t in ecs.describe_tasks(cluster=cluster, tasks=list(tasks))["tasks"]
        }
        for ident in now_registered & set(states):  # never registered once its stop has begun
            assert states[ident]["desiredStatus"] == "RUNNING", states[ident]
        time.sleep(0.05)
    [left] = instances()
    assert ecs.describe_tasks(cluster=cluster, tasks=[left])["tasks"][0]["lastStatus"] == "RUNNING"
