"""Pure parts of container instances and tasks: capacity, attributes, reservations."""

from __future__ import annotations

from runner import engineinfo, scheduler, taskdef


def test_capacity_is_ncpu_times_1024_and_memtotal_in_mib() -> None:
    assert engineinfo.capacity_from_info({"NCPU": 4, "MemTotal": 8 * 1024**3}) == (4096, 8192)


def test_builtin_attributes_follow_ecs_names() -> None:
    attrs = {
        a["name"]: a.get("value")
        for a in engineinfo.builtin_attributes(
            {"NCPU": 2, "OSType": "linux", "Architecture": "aarch64", "Name": "h1"}, "eu-west-1b"
        )
    }
    assert attrs["ecs.os-type"] == "linux" and attrs["ecs.os-family"] == "LINUX"
    assert attrs["ecs.cpu-architecture"] == "arm64"
    assert attrs["ecs.availability-zone"] == "eu-west-1b"
    assert attrs["ecs.instance-type"] == "docker.2cpu"
    assert "ecs.capability.task-eni" in attrs and attrs["ecs.capability.task-eni"] is None


def test_capabilities_follow_what_the_engine_reports() -> None:
    info = {
        "NCPU": 2, "OSType": "linux", "Architecture": "x86_64", "ApiVersion": "1.41",
        "Plugins": {"Log": ["gelf", "json-file", "local"], "Volume": ["local", "rexray/ebs"]},
    }
    names = {a["name"] for a in engineinfo.builtin_attributes(info, "us-east-1a")}
    prefix = "com.amazonaws.ecs.capability.docker-remote-api.1."
    api = sorted(int(n.removeprefix(prefix)) for n in names if n.startswith(prefix))
    assert api == list(range(17, 42))
    drivers = {n.rsplit(".", 1)[1] for n in names if ".logging-driver." in n}
    assert drivers == {"gelf", "json-file", "local", "none", "awslogs"}  # awslogs runs as json-file
    assert {"ecs.capability.docker-plugin.local", "ecs.capability.docker-plugin.rexray/ebs"} <= names
    assert "com.amazonaws.ecs.capability.logging-driver.syslog" not in names


def test_an_engine_that_does_not_report_its_api_version_gets_up_to_1_25() -> None:
    names = {a["name"] for a in engineinfo.builtin_attributes({"NCPU": 1}, "z")}
    assert "com.amazonaws.ecs.capability.docker-remote-api.1.25" in names
    assert "com.amazonaws.ecs.capability.docker-remote-api.1.26" not in names
    assert "com.amazonaws.ecs.capability.logging-driver.json-file" in names


def test_every_capability_a_runnable_definition_needs_is_advertised() -> None:
    """A definition using everything Dockyard runs places on a stock engine (no ATTRIBUTE)."""
    from runner import taskdef
    from runner.scheduler import HostView, Placement, needs_for, schedule
    from tests.unit.runner.test_taskdef import full

    info = {
        "NCPU": 4, "MemTotal": 8 * 1024**3, "OSType": "linux", "Architecture": "x86_64", "ApiVersion": "1.41",
        "Plugins": {
            "Log": ["awslogs", "fluentd", "gelf", "journald", "json-file", "local", "splunk", "syslog"],
            "Volume": ["local"],
        },
    }
    attrs = {a["name"]: a.get("value") for a in engineinfo.builtin_attributes(info, "z")}
    td = taskdef.parse(full())
    assert isinstance(schedule([HostView("h", 4096, 8192, attributes=attrs)], needs_for(td)), Placement)
    for driver in ("json-file", "awslogs", "gelf", "syslog", "none"):
        body = full()
        body["containerDefinitions"][0]["logConfiguration"] = {"logDriver": driver}
        assert isinstance(
            schedule([HostView("h", 4096, 8192, attributes=attrs)], needs_for(taskdef.parse(body))), Placement
        ), driver
    body = full()
    body["containerDefinitions"][0]["logConfiguration"] = {"logDriver": "awsfirelens"}
    result = schedule([HostView("h", 4096, 8192, attributes=attrs)], needs_for(taskdef.parse(body)))
    assert not result.fits
    assert result.closest.missing == ("com.amazonaws.ecs.capability.logging-driver.awsfirelens",)


def test_an_agent_counts_as_connected_until_its_heartbeat_is_older_than_the_timeout() -> None:
    assert engineinfo.agent_connected(False, heartbeat_at=100.0, now=130.0, timeout=30.0)
    assert not engineinfo.agent_connected(False, heartbeat_at=100.0, now=130.5, timeout=30.0)
    assert not engineinfo.agent_connected(False, heartbeat_at=100.0, now=104.0, timeout=3.0)
    assert engineinfo.agent_connected(True, heartbeat_at=0.0, now=1e9, timeout=3.0)  # the local engine


def test_a_task_reserves_task_level_cpu_and_memory_first() -> None:
    defn = {
        "cpu": "256",
        "memory": "512",
        "networkMode": "awsvpc",
        "containerDefinitions": [
            {"name": "a", "cpu": 10, "memory": 20, "portMappings": [{"containerPort": 80, "hostPort": 80}]}
        ],
    }
    assert _reserved(defn) == (256, 512, ())  # awsvpc: an address of its own, no host port
    assert _reserved(defn, {"cpu": "512"}) == (512, 512, ())


def test_without_task_level_sizes_containers_add_up_and_host_ports_count() -> None:
    defn = {
        "networkMode": "bridge",
        "containerDefinitions": [
            {"name": "a", "cpu": 10, "memory": 20, "portMappings": [{"containerPort": 80, "hostPort": 8080}]},
            {
                "name": "b",
                "cpu": 5,
                "memoryReservation": 7,
                "portMappings": [
                    {"containerPort": 53, "hostPort": 5353, "protocol": "udp"},
                    {"containerPort": 9},
                ],
            },
        ],
    }
    assert _reserved(defn) == (15, 27, ((8080, "tcp"), (5353, "udp")))
    host = dict(defn, networkMode="host", containerDefinitions=[
        {**c, "portMappings": [{k: v for k, v in m.items() if k != "hostPort"} for m in c["portMappings"]]}
        for c in defn["containerDefinitions"]
    ])
    assert _reserved(host)[2] == ((80, "tcp"), (53, "udp"), (9, "tcp"))


def _reserved(defn, overrides=None):
    containers = [{"image": "busybox", **c} for c in defn["containerDefinitions"]]
    td = taskdef.parse({"family": "f", **defn, "containerDefinitions": containers})
    needs = scheduler.task_needs(td, overrides)
    return needs.cpu, needs.memory, needs.ports
