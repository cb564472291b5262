"""Pure specs of a meshed task's own containers (a task whose ``connect`` is set; docs/mesh.md).

A meshed task (``bridge`` or ``awsvpc``) runs, besides its app containers:

* the **pause container** (:func:`pause_spec`), which holds the task's network namespace as
  for ``awsvpc``: every other container joins it (``container:<pause id>``). It carries
  ``ExtraHosts`` with every alias of ``connect.alias_addresses`` (``dnsName:127.255.x.y``),
  and Docker gives the containers that join its namespace its ``/etc/hosts`` (a ``container:``
  joiner's ``HostsPath`` is the pause container's file), so each app resolves the aliases. In
  ``bridge`` mode it publishes the app containers' port mappings and the ingress ports
  (``connect.ingress[].port``, ephemeral host ports); the containers' own ``extraHosts`` go
  on it too (Docker refuses them on a joiner);
* the **redirect** (:func:`redirect_spec`), a one-shot container from the sidecar image
  with ``NET_ADMIN`` in the task's namespace: ``iptables -t nat -A OUTPUT -d 127.255.0.0/16
  -p tcp -j REDIRECT --to-ports <egress port>``, run to completion before the sidecar starts;
* the **sidecar** (:func:`sidecar_spec`), Envoy from the sidecar image with the bootstrap as
  ``--config-yaml``, named as ECS names its Service Connect container
  (``ecs-service-connect-<5 characters>``, :func:`sidecar_name`).

Where the published ports are reported (:func:`split_bindings`): each app container's state
holds the bindings of its own port mappings, the sidecar's state those of the ingress ports,
so ``task.endpoint(sidecar_name(task.id), ingress.port)`` is where an ingress port is reached
(the task's address in ``awsvpc``, the host port in ``bridge``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from runner.agent import lifecycle, spec
from runner.agent.transport import ContainerSpec
from runner.connect import ALIAS_NETWORK, TaskConnect
from runner.data import Binding
from runner.numbers import loose_int

__all__ = [
    "MESHED_MODES",
    "REDIRECT_NAME",
    "SIDECAR_PREFIX",
    "SIDECAR_STOP_TIMEOUT",
    "docker_name",
    "pause_spec",
    "redirect_command",
    "redirect_spec",
    "sidecar_args",
    "sidecar_name",
    "sidecar_spec",
    "split_bindings",
    "stop_waves",
]

SIDECAR_PREFIX = "ecs-service-connect-"
REDIRECT_NAME = "~redirect"  # its Docker name is dy-<task>.redirect (a dot: never an ECS name)
MESHED_MODES = ("bridge", "awsvpc")
SIDECAR_STOP_TIMEOUT = 5  # seconds of SIGTERM grace: Envoy closes its listeners and exits at once
IPTABLES = "/usr/sbin/iptables"
_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def sidecar_name(task_id: str) -> str:
    """The ECS name of a task's Service Connect container: ``ecs-service-connect-`` and five
    letters or digits derived from the task id (stable across restarts of the control plane)."""
    n = int.from_bytes(hashlib.sha256(task_id.encode()).digest()[:8], "big")
    suffix = ""
    for _ in range(5):
        n, i = divmod(n, len(_ALPHABET))
        suffix += _ALPHABET[i]
    return SIDECAR_PREFIX + suffix


def docker_name(task_id: str, name: str) -> str:
    """The Docker name of a meshed task's container ``name`` (the redirect's: ``dy-<task>.redirect``)."""
    if name == REDIRECT_NAME:
        return f"dy-{task_id}.redirect"
    return spec.container_name(task_id, name)


def pause_spec(defn: Mapping[str, Any], p: spec.Placement, connect: TaskConnect) -> ContainerSpec:
    """The pause container of a meshed task (module docstring): :func:`spec.pause_spec` plus the
    aliases as ``ExtraHosts`` and, in ``bridge`` mode, the published ports."""
    base = spec.pause_spec(p)
    hosts: dict[str, str] = {}
    mode = defn.get("networkMode") or "bridge"
    host: dict[str, Any] = dict(base.host)
    ports: list[tuple[int, str]] = []
    if mode == "bridge":
        mappings: list[Mapping[str, Any]] = []
        for c in defn.get("containerDefinitions") or []:
            mappings += c.get("portMappings") or []
            hosts.update({h["hostname"]: h["ipAddress"] for h in c.get("extraHosts") or []})
        mappings += [{"containerPort": i.port, "protocol": "tcp"} for i in connect.ingress]
        ports, bindings = spec.port_bindings(mappings, "bridge")
        ports = list(dict.fromkeys(ports))
        if bindings:
            host["port_bindings"] = bindings
    hosts.update(connect.alias_addresses)
    if hosts:
        host["extra_hosts"] = hosts
    return replace(base, ports=ports, host=host)


def redirect_command(connect: TaskConnect) -> list[str]:
    """The arguments of ``iptables`` that send the alias addresses to the sidecar's egress."""
    return ["-t", "nat", "-A", "OUTPUT", "-d", ALIAS_NETWORK, "-p", "tcp", "-j", "REDIRECT",
            "--to-ports", str(connect.egress_port)]


def redirect_spec(p: spec.Placement, image: str, connect: TaskConnect) -> ContainerSpec:
    """The one-shot container that installs the redirect in the task's namespace."""
    return ContainerSpec(
        name=docker_name(p.task_id, REDIRECT_NAME),
        image=image,
        labels=spec.labels(p, REDIRECT_NAME),
        entrypoint=[IPTABLES],
        command=redirect_command(connect),
        host={"network_mode": f"container:{p.pause_id}", "cap_add": ["NET_ADMIN"]},
    )


def sidecar_args(bootstrap: Mapping[str, Any]) -> list[str]:
    """Envoy's arguments: the bootstrap inline; no hot restart (one Envoy per container); a
    short drain when LDS removes a listener (``--drain-time-s``), every connection told at
    once (``immediate``). On SIGTERM Envoy closes its listeners and exits without a drain: the
    app has stopped first and the task left the other sidecars' endpoints before that."""
    return ["--config-yaml", json.dumps(bootstrap, separators=(",", ":"), sort_keys=True),
            "--disable-hot-restart", "--drain-time-s", "2", "--drain-strategy", "immediate",
            "-l", "warning"]


def sidecar_spec(p: spec.Placement, image: str, bootstrap: Mapping[str, Any]) -> ContainerSpec:
    """The Envoy container of a meshed task, in its namespace."""
    name = sidecar_name(p.task_id)
    return ContainerSpec(
        name=docker_name(p.task_id, name),
        image=image,
        labels=spec.labels(p, name),
        command=sidecar_args(bootstrap),
        stop_timeout=SIDECAR_STOP_TIMEOUT,
        host={"network_mode": f"container:{p.pause_id}",
              "log_config": {"type": "json-file", "config": {}}},
    )


def split_bindings(
    defs: Sequence[Mapping[str, Any]], connect: TaskConnect, task_id: str, bound: Iterable[Binding]
) -> dict[str, tuple[Binding, ...]]:
    """The pause container's published ports (``bound``) by container: an app container gets
    those of its port mappings, the sidecar (:func:`sidecar_name`) those of the ingress ports."""
    bound = list(bound)
    out: dict[str, tuple[Binding, ...]] = {}
    for c in defs:
        mine = {(loose_int(m.get("containerPort")), str(m.get("protocol") or "tcp").lower())
                for m in c.get("portMappings") or []}
        out[c["name"]] = tuple(b for b in bound if (b.container_port, b.protocol) in mine)
    ingress = {i.port for i in connect.ingress}
    out[sidecar_name(task_id)] = tuple(b for b in bound if b.container_port in ingress)
    return out


def stop_waves(defs: Sequence[Mapping[str, Any]], task_id: str) -> list[list[str]]:
    """The stop order of a meshed task: the app containers as :func:`lifecycle.stop_waves`
    says, then the sidecar (the pause container goes last, at deprovisioning)."""
    return [*lifecycle.stop_waves(defs), [sidecar_name(task_id)]]
