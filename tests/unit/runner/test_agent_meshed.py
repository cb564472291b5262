"""runner.agent.meshed: a meshed task's pause container, redirect and sidecar specs (pure)."""

from __future__ import annotations

import json
import re
from typing import Any

from runner.agent import meshed, spec
from runner.connect import TaskConnect, TaskIngress
from runner.data import Binding

P = spec.Placement(task_id="t1", task_arn="arn:aws:ecs:r:a:task/c/t1", cluster="c", instance_arn="arn:i",
                   owner="o1", pause_id="pause123", dns=("172.17.0.1",))
CONNECT = TaskConnect("shop.local", (TaskIngress("web", 15100, 8080, "http"),),
                      {"db.shop.local": "127.255.0.2", "cache.shop.local": "127.255.0.3"})


def _defn(mode: str = "bridge", **container: Any) -> dict[str, Any]:
    web = {"name": "web", "image": "app:1",
           "portMappings": [{"containerPort": 8080, "hostPort": 0, "name": "web"}], **container}
    side = {"name": "log", "image": "log:1", "essential": False,
            "portMappings": [{"containerPort": 9000, "hostPort": 9000}]}
    return {"family": "f", "networkMode": mode, "containerDefinitions": [web, side]}


def test_the_sidecar_is_named_as_ecs_names_its_service_connect_container_stably():
    name = meshed.sidecar_name("t1")
    assert re.fullmatch(r"ecs-service-connect-[A-Za-z0-9]{5}", name)
    assert meshed.sidecar_name("t1") == name and meshed.sidecar_name("t2") != name
    assert meshed.docker_name("t1", name) == f"dy-t1-{name}"
    assert meshed.docker_name("t1", meshed.REDIRECT_NAME) == "dy-t1.redirect"


def test_a_meshed_bridge_tasks_pause_container_holds_the_aliases_and_publishes_app_and_ingress_ports():
    pause = meshed.pause_spec(_defn(extraHosts=[{"hostname": "legacy", "ipAddress": "10.0.0.9"}]), P, CONNECT)
    assert pause.name == "dy-t1.pause" and pause.image == spec.PAUSE_IMAGE
    assert pause.host["network_mode"] == "bridge" and pause.host["dns"] == ["172.17.0.1"]
    assert pause.host["extra_hosts"] == {"db.shop.local": "127.255.0.2", "cache.shop.local": "127.255.0.3",
                                         "legacy": "10.0.0.9"}
    assert pause.host["port_bindings"] == {"8080/tcp": None, "9000/tcp": 9000, "15100/tcp": None}
    assert pause.ports == [(8080, "tcp"), (9000, "tcp"), (15100, "tcp")]


def test_a_meshed_awsvpc_tasks_pause_container_holds_the_aliases_and_publishes_nothing():
    pause = meshed.pause_spec(_defn("awsvpc"), P, CONNECT)
    assert pause.host["extra_hosts"] == dict(CONNECT.alias_addresses)
    assert "port_bindings" not in pause.host and pause.ports == []


def test_a_meshed_tasks_containers_join_the_pause_containers_namespace_in_bridge_mode_too():
    p = spec.Placement(**{**P.__dict__, "meshed": True})
    web, log = spec.container_specs(_defn(extraHosts=[{"hostname": "legacy", "ipAddress": "10.0.0.9"}]), p)
    for s in (web, log):
        assert s.host["network_mode"] == "container:pause123"
        assert "port_bindings" not in s.host and s.ports == [] and s.hostname is None
        assert "extra_hosts" not in s.host and "dns" not in s.host  # Docker refuses them on a joiner
    plain, _ = spec.container_specs(_defn(), P)
    assert plain.host["network_mode"] == "bridge" and plain.host["port_bindings"] == {"8080/tcp": None}


def test_the_redirect_sends_the_alias_network_to_the_egress_port_from_the_sidecar_image_with_net_admin():
    r = meshed.redirect_spec(P, "dockyard/envoy:1.40.0", TaskConnect("shop.local", egress_port=15001))
    assert r.name == "dy-t1.redirect" and r.image == "dockyard/envoy:1.40.0"
    assert r.entrypoint == ["/usr/sbin/iptables"]
    assert r.command == ["-t", "nat", "-A", "OUTPUT", "-d", "127.255.0.0/16", "-p", "tcp", "-j", "REDIRECT",
                         "--to-ports", "15001"]
    assert r.host == {"network_mode": "container:pause123", "cap_add": ["NET_ADMIN"]}
    assert r.labels[spec.LABEL_TASK] == P.task_arn and r.labels[spec.LABEL_OWNER] == "o1"


def test_the_sidecar_runs_envoy_on_its_bootstrap_in_the_tasks_namespace():
    boot = {"node": {"id": P.task_arn, "cluster": "web"}}
    s = meshed.sidecar_spec(P, "dockyard/envoy:1.40.0", boot)
    name = meshed.sidecar_name("t1")
    assert s.name == f"dy-t1-{name}" and s.labels[spec.LABEL_CONTAINER] == name
    assert s.entrypoint is None  # the image's: /usr/local/bin/envoy
    assert s.command[0] == "--config-yaml" and json.loads(s.command[1]) == boot
    assert "--disable-hot-restart" in s.command
    assert s.command[s.command.index("--drain-time-s") + 1] == "2"
    assert s.command[s.command.index("--drain-strategy") + 1] == "immediate"
    assert s.host["network_mode"] == "container:pause123" and s.stop_timeout == meshed.SIDECAR_STOP_TIMEOUT


def test_the_pause_containers_bindings_go_to_the_container_whose_port_they_publish():
    bound = [Binding(8080, 32770), Binding(9000, 9000), Binding(15100, 32771)]
    out = meshed.split_bindings(_defn()["containerDefinitions"], CONNECT, "t1", bound)
    assert out == {"web": (Binding(8080, 32770),), "log": (Binding(9000, 9000),),
                   meshed.sidecar_name("t1"): (Binding(15100, 32771),)}


def test_a_meshed_task_stops_its_app_containers_then_its_sidecar():
    defs = [{"name": "db"}, {"name": "web", "dependsOn": [{"containerName": "db", "condition": "START"}]}]
    assert meshed.stop_waves(defs, "t1") == [["web"], ["db"], [meshed.sidecar_name("t1")]]
