"""Task definition validation: ECS JSON in, frozen model out, ClientException naming the field."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from runner import query
from runner.errors import ClientException
from runner.taskdef import (
    HealthCheck,
    image_candidates,
    parse,
    parse_task_cpu,
    parse_task_memory,
    render,
    requires_attributes,
)

FARGATE = {
    "family": "my-app-task",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "containerDefinitions": [
        {"name": "my-app-container", "image": "my-app-image:latest",
         "portMappings": [{"containerPort": 80, "hostPort": 80}]}
    ],
}


def full() -> dict[str, Any]:
    """A bridge-mode definition using every field the runner acts on."""
    return {
        "family": "web",
        "networkMode": "bridge",
        "cpu": "1 vCPU",
        "memory": "1GB",
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": True,
                                                            "driver": "local"}},
            {"name": "scratch", "host": {}},
        ],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.os-type == linux"}],
        "containerDefinitions": [
            {
                "name": "web", "image": "localhost:5000/web:1", "cpu": 512, "memory": 256,
                "memoryReservation": 128, "essential": True,
                "portMappings": [{"containerPort": 8080}, {"containerPort": 53, "hostPort": 5353,
                                                           "protocol": "udp"}],
                "environment": [{"name": "MODE", "value": "prod"}],
                "environmentFiles": [{"value": "dockyard:secret:web-env", "type": "s3"}],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": "dockyard:secret:db-password"}],
                "command": ["httpd", "-f"], "entryPoint": ["/bin/sh", "-c"], "workingDirectory": "/app",
                "user": "1000:1000",
                "healthCheck": {"command": ["CMD-SHELL", "wget -q -O - localhost:8080"]},
                "dependsOn": [{"containerName": "init", "condition": "SUCCESS"},
                              {"containerName": "db", "condition": "HEALTHY"}],
                "stopTimeout": 10,
                "logConfiguration": {"logDriver": "json-file", "options": {"max-size": "10m"}},
                "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": True}],
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}],
                "dockerLabels": {"team": "blue"},
                "privileged": False,
            },
            {"name": "init", "image": "busybox", "essential": False, "memory": 16, "command": ["true"]},
            {"name": "db", "image": "busybox", "memory": 64,
             "healthCheck": {"command": ["CMD", "true"], "interval": 10, "startPeriod": 5}},
        ],
        "taskRoleArn": "arn:aws:iam::000000000000:role/web",
    }


def with_(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``base`` with ``path`` (dots; ints index lists) set, or deleted if value is ...."""
    out = copy.deepcopy(base)
    node: Any = out
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for k in keys[:-1]:
        node = node[k]
    if value is ...:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


def test_the_issues_fargate_definition_is_accepted_with_host_port_equal_to_container_port():
    td = parse(FARGATE, query.validate)
    assert (td.cpu, td.memory, td.network_mode) == (256, 512, "awsvpc")
    c = td.container("my-app-container")
    assert c.essential and c.cpu == 0 and c.port_mappings[0].host_port == 80
    assert td.cpu_needed == 256 and td.memory_needed == 512


def test_a_full_definition_keeps_every_field_the_agent_needs():
    td = parse(full(), query.validate)
    web = td.container("web")
    assert (td.cpu, td.memory) == (1024, 1024)
    assert web.health_check == HealthCheck(("CMD-SHELL", "wget -q -O - localhost:8080"), 30, 5, 3, None)
    assert td.container("db").health_check == HealthCheck(("CMD", "true"), 10, 5, 3, 5)
    assert web.secrets[0].secret_name == "db-password"
    assert web.environment_dict == {"MODE": "prod"}
    assert [p.host_port for p in web.port_mappings] == [0, 5353]
    assert td.host_ports == ((5353, "udp"),)
    assert web.mount_points[0].read_only and web.ulimits[0].hard_limit == 4096
    assert web.docker_labels == {"team": "blue"} and web.extra == {"privileged": False}
    assert td.volumes[0].host.source_path == "/srv/data"
    assert td.volumes[1].docker.scope == "shared" and td.volumes[2].host.source_path is None
    assert td.extra == {"taskRoleArn": "arn:aws:iam::000000000000:role/web"}
    assert [d.condition for d in web.depends_on] == ["SUCCESS", "HEALTHY"]


@pytest.mark.parametrize("raw", [FARGATE, full()], ids=["fargate", "full"])
def test_rendering_then_parsing_gives_the_same_model(raw):
    td = parse(raw, query.validate)
    assert parse(render(td), query.validate) == td


def test_rendering_fills_the_defaults_ecs_echoes():
    out = render(parse(full()))
    web = out["containerDefinitions"][0]
    assert web["healthCheck"] == {"command": ["CMD-SHELL", "wget -q -O - localhost:8080"],
                                  "interval": 30, "timeout": 5, "retries": 3}
    assert web["portMappings"][0] == {"containerPort": 8080, "hostPort": 0, "protocol": "tcp"}
    assert out["containerDefinitions"][1]["cpu"] == 0 and out["cpu"] == "1024" and out["memory"] == "1024"
    assert out["volumes"][1]["dockerVolumeConfiguration"]["scope"] == "shared"
    assert "secretName" not in str(out) and web["privileged"] is False


@pytest.mark.parametrize(
    ("text", "units"),
    [("256", 256), ("1 vCPU", 1024), ("0.25 vcpu", 256), ("2vCPU", 2048), (512, 512)],
)
def test_task_cpu_strings_become_cpu_units(text, units):
    assert parse_task_cpu(text) == units


@pytest.mark.parametrize(("text", "mib"), [("512", 512), ("1GB", 1024), ("0.5GB", 512), ("2 GB", 2048)])
def test_task_memory_strings_become_mib(text, mib):
    assert parse_task_memory(text) == mib


@pytest.mark.parametrize("text", ["fast", "-1", "1.5", "1 GHz", "0.1 vCPU", "64"])
def test_bad_task_cpu_is_refused(text):
    with pytest.raises(ClientException, match="task definition: cpu"):
        parse_task_cpu(text)


# (description, base, path, value, message fragment)
INVALID = [
    ("container memory below 6", full(), "containerDefinitions.0.memory", 4,
     "container 'web': memory must be an integer >= 6"),
    ("memory as a string", full(), "containerDefinitions.0.memory", "256", "container 'web': memory"),
    ("reservation above memory", full(), "containerDefinitions.0.memoryReservation", 512,
     "container 'web': memoryReservation 512 must be <= memory 256"),
    ("no image", full(), "containerDefinitions.0.image", ..., "container 'web': image"),
    ("image with spaces", full(), "containerDefinitions.0.image", "my image", "container 'web': image"),
    ("bad container name", full(), "containerDefinitions.0.name", "we b", "containerDefinitions[0].name"),
    ("negative cpu", full(), "containerDefinitions.0.cpu", -1, "container 'web': cpu"),
    ("essential not bool", full(), "containerDefinitions.0.essential", "yes", "container 'web': essential"),
    ("port out of range", full(), "containerDefinitions.0.portMappings.0.containerPort", 70000,
     "container 'web': portMappings.containerPort"),
    ("bad protocol", full(), "containerDefinitions.0.portMappings.0.protocol", "sctp",
     "portMappings.protocol"),
    ("awsvpc host port differs", FARGATE, "containerDefinitions.0.portMappings.0.hostPort", 8080,
     "container 'my-app-container': portMappings.hostPort 8080 must equal containerPort 80"),
    ("environment without name", full(), "containerDefinitions.0.environment.0.name", ...,
     "container 'web': environment.name"),
    ("secret that is no reference", full(), "containerDefinitions.0.secrets.0.valueFrom", "hunter2",
     "container 'web': secrets.valueFrom 'hunter2' is not a secret reference"),
    ("command not a list", full(), "containerDefinitions.0.command", "httpd -f", "container 'web': command"),
    ("health check without CMD", full(), "containerDefinitions.0.healthCheck.command", ["true"],
     "container 'web': healthCheck.command"),
    ("health interval too short", full(), "containerDefinitions.0.healthCheck.interval", 1,
     "healthCheck.interval must be an integer between 5 and 300"),
    ("health retries too many", full(), "containerDefinitions.0.healthCheck.retries", 11,
     "healthCheck.retries"),
    ("unknown condition", full(), "containerDefinitions.0.dependsOn.0.condition", "READY",
     "dependsOn.condition"),
    ("depends on a missing container", full(), "containerDefinitions.0.dependsOn.0.containerName", "nope",
     "dependsOn.containerName 'nope'"),
    ("HEALTHY without health check", full(), "containerDefinitions.2.healthCheck", ...,
     "dependsOn 'db' HEALTHY requires that container to have a healthCheck"),
    ("SUCCESS on an essential container", full(), "containerDefinitions.1.essential", True,
     "dependsOn 'init' SUCCESS requires that container to be non-essential"),
    ("stop timeout too long", full(), "containerDefinitions.0.stopTimeout", 121, "stopTimeout"),
    ("unknown log driver", full(), "containerDefinitions.0.logConfiguration.logDriver", "papertrail",
     "logConfiguration.logDriver"),
    ("mount of a missing volume", full(), "containerDefinitions.0.mountPoints.0.sourceVolume", "nope",
     "mountPoints.sourceVolume 'nope'"),
    ("relative container path", full(), "containerDefinitions.0.mountPoints.0.containerPath", "data",
     "mountPoints.containerPath"),
    ("soft ulimit above hard", full(), "containerDefinitions.0.ulimits.0.softLimit", 8192,
     "ulimits[nofile].softLimit must be <= hardLimit"),
    ("unknown ulimit", full(), "containerDefinitions.0.ulimits.0.name", "files", "ulimits.name"),
    ("labels not strings", full(), "containerDefinitions.0.dockerLabels", {"a": 1}, "dockerLabels"),
    ("unknown container field", full(), "containerDefinitions.0.colour", "red", "unknown field 'colour'"),
    ("relative host path", full(), "volumes.0.host.sourcePath", "srv", "host.sourcePath"),
    ("bad volume scope", full(), "volumes.1.dockerVolumeConfiguration.scope", "global", "scope"),
    ("bad family", full(), "family", "my app", "task definition: family"),
    ("no containers", full(), "containerDefinitions", [], "containerDefinitions must be a non-empty list"),
    ("bad network mode", full(), "networkMode", "overlay", "networkMode"),
    ("bad compatibility", full(), "requiresCompatibilities", ["LAMBDA"], "requiresCompatibilities"),
    ("bad task memory", full(), "memory", "lots", "task definition: memory"),
    ("containers exceed task memory", full(), "memory", "300",
     "memory 300 is less than the 336 MiB its containers reserve"),
    ("fargate without awsvpc", FARGATE, "networkMode", "bridge", "networkMode must be awsvpc"),
    ("fargate invalid size", FARGATE, "memory", "4096", "memory 4096 is not valid with cpu 256 on Fargate"),
    ("fargate without cpu", FARGATE, "cpu", ..., "cpu and memory are required"),
    ("bad placement expression", full(), "placementConstraints.0.expression", "attribute:x ==",
     "placementConstraints.expression"),
    ("distinctInstance in a task definition", full(), "placementConstraints.0.type", "distinctInstance",
     "placementConstraints.type must be memberOf"),
]


@pytest.mark.parametrize(("base", "path", "value", "message"), [c[1:] for c in INVALID],
                         ids=[c[0] for c in INVALID])
def test_an_invalid_definition_is_refused_naming_the_field(base, path, value, message):
    with pytest.raises(ClientException) as e:
        parse(with_(base, path, value), query.validate)
    assert message in e.value.message


def test_a_container_without_any_memory_needs_task_memory():
    raw = with_(with_(full(), "memory", ...), "containerDefinitions.0.memory", ...)
    raw = with_(raw, "containerDefinitions.0.memoryReservation", ...)
    with pytest.raises(ClientException, match="container 'web': memory or memoryReservation is required"):
        parse(raw)


def test_a_dependency_cycle_is_refused():
    raw = with_(full(), "containerDefinitions.2.dependsOn", [{"containerName": "web", "condition": "START"}])
    with pytest.raises(ClientException, match="cycle"):
        parse(raw)


def test_two_containers_cannot_claim_the_same_host_port():
    raw = with_(full(), "containerDefinitions.2.portMappings", [{"containerPort": 53, "hostPort": 5353,
                                                                 "protocol": "udp"}])
    with pytest.raises(ClientException) as e:
        parse(raw)
    assert "container 'db': portMappings.hostPort 5353/udp is already used" in e.value.message


def test_no_essential_container_is_refused():
    raw = with_(FARGATE, "containerDefinitions.0.essential", False)
    with pytest.raises(ClientException, match="at least one container must be essential"):
        parse(raw)


@pytest.mark.parametrize("mode", ["host", "awsvpc"])
def test_host_port_defaults_to_the_container_port_in_host_and_awsvpc_mode(mode):
    raw = with_(with_(FARGATE, "networkMode", mode), "requiresCompatibilities", ["EC2"])
    raw = with_(raw, "containerDefinitions.0.portMappings.0.hostPort", ...)
    assert parse(raw).containers[0].port_mappings[0].host_port == 80


def test_port_mappings_are_refused_in_network_mode_none():
    raw = with_(with_(FARGATE, "networkMode", "none"), "requiresCompatibilities", ["EC2"])
    with pytest.raises(ClientException, match="not allowed in network mode none"):
        parse(raw)


def test_required_attributes_name_the_capabilities_used():
    names = {a["name"] for a in requires_attributes(parse(full()))}
    assert {"ecs.capability.container-health-check", "ecs.capability.container-ordering",
            "com.amazonaws.ecs.capability.logging-driver.json-file"} <= names


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("my-app-image:latest", ["127.0.0.1:5000/my-app-image:latest", "my-app-image:latest"]),
        ("team/app", ["127.0.0.1:5000/team/app", "team/app"]),
        ("localhost:5000/app:1", ["localhost:5000/app:1"]),
        ("ghcr.io/org/app@sha256:" + "a" * 64, ["ghcr.io/org/app@sha256:" + "a" * 64]),
        ("localhost/app", ["localhost/app"]),
    ],
)
def test_an_unqualified_image_is_looked_up_in_dockyards_registry_first(image, expected):
    assert image_candidates(image, "127.0.0.1:5000") == expected


JUNK = [None, 0, -5, 10**12, 1.5, True, "", "x", "/abs", [], [1], ["a"], {}, {"a": 1}, {"name": 3}]


def _paths(node: Any, prefix: str = "") -> list[str]:
    out = []
    if isinstance(node, dict):
        items = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return out
    for k, v in items:
        path = f"{prefix}.{k}" if prefix else str(k)
        out.append(path)
        out.extend(_paths(v, path))
    return out


@pytest.mark.parametrize("base", [full(), FARGATE], ids=["full", "fargate"])
def test_junk_in_any_field_is_refused_with_a_client_exception_or_round_trips(base):
    for path in _paths(base):
        for junk in [*JUNK, ...]:
            try:
                td = parse(with_(base, path, junk), query.validate)
            except ClientException as e:
                assert e.message.startswith("Invalid setting for "), (path, junk)
                continue
            assert parse(render(td), query.validate) == td, (path, junk)
