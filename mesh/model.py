"""The desired mesh state a snapshot is computed from (frozen, minimal for now).

* a ``Service`` is an upstream: one Envoy cluster fed by EDS (for a canary, ``web-v1`` and
  ``web-v2`` are two services);
* a ``Route`` is what a client calls: a virtual host ``name`` reached on egress ``port``,
  whose requests under ``prefix`` are split over weighted services, with an optional timeout
  and retry policy;
* a ``Client`` is a node (a sidecar, by its node id) and the routes it may call;
* ``Endpoint`` is one address of a service, with its health.

Bad values raise ``ValueError`` at construction, so nothing malformed reaches a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    healthy: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"endpoint port {self.port} out of range")


@dataclass(frozen=True)
class Service:
    name: str
    connect_timeout: float = 1.0

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("service name is empty")
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")


@dataclass(frozen=True)
class Target:
    """One weighted destination of a route; weight 0 keeps the cluster but sends it nothing."""

    service: str
    weight: int

    def __post_init__(self) -> None:
        if not 0 <= self.weight <= 10000:
            raise ValueError(f"weight {self.weight} out of range 0..10000")


@dataclass(frozen=True)
class Retry:
    attempts: int
    retry_on: str = "5xx,reset,connect-failure"
    per_try_timeout: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 0:
            raise ValueError("retry attempts must not be negative")


@dataclass(frozen=True)
class Route:
    name: str
    port: int
    targets: tuple[Target, ...]
    prefix: str = "/"
    timeout: float | None = None
    retry: Retry | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("route name is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"route port {self.port} out of range")
        if not self.targets or sum(t.weight for t in self.targets) == 0:
            raise ValueError(f"route {self.name}: weights must not all be zero")
        if len({t.service for t in self.targets}) != len(self.targets):
            raise ValueError(f"route {self.name}: a service is named twice")
        if not self.prefix.startswith("/"):
            raise ValueError(f"route {self.name}: prefix must start with /")
        if self.timeout is not None and self.timeout < 0:
            raise ValueError(f"route {self.name}: timeout must not be negative")


@dataclass(frozen=True)
class Client:
    node: str
    routes: tuple[str, ...]


@dataclass(frozen=True)
class Node:
    """The identity of the node asking: its id, and the address its egress listeners bind."""

    id: str
    listen_address: str = "127.0.0.1"


@dataclass(frozen=True)
class MeshConfig:
    services: tuple[Service, ...] = ()
    routes: tuple[Route, ...] = ()
    clients: tuple[Client, ...] = ()

    def __post_init__(self) -> None:
        for kind, names in (("service", [s.name for s in self.services]),
                            ("route", [r.name for r in self.routes]),
                            ("client", [c.node for c in self.clients])):
            dup = {n for n in names if names.count(n) > 1}
            if dup:
                raise ValueError(f"{kind} named twice: {', '.join(sorted(dup))}")

    def client(self, node: str) -> Client | None:
        return next((c for c in self.clients if c.node == node), None)
