"""Plain stand-ins for what ``mesh.seams`` describes (the runner's and discovery's views)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Alias:
    dns_name: str
    port: int


@dataclass(frozen=True)
class Weight:
    family: str
    revision: int
    weight: int


@dataclass(frozen=True)
class Split:
    weights: tuple[Weight, ...]
    test_family: str = ""
    test_revision: int | None = None
    test_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ConnectService:
    namespace: str
    discovery_name: str
    port_name: str = "web"
    app_protocol: str = "http"
    aliases: tuple[Alias, ...] = ()
    idle_timeout: float | None = None
    per_request_timeout: float | None = None
    traffic: Split | None = None
    tls: bool = False


@dataclass(frozen=True)
class TaskIngress:
    port_name: str
    port: int
    container_port: int
    app_protocol: str = "http"
    tls: bool = False


@dataclass(frozen=True)
class Task:
    task_arn: str
    namespace: str = "shop.local"
    cluster: str = "default"
    service: str = "front"
    family: str = "front"
    revision: int = 1
    alias_addresses: dict[str, str] = field(default_factory=dict)
    ingress: tuple[TaskIngress, ...] = ()
    egress_port: int = 15001


@dataclass(frozen=True)
class Instance:
    instance_id: str
    attributes: dict[str, str]
    healthy: bool = True


def instance(iid: str, ip: str, port: int = 8080, healthy: bool = True, **attrs: str) -> Instance:
    return Instance(iid, {"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": str(port), **attrs}, healthy)
