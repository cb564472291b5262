"""runner.agent.spec: ECS task definition -> Docker container specs (pure)."""

from __future__ import annotations

from typing import Any

from runner.agent import spec

P = spec.Placement(
    task_id="t1", task_arn="arn:aws:ecs:r:a:task/c/t1", cluster="c", instance_arn="arn:i", owner="o1"
)


def _defn(**over: Any) -> dict[str, Any]:
    c = {"name": "web", "image": "app:1", "essential": True}
    c.update(over.pop("container", {}))
    return {"family": "f", "networkMode": "bridge", "containerDefinitions": [c], **over}


def test_cpu_and_memory_become_docker_limits() -> None:
    (s,) = spec.container_specs(_defn(container={"cpu": 512, "memory": 256, "memoryReservation": 128}), P)
    assert s.host["cpu_shares"] == 512
    assert s.host["mem_limit"] == 256 * 1024 * 1024
    assert s.host["mem_reservation"] == 128 * 1024 * 1024
    assert "nano_cpus" not in s.host


def test_task_level_cpu_caps_every_container_and_memory_is_the_default_limit() -> None:
    (s,) = spec.container_specs(_defn(cpu="256", memory="512"), P)
    assert s.host["nano_cpus"] == 250_000_000
    assert s.host["mem_limit"] == 512 * 1024 * 1024


def test_a_tiny_cpu_share_is_raised_to_dockers_minimum() -> None:
    (s,) = spec.container_specs(_defn(container={"cpu": 1}), P)
    assert s.host["cpu_shares"] == 2


def test_containers_carry_labels_naming_their_task() -> None:
    (s,) = spec.container_specs(_defn(container={"dockerLabels": {"team": "a"}}), P)
    assert s.labels == {
        "team": "a",
        spec.LABEL_TASK: P.task_arn,
        spec.LABEL_CLUSTER: "c",
        spec.LABEL_CONTAINER: "web",
        spec.LABEL_INSTANCE: "arn:i",
        spec.LABEL_OWNER: "o1",
    }
    assert s.name == "dy-t1-web"


def test_health_check_defaults_follow_ecs() -> None:
    hc = spec.healthcheck({"command": ["CMD-SHELL", "true"]})
    assert hc == {
        "test": ["CMD-SHELL", "true"],
        "interval": 30 * 10**9,
        "timeout": 5 * 10**9,
        "retries": 3,
        "start_period": 0,
    }
    assert spec.healthcheck({"command": ["CMD", "x"], "interval": 5, "retries": 1, "startPeriod": 2}) == {
        "test": ["CMD", "x"],
        "interval": 5 * 10**9,
        "timeout": 5 * 10**9,
        "retries": 1,
        "start_period": 2 * 10**9,
    }
    assert spec.healthcheck(None) is None


def test_bridge_mode_publishes_ports_and_zero_host_port_means_ephemeral() -> None:
    (s,) = spec.container_specs(
        _defn(
            container={
                "portMappings": [
                    {"containerPort": 80, "hostPort": 8080},
                    {"containerPort": 53, "protocol": "udp"},
                ]
            }
        ),
        P,
    )
    assert s.host["port_bindings"] == {"80/tcp": 8080, "53/udp": None}
    assert s.ports == [(80, "tcp"), (53, "udp")]
    assert s.host["network_mode"] == "bridge"


def test_awsvpc_containers_join_the_pause_containers_namespace_and_publish_nothing() -> None:
    p = spec.Placement(**{**P.__dict__, "pause_id": "pause123"})
    (s,) = spec.container_specs(
        _defn(networkMode="awsvpc", container={"portMappings": [{"containerPort": 80, "hostPort": 80}]}), p
    )
    assert s.host["network_mode"] == "container:pause123"
    assert "port_bindings" not in s.host and s.ports == []
    pause = spec.pause_spec(p)
    assert pause.name == "dy-t1.pause" and pause.image == spec.PAUSE_IMAGE
    assert pause.labels[spec.LABEL_CONTAINER] == spec.PAUSE_NAME


def test_the_task_nameserver_goes_to_bridge_and_host_containers_and_the_awsvpc_pause_container() -> None:
    p = spec.Placement(**{**P.__dict__, "pause_id": "pause123", "dns": ("172.17.0.1",)})
    (bridge,) = spec.container_specs(_defn(), p)
    assert bridge.host["dns"] == ["172.17.0.1"]
    (own,) = spec.container_specs(_defn(container={"dnsServers": ["10.0.0.2"]}), p)
    assert own.host["dns"] == ["10.0.0.2"]  # the definition's own dnsServers win
    (joined,) = spec.container_specs(_defn(networkMode="awsvpc"), p)
    assert "dns" not in joined.host  # Docker refuses Dns beside container:<id>; it shares the pause's
    assert spec.pause_spec(p).host["dns"] == ["172.17.0.1"]
    (on_host,) = spec.container_specs(_defn(networkMode="host"), p)
    assert on_host.host["dns"] == ["172.17.0.1"]
    (on_host,) = spec.container_specs(_defn(networkMode="host", container={"dnsServers": ["10.0.0.2"]}), p)
    assert "dns" not in on_host.host  # as before: a host task's dnsServers are not applied
    (offline,) = spec.container_specs(_defn(networkMode="none"), p)
    assert "dns" not in offline.host
    assert "dns" not in spec.pause_spec(P).host and "dns" not in spec.container_specs(_defn(), P)[0].host


def test_the_task_dns_address_is_a_local_engines_gateway_or_the_configured_one() -> None:
    gw = "172.17.0.1"
    assert spec.task_dns_address("auto", "unix:///var/run/docker.sock", gw) == gw
    assert spec.task_dns_address("auto", "tcp://127.0.0.1:2375", gw) == gw
    assert spec.task_dns_address("auto", "tcp://[::1]:2375", gw) == gw
    assert spec.task_dns_address("auto", "tcp://10.1.2.3:2376", gw) == ""  # its gateway is another machine's
    assert spec.task_dns_address("auto", "ssh://build@other", gw) == ""
    assert spec.task_dns_address("auto", "unix:///run/x.sock", "") == ""
    assert spec.task_dns_address("off", "unix:///var/run/docker.sock", gw) == ""
    assert spec.task_dns_address(" 192.0.2.2 ", "tcp://10.1.2.3:2376", gw) == "192.0.2.2"


def test_host_and_none_network_modes_pass_through() -> None:
    for mode in ("host", "none"):
        (s,) = spec.container_specs(_defn(networkMode=mode), P)
        assert s.host["network_mode"] == mode


def test_command_environment_and_overrides() -> None:
    p = spec.Placement(
        **{
            **P.__dict__,
            "overrides": {
                "containerOverrides": [
                    {"name": "web", "command": ["b"], "environment": [{"name": "X", "value": "2"}]}
                ]
            },
            "environment": {"web": {"SECRET": "s"}},
        }
    )
    (s,) = spec.container_specs(
        _defn(
            container={
                "command": ["a"],
                "entryPoint": ["/bin/sh", "-c"],
                "workingDirectory": "/w",
                "user": "nobody",
                "environment": [{"name": "X", "value": "1"}, {"name": "Y", "value": "y"}],
            }
        ),
        p,
    )
    assert s.command == ["b"] and s.entrypoint == ["/bin/sh", "-c"]
    assert s.environment == {"X": "2", "Y": "y", "SECRET": "s"}
    assert s.working_dir == "/w" and s.user == "nobody"


def test_mount_points_become_binds_for_host_paths_and_docker_volumes() -> None:
    defn = _defn(
        volumes=[
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task"}},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared"}},
        ],
        container={
            "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data", "readOnly": True},
                {"sourceVolume": "cache", "containerPath": "/cache"},
                {"sourceVolume": "shared", "containerPath": "/s"},
            ]
        },
    )
    (s,) = spec.container_specs(defn, P)
    assert s.host["binds"] == ["/srv/data:/data:ro", "dy-t1-cache:/cache:rw", "shared:/s:rw"]


def test_task_volumes_are_the_task_scoped_and_hostless_docker_volumes_its_containers_mount() -> None:
    defn = _defn(
        volumes=[
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {"name": "cache", "dockerVolumeConfiguration": {"scope": "task", "driver": "local"}},
            {"name": "scratch"},
            {"name": "shared", "dockerVolumeConfiguration": {"scope": "shared"}},
            {"name": "unused"},
        ],
        container={
            "mountPoints": [
                {"sourceVolume": "data", "containerPath": "/data"},
                {"sourceVolume": "cache", "containerPath": "/cache"},
                {"sourceVolume": "scratch", "containerPath": "/tmp/s"},
                {"sourceVolume": "cache", "containerPath": "/again"},
                {"sourceVolume": "shared", "containerPath": "/s"},
            ]
        },
    )
    assert spec.task_volumes(defn, "t1") == ["dy-t1-cache", "dy-t1-scratch"]
    assert spec.task_volumes(_defn(), "t1") == []


def test_ulimits_log_configuration_and_stop_timeout() -> None:
    (s,) = spec.container_specs(
        _defn(
            container={
                "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 2048}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "g"}},
                "stopTimeout": 7,
            }
        ),
        P,
    )
    assert s.host["ulimits"] == [{"name": "nofile", "soft": 1024, "hard": 2048}]
    assert s.host["log_config"] == {"type": "json-file", "config": {}}
    assert s.stop_timeout == 7


def test_host_pid_and_ipc_modes_are_rendered() -> None:
    defn = {"pidMode": "host", "ipcMode": "host", "containerDefinitions": [{"name": "a", "image": "i"}]}
    host = spec.container_specs(defn, P)[0].host
    assert (host["pid_mode"], host["ipc_mode"]) == ("host", "host")
    task = {**defn, "pidMode": "task", "ipcMode": "task"}
    assert "pid_mode" not in spec.container_specs(task, P)[0].host
    plain = spec.container_specs({"containerDefinitions": [{"name": "a", "image": "i"}]}, P)[0].host
    assert "pid_mode" not in plain and "ipc_mode" not in plain
