"""Service Connect in the runner: what a meshed task carries (pure, frozen).

A service whose ``serviceConnectConfiguration.enabled`` is true gets, for each task it
starts, a :class:`TaskConnect`, decided when the task is placed and stored with it:

* ``namespace``: the Cloud Map namespace (name) of the configuration (or the cluster's
  ``serviceConnectDefaults``);
* ``services``: what the task serves (one :class:`ConnectEntry` per ``services[]`` entry:
  ``port_name`` names a port mapping of the task definition, ``container_port`` is its
  container port, ``ingress_port`` the sidecar's listener for it);
* ``alias_addresses``: every client alias ``dns_name`` of the namespace, each with its own
  address in 127.255.0.0/16 (written into the task's ``/etc/hosts``; the iptables of the
  task's network namespace redirect that range to ``egress_port``, the sidecar's virtual
  outbound listener);
* a service with only a namespace is a client: no ``services``.

See docs/mesh.md for the data path. The mesh reads this through ``mesh.seams.ConnectView``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ADMIN_PORT", "EGRESS_PORT", "Alias", "ConnectEntry", "TaskConnect", "TaskIngress",
           "connect_from_json", "connect_json"]

EGRESS_PORT = 15001  # the sidecar's virtual outbound listener, in the task's network namespace
ADMIN_PORT = 15000  # Envoy's admin interface, on 127.0.0.1 in the task only
ALIAS_NETWORK = "127.255.0.0/16"


@dataclass(frozen=True)
class Alias:
    dns_name: str
    port: int


@dataclass(frozen=True)
class ConnectEntry:
    """One ``serviceConnectConfiguration.services[]`` entry of an ECS service (the mesh's
    ``ConnectService``)."""

    namespace: str
    discovery_name: str
    port_name: str
    app_protocol: str = ""
    aliases: tuple[Alias, ...] = ()
    ingress_port_override: int | None = None
    idle_timeout: float | None = None
    per_request_timeout: float | None = None


@dataclass(frozen=True)
class TaskIngress:
    port_name: str
    port: int
    container_port: int
    app_protocol: str = ""


@dataclass(frozen=True)
class TaskConnect:
    """A meshed task's Service Connect state (the mesh's ``MeshedTask`` adds the task's ARN,
    cluster, service, family and revision)."""

    namespace: str
    ingress: tuple[TaskIngress, ...] = ()
    alias_addresses: Mapping[str, str] = field(default_factory=dict)
    egress_port: int = EGRESS_PORT


def connect_json(connect: TaskConnect | None) -> str:
    """The stored form of a task's Service Connect state ('' for none)."""
    if connect is None:
        return ""
    return json.dumps({
        "namespace": connect.namespace,
        "ingress": [{"portName": i.port_name, "port": i.port, "containerPort": i.container_port,
                     "appProtocol": i.app_protocol} for i in connect.ingress],
        "aliases": dict(connect.alias_addresses),
        "egressPort": connect.egress_port,
    }, sort_keys=True)


def connect_from_json(text: str) -> TaskConnect | None:
    """The inverse of :func:`connect_json`."""
    if not text:
        return None
    raw: dict[str, Any] = json.loads(text)
    return TaskConnect(
        namespace=raw["namespace"],
        ingress=tuple(TaskIngress(i["portName"], i["port"], i["containerPort"], i.get("appProtocol", ""))
                      for i in raw.get("ingress", [])),
        alias_addresses=dict(raw.get("aliases", {})),
        egress_port=raw.get("egressPort", EGRESS_PORT),
    )
