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


def test_a_bridge_task_registers_its_instances_address_when_known() -> None:
    row = task_row("bridge", containers=(ContainerState("app", bindings=(Binding(80, 32768),)),))
    attrs = registration_attributes(row, {"registryArn": "x"}, "web", "us-east-1a", "172.17.0.1")
    assert attrs is not None and (attrs["AWS_INSTANCE_IPV4"], attrs["AWS_INSTANCE_PORT"]) == (
        "172.17.0.1",
        "32768",
    )
    host = registration_attributes(task_row("host"), {"registryArn": "x"}, "web", "z", "172.17.0.1")
    assert host is not None and host["AWS_INSTANCE_IPV4"] == "127.0.0.1"  # host tasks: as before


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


class FakeCloudMap:
    """The seams NamespaceInfo and InstanceRegistry, recording what the runner asks."""

    def __init__(self) -> None:
        self.services: dict[str, str] = {}
        self.instances: dict[tuple[str, str], dict[str, str]] = {}

    def __call__(self, namespace: str):  # NamespaceInfo
        from types import SimpleNamespace

        arn = "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-1"
        if namespace in ("shop.local", arn, "ns-1"):
            return SimpleNamespace(id="ns-1", arn=arn, name="shop.local")
        return None

    async def ensure_service(self, namespace: str, name: str) -> str:
        assert self(namespace) is not None
        ident = self.services.setdefault(name, f"srv-{name}{len(self.services)}")
        return f"arn:aws:servicediscovery:us-east-1:000000000000:service/{ident}"

    async def register(self, service_id: str, instance_id: str, attributes) -> None:
        self.instances[(service_id, instance_id)] = dict(attributes)

    async def deregister(self, service_id: str, instance_id: str) -> None:
        self.instances.pop((service_id, instance_id), None)


async def test_service_connect_over_a_real_store_places_views_registers_and_deregisters(tmp_path) -> None:
    import time
    import uuid

    from dockyard.config import Config
    from dockyard.store import Store
    from runner import clusters, data, part, services, taskdefs
    from runner.connectview import ConnectView
    from runner.service_loop import ServiceLoop

    config = Config(docker_host="none")
    store = Store.open(tmp_path / "s.db", part.MIGRATIONS)
    cloud = FakeCloudMap()
    try:
        defaults = {"clusterName": "c", "serviceConnectDefaults": {"namespace": "ns-1"}}
        await clusters.create(store, config, defaults, namespace_info=cloud)
        assert data.cluster(store, "c").service_connect_namespace.endswith("namespace/ns-1")
        for family, port, name in (("web", 8080, "web"), ("db", 5432, "db")):
            mapping = {"containerPort": port, "name": name, "appProtocol": "http"}
            defn = {"family": family, "networkMode": "awsvpc",
                    "containerDefinitions": [{"name": "app", "image": "busybox", "memory": 16,
                                              "portMappings": [mapping]}]}
            await taskdefs.OPERATIONS["RegisterTaskDefinition"](store, config, defn)
            sc = {"enabled": True, "services": [{"portName": name, "clientAliases": [{"port": 80}]}]}
            params = {"cluster": "c", "serviceName": family, "taskDefinition": family, "desiredCount": 1,
                      "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["s"]}},
                      "serviceConnectConfiguration": sc}
            await services.create(store, config, params, namespace_info=cloud, registry=cloud)
        assert set(cloud.services) == {"web", "db"}
        view = ConnectView(store, config)
        assert [e.discovery_name for e in view.namespace_services("shop.local")] == ["web", "db"]
        assert view.namespace_services("elsewhere") == []

        loop = ServiceLoop(store, config, registrar=cloud)
        web = data.service(store, "c", "web")
        dep = web.primary
        tc = loop._task_connect(dep)
        assert tc is not None and tc.namespace == "shop.local"
        assert tc.alias_addresses == {"db.shop.local": "127.255.0.1", "web.shop.local": "127.255.0.2"}
        assert [(i.port_name, i.port, i.container_port) for i in tc.ingress] == [("web", 15100, 8080)]
        new = data.NewTask(id=uuid.uuid4().hex, cluster="c", instance_id="i", definition=dep["definition"],
                           launch_type="EC2", created_at=time.time(), group="service:web",
                           started_by=dep["id"], connect=tc)
        [task] = await data.record_tasks(store, lambda: [new])
        [meshed] = view.meshed_tasks()
        assert meshed.task_arn.endswith(f"task/c/{task.id}") and meshed.service == "web"
        assert (meshed.family, meshed.revision, meshed.namespace) == ("web", 1, "shop.local")
        assert meshed.alias_addresses == tc.alias_addresses and meshed.ingress == tc.ingress

        await data.update_task(store, task.id, last_status="RUNNING", network=data.TaskNetwork(ip="10.1.0.9"))
        await loop._sync_registrations("c", "web", web.spec, list(web.deployments))
        [(rid, iid)] = cloud.instances
        assert (rid, iid) == (cloud.services["web"], task.id)
        attrs = cloud.instances[(rid, iid)]
        assert (attrs["AWS_INSTANCE_IPV4"], attrs["AWS_INSTANCE_PORT"]) == ("10.1.0.9", "15100")
        assert attrs["ECS_SERVICE_NAME"] == "web" and attrs["ECS_TASK_DEFINITION_REVISION"] == "1"

        await data.request_task_stop(store, task.id, "UserInitiated", "stop")
        await loop._sync_registrations("c", "web", web.spec, list(web.deployments))
        assert cloud.instances == {}
        assert [t.task_arn for t in view.meshed_tasks()] == [meshed.task_arn]  # there until STOPPED
        await data.update_task(store, task.id, last_status="STOPPED")
        assert view.meshed_tasks() == []
    finally:
        store.close()
