"""ECS Service Connect through the real aws CLI: cluster defaults, serviceConnectConfiguration on
CreateService/UpdateService/DescribeServices, ECS's errors for bad input, the Cloud Map service
created for each discoveryName and each running task registered there with ECS's attributes,
deregistered before it stops. (No sidecar runs in these tasks: the sidecar lifecycle adds it.)"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest

from tests.integration.test_ecs_services import service_tasks, small_image, wait_for  # noqa: F401
from tests.integration.test_ecs_tasks import own_cluster

NET = '{"awsvpcConfiguration":{"subnets":["subnet-1"]}}'


def namespace(dockyard: Any, name: str) -> dict[str, Any]:
    """A new Cloud Map HTTP namespace (through the aws CLI): its GetNamespace shape."""
    op = dockyard.aws("servicediscovery", "create-http-namespace", "--name", name)["OperationId"]
    ident = dockyard.aws("servicediscovery", "get-operation", "--operation-id", op)["Operation"]["Targets"][
        "NAMESPACE"
    ]
    return dockyard.aws("servicediscovery", "get-namespace", "--id", ident)["Namespace"]


def definition(dockyard: Any, family: str, image: str, network_mode: str = "awsvpc", **mapping: Any) -> str:
    mapping = {"containerPort": 8080, "name": "web", "appProtocol": "http", **mapping}
    mapping = {k: v for k, v in mapping.items() if v is not None}
    container = {"name": "main", "image": image, "memory": 32, "command": ["sleep", "3600"],
                 "portMappings": [mapping]}
    out = dockyard.aws("ecs", "register-task-definition", "--family", family, "--network-mode", network_mode,
                       "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


def create_service(dockyard: Any, cluster: str, name: str, td: str, config: dict[str, Any] | None,
                   count: int = 0, check: bool = True, network: bool = True) -> Any:
    args = ["ecs", "create-service", "--cluster", cluster, "--service-name", name, "--task-definition", td,
            "--desired-count", str(count)]
    if network:
        args += ["--network-configuration", NET]
    if config is not None:
        args += ["--service-connect-configuration", json.dumps(config)]
    return dockyard.aws(*args, check=check)


def error_code(proc: Any) -> str:
    """The AWS error code the CLI printed (``An error occurred (Code) when calling ...``)."""
    assert proc.returncode != 0, proc.stdout
    text = proc.stderr
    return text.split("(", 1)[1].split(")", 1)[0] if "An error occurred (" in text else text


def test_cluster_service_connect_defaults_are_a_namespace_that_exists(dockyard):
    ns = namespace(dockyard, f"sc-defaults-{uuid.uuid4().hex[:6]}")
    other = namespace(dockyard, f"sc-other-{uuid.uuid4().hex[:6]}")
    name = f"sc-cluster-{uuid.uuid4().hex[:8]}"
    made = dockyard.aws("ecs", "create-cluster", "--cluster-name", name,
                        "--service-connect-defaults", f"namespace={ns['Name']}")["cluster"]
    try:
        assert made["serviceConnectDefaults"] == {"namespace": ns["Arn"]}
        [shown] = dockyard.aws("ecs", "describe-clusters", "--clusters", name)["clusters"]
        assert shown["serviceConnectDefaults"] == {"namespace": ns["Arn"]}
        updated = dockyard.aws("ecs", "update-cluster", "--cluster", name,
                               "--service-connect-defaults", f"namespace={other['Arn']}")["cluster"]
        assert updated["serviceConnectDefaults"] == {"namespace": other["Arn"]}
        missing = dockyard.aws("ecs", "update-cluster", "--cluster", name,
                               "--service-connect-defaults", "namespace=no-such-namespace.local", check=False)
        assert error_code(missing) == "NamespaceNotFoundException"
        cleared = dockyard.aws("ecs", "update-cluster", "--cluster", name,
                               "--service-connect-defaults", '{"namespace":""}')["cluster"]
        assert "serviceConnectDefaults" not in cleared
        [shown] = dockyard.aws("ecs", "describe-clusters", "--clusters", name)["clusters"]
        assert "serviceConnectDefaults" not in shown
        refused = dockyard.aws("ecs", "create-cluster", "--cluster-name", f"{name}-x",
                               "--service-connect-defaults", "namespace=ns-doesnotexist0000", check=False)
        assert error_code(refused) == "NamespaceNotFoundException"
        assert dockyard.aws("ecs", "describe-clusters", "--clusters", f"{name}-x")["clusters"] == []
        settings = dockyard.aws("ecs", "update-cluster-settings", "--cluster", name,
                                "--settings", "name=containerInsights,value=enabled")["cluster"]["settings"]
        assert settings == [{"name": "containerInsights", "value": "enabled"}]
    finally:
        dockyard.aws("ecs", "delete-cluster", "--cluster", name)


def test_a_service_connect_service_is_described_registered_with_ecs_attributes_and_leaves_first(
    dockyard,
    small_image,  # noqa: F811
):
    ns = namespace(dockyard, f"shop-{uuid.uuid4().hex[:6]}.local")
    ecs = dockyard.client("ecs")
    with own_cluster(dockyard, "sc") as name:
        dockyard.aws("ecs", "update-cluster", "--cluster", name, "--service-connect-defaults",
                     f"namespace={ns['Name']}")
        td = definition(dockyard, "sc-web", small_image)
        config = {"enabled": True, "namespace": ns["Name"],
                  "services": [{"portName": "web", "clientAliases": [{"port": 80}],
                                "timeout": {"idleTimeoutSeconds": 30, "perRequestTimeoutSeconds": 5}}],
                  "logConfiguration": {"logDriver": "json-file"}}
        created = create_service(dockyard, name, "web", td, config, count=1)["service"]
        [dep] = created["deployments"]
        assert "serviceConnectConfiguration" not in created  # ECS's Service has it on its deployments
        assert dep["serviceConnectConfiguration"] == {
            "enabled": True,
            "namespace": ns["Arn"],
            "services": [{"portName": "web", "discoveryName": "web",
                          "clientAliases": [{"port": 80, "dnsName": f"web.{ns['Name']}"}],
                          "timeout": {"idleTimeoutSeconds": 30, "perRequestTimeoutSeconds": 5}}],
            "logConfiguration": {"logDriver": "json-file"},
        }
        srvs = dockyard.aws("servicediscovery", "list-services", "--filters",
                            f"Name=NAMESPACE_ID,Values={ns['Id']},Condition=EQ")["Services"]
        [srv] = [s for s in srvs if s["Name"] == "web"]
        assert dep["serviceConnectResources"] == [{"discoveryName": "web", "discoveryArn": srv["Arn"]}]
        [shown] = dockyard.aws("ecs", "describe-services", "--cluster", name, "--services", "web")["services"]
        assert shown["deployments"][0]["serviceConnectResources"] == dep["serviceConnectResources"]

        # A client-only service (namespace from the cluster's defaults, no services[]).
        client = create_service(dockyard, name, "client", td, {"enabled": True})["service"]
        assert client["deployments"][0]["serviceConnectConfiguration"] == {
            "enabled": True, "namespace": ns["Arn"], "services": []}
        assert client["deployments"][0]["serviceConnectResources"] == []

        def instances() -> dict[str, dict[str, str]]:
            out = dockyard.aws("servicediscovery", "list-instances", "--service-id", srv["Id"])
            return {i["Id"]: i["Attributes"] for i in out["Instances"]}

        registered = wait_for(lambda: instances(), timeout=90, what="the task's instance")
        [task] = service_tasks(ecs, name, "web")
        task_id = task["taskArn"].rsplit("/", 1)[-1]
        ip = task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        attrs = registered[task_id]
        assert attrs["AWS_INSTANCE_IPV4"] == ip
        assert attrs["AWS_INSTANCE_PORT"] == "15100"  # the sidecar's ingress, not the app's 8080
        assert (attrs["ECS_CLUSTER_NAME"], attrs["ECS_SERVICE_NAME"]) == (name, "web")
        assert attrs["ECS_TASK_DEFINITION_FAMILY"] == "sc-web"
        assert attrs["ECS_TASK_DEFINITION_REVISION"] == td.rsplit(":", 1)[-1]

        # ListServicesByNamespace lists both (by the namespace's name, ARN or id).
        for given in (ns["Name"], ns["Arn"], ns["Id"]):
            listed = dockyard.aws("ecs", "list-services-by-namespace", "--namespace", given)["serviceArns"]
            assert sorted(a.rsplit("/", 1)[-1] for a in listed) == ["client", "web"], given

        # Changing the configuration starts a new deployment with it.
        config["services"][0]["ingressPortOverride"] = 15200
        updated = dockyard.aws("ecs", "update-service", "--cluster", name, "--service", "web",
                               "--service-connect-configuration", json.dumps(config))["service"]
        assert len(updated["deployments"]) == 2
        primary = updated["deployments"][0]
        assert primary["status"] == "PRIMARY"
        assert primary["serviceConnectConfiguration"]["services"][0]["ingressPortOverride"] == 15200
        old = updated["deployments"][1]["serviceConnectConfiguration"]
        assert "ingressPortOverride" not in old["services"][0]
        wait_for(lambda: any(a.get("AWS_INSTANCE_PORT") == "15200" for a in instances().values()),
                 timeout=90, what="the new deployment's task at its ingress override")

        # Scaled in: its instance leaves Cloud Map before its stop begins.
        dockyard.aws("ecs", "update-service", "--cluster", name, "--service", "web", "--desired-count", "0")
        deadline = time.monotonic() + 90
        while instances():
            assert time.monotonic() < deadline, instances()
            ids = list(instances())
            states = ecs.describe_tasks(cluster=name, tasks=ids)["tasks"] if ids else []
            left = set(instances())
            for t in states:
                if t["taskArn"].rsplit("/", 1)[-1] in left:
                    assert t["desiredStatus"] == "RUNNING", t
            time.sleep(0.1)
        for arn in ("web", "client"):
            ecs.delete_service(cluster=name, service=arn, force=True)


def no_network(dockyard: Any, image: str) -> str:
    container = {"name": "main", "image": image, "memory": 32}
    out = dockyard.aws("ecs", "register-task-definition", "--family", "sc-none", "--network-mode", "none",
                       "--container-definitions", json.dumps([container]))
    return out["taskDefinition"]["taskDefinitionArn"]


@pytest.fixture(scope="module")
def taken(dockyard: Any, small_image: str) -> dict[str, Any]:  # noqa: F811
    """A namespace in which ``db`` is taken (discoveryName ``db``, alias ``db.local:5432``)."""
    ns = namespace(dockyard, f"bad-{uuid.uuid4().hex[:6]}.local")
    with own_cluster(dockyard, "sc-bad") as name:
        td = definition(dockyard, "sc-db", small_image, containerPort=5432, name="db", appProtocol=None)
        create_service(dockyard, name, "db", td, {
            "enabled": True, "namespace": ns["Arn"],
            "services": [{"portName": "db", "clientAliases": [{"port": 5432, "dnsName": "db.local"}]}]})
        yield {"ns": ns, "cluster": name, "td": td,
               "http": definition(dockyard, "sc-http", small_image),
               "none": no_network(dockyard, small_image)}
        dockyard.client("ecs").delete_service(cluster=name, service="db", force=True)


def _svc(ns: dict[str, Any], **entry: Any) -> dict[str, Any]:
    return {"enabled": True, "namespace": ns["Name"], "services": [{"portName": "web", **entry}]}


INVALID = "InvalidParameterException"
BAD = {
    "a portName no container has": lambda ns: _svc(ns, portName="nope"),
    "a discoveryName another service has": lambda ns: _svc(ns, discoveryName="db"),
    "a client alias another service has": lambda ns: _svc(
        ns, clientAliases=[{"port": 5432, "dnsName": "db.local"}]),
    "an alias port of 0": lambda ns: _svc(ns, clientAliases=[{"port": 0}]),
    "an alias port over 65535": lambda ns: _svc(ns, clientAliases=[{"port": 70000}]),
    "the sidecar's egress port as ingress": lambda ns: _svc(ns, ingressPortOverride=15001),
    "the app's port as ingress": lambda ns: _svc(ns, ingressPortOverride=8080),
    "an unknown namespace": lambda ns: {"enabled": True, "namespace": "nowhere.local"},
    "enabled without a namespace nor a cluster default": lambda ns: {"enabled": True},
    "a timeout over ECS's maximum": lambda ns: _svc(ns, timeout={"idleTimeoutSeconds": 2147483648}),
    "a per-request timeout on a TCP port": lambda ns: {
        "enabled": True, "namespace": ns["Name"],
        "services": [{"portName": "db", "discoveryName": "db2", "timeout": {"perRequestTimeoutSeconds": 3}}]},
    "two aliases": lambda ns: _svc(ns, clientAliases=[{"port": 1}, {"port": 2}]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_service_connect_input_gets_ecs_errors_and_no_service(dockyard, taken, case):
    make, code = BAD[case], "NamespaceNotFoundException" if case == "an unknown namespace" else INVALID
    td = taken["td"] if "TCP" in case else taken["http"]
    svc = f"bad-{uuid.uuid4().hex[:6]}"
    proc = create_service(dockyard, taken["cluster"], svc, td, make(taken["ns"]), check=False)
    assert error_code(proc) == code, proc.stderr
    assert "ServerException" not in proc.stderr and "(500)" not in proc.stderr
    described = dockyard.aws("ecs", "describe-services", "--cluster", taken["cluster"], "--services", svc)
    assert described["services"] == []


def test_service_connect_refuses_network_modes_other_than_awsvpc_and_bridge(dockyard, taken):
    proc = create_service(dockyard, taken["cluster"], "no-net", taken["none"],
                          {"enabled": True, "namespace": taken["ns"]["Arn"]}, check=False, network=False)
    assert error_code(proc) == "InvalidParameterException"


def test_update_service_checks_the_configuration_against_the_new_revision_and_the_namespace(
    dockyard,
    taken,
    small_image,  # noqa: F811
):
    cluster, ns = taken["cluster"], taken["ns"]
    bare = definition(dockyard, "sc-db", small_image, containerPort=5432, name="other", appProtocol=None)
    proc = dockyard.aws("ecs", "update-service", "--cluster", cluster, "--service", "db",
                        "--task-definition", bare, check=False)
    assert error_code(proc) == INVALID and "portName 'db'" in proc.stderr
    proc = dockyard.aws("ecs", "update-service", "--cluster", cluster, "--service", "db",
                        "--service-connect-configuration", '{"enabled":true,"namespace":"nowhere.local"}',
                        check=False)
    assert error_code(proc) == "NamespaceNotFoundException"
    [svc] = dockyard.aws("ecs", "describe-services", "--cluster", cluster, "--services", "db")["services"]
    assert len(svc["deployments"]) == 1 and svc["taskDefinition"] == taken["td"]
    assert svc["deployments"][0]["serviceConnectConfiguration"]["namespace"] == ns["Arn"]
