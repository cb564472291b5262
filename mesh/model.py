"""The desired mesh state a snapshot is computed from (frozen).

* a ``Service`` is an upstream: one Envoy cluster fed by EDS (for a canary, ``web-v1`` and
  ``web-v2`` are two services);
* a ``Route`` is what a client calls: a virtual host ``name`` reached on egress ``port``,
  whose requests under ``prefix`` are split over weighted services, with an optional timeout
  and retry policy;
* a ``Client`` is a node (a sidecar, by its node id) and the routes it may call;
* ``Endpoint`` is one address of a service, with its health and the discovery instance it
  is (``instance``, the task id for a task: what a drain waits on; never sent to Envoy);
* an ``Ingress`` is a listener of a node's own: requests arriving on ``port`` go to the app on
  ``127.0.0.1:local_port`` (Service Connect's ingress);
* ``Tls`` is mTLS on an ingress (``STRICT`` or ``PERMISSIVE``; None: plain) or towards a
  service's endpoints, with the SPIFFE ids the peer may have; a ``Client`` with an
  ``identity`` (its SPIFFE id) holds that certificate when one of its ingresses or services
  has TLS (``NodeSecrets``: what the CA issued it, given to ``mesh.snapshot.compute``).

A ``Route`` is either the shorthand (``targets``, ``prefix``, ``timeout``, ``retry``: one rule)
or a list of ``rules`` (App Mesh's routes of one virtual router, in priority order), never
both: :meth:`Route.effective_rules` gives the rules either way. A route's ``address`` is the
egress address its alias resolves to in the task (``127.255.x.y``, see docs/mesh.md); a
``Client`` with an ``egress_port`` gets one virtual outbound listener on that port
(``use_original_dst``: the task's iptables redirect 127.255.0.0/16 there) and each route's
listener is matched by original destination, never bound.

Bad values raise ``ValueError`` at construction, so nothing malformed reaches a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    address: str
    port: int
    healthy: bool = True
    instance: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"endpoint port {self.port} out of range")


PROTOCOLS = ("http", "http2", "grpc", "tcp")


def _protocol(what: str, protocol: str) -> None:
    if protocol not in PROTOCOLS:
        raise ValueError(f"{what}: protocol {protocol!r} is not one of {', '.join(PROTOCOLS)}")


@dataclass(frozen=True)
class Outlier:
    """Outlier detection (App Mesh's ``outlierDetection``): eject an endpoint after
    ``max_server_errors`` consecutive 5xx, checked every ``interval`` seconds, for
    ``base_ejection`` seconds (times the ejection count), at most ``max_ejection_percent``."""

    max_server_errors: int
    interval: float
    base_ejection: float
    max_ejection_percent: int = 10

    def __post_init__(self) -> None:
        if self.max_server_errors < 1 or self.interval <= 0 or self.base_ejection <= 0:
            raise ValueError("outlier detection values must be positive")
        if not 0 <= self.max_ejection_percent <= 100:
            raise ValueError("max_ejection_percent must be 0..100")


@dataclass(frozen=True)
class Pool:
    """Connection pool limits (App Mesh's ``connectionPool``, Envoy's circuit breakers); None
    keeps Envoy's default. Past a limit Envoy answers 503 and counts an overflow."""

    max_connections: int | None = None
    max_pending_requests: int | None = None
    max_requests: int | None = None

    def __post_init__(self) -> None:
        for v in (self.max_connections, self.max_pending_requests, self.max_requests):
            if v is not None and v < 1:
                raise ValueError("connection pool limits must be at least 1")


TLS_MODES = ("STRICT", "PERMISSIVE")


@dataclass(frozen=True)
class Tls:
    """mTLS with the mesh CA's certificates (docs/mtls.md). On an ingress: ``STRICT`` refuses
    plaintext, ``PERMISSIVE`` takes both (DISABLED is no ``Tls`` at all); ``client_certificate``
    asks for and checks the caller's certificate. Towards a service: the sidecar originates
    TLS with its own certificate (``mode`` is unused). ``peers``: the SPIFFE ids (exact) the
    other side's certificate may carry; () takes any certificate the mesh CA signed."""

    mode: str = "STRICT"
    peers: tuple[str, ...] = ()
    client_certificate: bool = True

    def __post_init__(self) -> None:
        if self.mode not in TLS_MODES:
            raise ValueError(f"tls mode {self.mode!r} is not one of {', '.join(TLS_MODES)}")


@dataclass(frozen=True)
class NodeSecrets:
    """What the mesh CA issued a node (PEM): its certificate chain and key, and the trust bundle
    it checks peers against."""

    certificate: str
    key: str
    trust: str


@dataclass(frozen=True)
class Service:
    """An upstream: one EDS cluster. ``protocol`` http2 and grpc speak HTTP/2 upstream; with
    ``tls`` the sidecar speaks mTLS to its endpoints."""

    name: str
    connect_timeout: float = 1.0
    protocol: str = "http"
    outlier: Outlier | None = None
    pool: Pool | None = None
    tls: Tls | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("service name is empty")
        if self.connect_timeout <= 0:
            raise ValueError("connect_timeout must be positive")
        _protocol(f"service {self.name}", self.protocol)


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
class HeaderMatch:
    """One header condition: exactly one of ``exact``, ``prefix``, ``suffix``, ``regex`` (RE2),
    ``range`` (start inclusive, end exclusive) or ``present``; ``invert`` negates it."""

    name: str
    exact: str | None = None
    prefix: str | None = None
    suffix: str | None = None
    regex: str | None = None
    range: tuple[int, int] | None = None
    present: bool | None = None
    invert: bool = False

    def __post_init__(self) -> None:
        kinds = [k for k in (self.exact, self.prefix, self.suffix, self.regex, self.range, self.present)
                 if k is not None]
        if not self.name or len(kinds) > 1:
            raise ValueError(f"header match {self.name!r}: a name and at most one condition")


@dataclass(frozen=True)
class QueryMatch:
    """A query parameter that is present, or equals ``exact``."""

    name: str
    exact: str | None = None


@dataclass(frozen=True)
class Match:
    """What a rule matches: one of ``prefix``, ``path`` (exact) or ``regex`` (RE2, whole
    path; giving ``path`` or ``regex`` drops the default prefix), plus every header, the
    method and every query parameter given. gRPC's service and
    method become a path (``/Service/Method``) before they get here."""

    prefix: str | None = "/"
    path: str | None = None
    regex: str | None = None
    headers: tuple[HeaderMatch, ...] = ()
    method: str | None = None
    query: tuple[QueryMatch, ...] = ()

    def __post_init__(self) -> None:
        if self.prefix == "/" and (self.path is not None or self.regex is not None):
            object.__setattr__(self, "prefix", None)  # the default yields to a path or regex given
        given = [k for k in (self.prefix, self.path, self.regex) if k is not None]
        if len(given) != 1:
            raise ValueError("a match has exactly one of prefix, path and regex")
        for p in (self.prefix, self.path):
            if p is not None and not p.startswith("/"):
                raise ValueError("prefix and path must start with /")


@dataclass(frozen=True)
class Rule:
    """Requests matching ``match`` go to the weighted ``targets``; ``timeout`` is per request
    (0 disables it), ``idle_timeout`` per stream, both seconds."""

    targets: tuple[Target, ...]
    match: Match = Match()
    timeout: float | None = None
    idle_timeout: float | None = None
    retry: Retry | None = None

    def check(self, route: str) -> None:
        if not self.targets or sum(t.weight for t in self.targets) == 0:
            raise ValueError(f"route {route}: weights must not all be zero")
        if len({t.service for t in self.targets}) != len(self.targets):
            raise ValueError(f"route {route}: a service is named twice")
        for t in (self.timeout, self.idle_timeout):
            if t is not None and t < 0:
                raise ValueError(f"route {route}: timeout must not be negative")


@dataclass(frozen=True)
class Route:
    """What a client calls: ``name`` (a virtual host, domains ``name`` and ``name:port``) on
    egress ``port``, at ``address`` (None: the node's ``listen_address``). ``protocol`` tcp
    routes connections (the first rule's targets), not requests."""

    name: str
    port: int
    targets: tuple[Target, ...] = ()
    prefix: str = "/"
    timeout: float | None = None
    retry: Retry | None = None
    rules: tuple[Rule, ...] = ()
    protocol: str = "http"
    address: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("route name is empty")
        if not 0 < self.port < 65536:
            raise ValueError(f"route port {self.port} out of range")
        _protocol(f"route {self.name}", self.protocol)
        if self.rules and self.targets:
            raise ValueError(f"route {self.name}: give targets or rules, not both")
        if not self.prefix.startswith("/"):
            raise ValueError(f"route {self.name}: prefix must start with /")
        for rule in self.effective_rules():
            rule.check(self.name)

    def effective_rules(self) -> tuple[Rule, ...]:
        """The rules, in order: ``rules``, or the one rule the shorthand fields describe."""
        if self.rules:
            return self.rules
        return (Rule(self.targets, Match(prefix=self.prefix), self.timeout, retry=self.retry),)

    def services(self) -> set[str]:
        return {t.service for rule in self.effective_rules() for t in rule.targets}


@dataclass(frozen=True)
class Ingress:
    """A node's own listener (Service Connect's ingress): ``0.0.0.0:port`` to the app on
    ``127.0.0.1:local_port``, ``name`` being the port mapping's name."""

    name: str
    port: int
    local_port: int
    protocol: str = "http"
    timeout: float | None = None
    idle_timeout: float | None = None
    tls: Tls | None = None

    def __post_init__(self) -> None:
        for p in (self.port, self.local_port):
            if not 0 < p < 65536:
                raise ValueError(f"ingress {self.name}: port {p} out of range")
        _protocol(f"ingress {self.name}", self.protocol)


@dataclass(frozen=True)
class Client:
    """A node: the routes it may call, its own ingress listeners (names and ports unique), the
    port of its virtual outbound listener (None: each route's listener binds its own address
    and port), and its SPIFFE ``identity`` ("" none: it can hold no certificate)."""

    node: str
    routes: tuple[str, ...]
    ingress: tuple[Ingress, ...] = ()
    egress_port: int | None = None
    access_log: tuple[str, bool] = ("", False)  # Service Connect's access logs (resources.access_logs)
    identity: str = ""

    def __post_init__(self) -> None:
        if self.egress_port is not None and not 0 < self.egress_port < 65536:
            raise ValueError(f"client {self.node}: egress port {self.egress_port} out of range")
        for what, values in (("ingress name", [i.name for i in self.ingress]),
                             ("ingress port", [i.port for i in self.ingress])):
            if len(set(values)) != len(values):
                raise ValueError(f"client {self.node}: an {what} is used twice")


@dataclass(frozen=True)
class Node:
    """The identity of the node asking: its id, and the address its egress listeners bind."""

    id: str
    listen_address: str = "127.0.0.1"


@dataclass(frozen=True)
class MeshConfig:
    """Services, routes and clients, each name unique; a tcp route a client calls is alone on
    its (address, port) among that client's routes (one listener, one tcp proxy)."""

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
        routes = {r.name: r for r in self.routes}
        for c in self.clients:
            shared: dict[tuple[str | None, int], list[Route]] = {}
            for name in c.routes:
                if name in routes:
                    shared.setdefault((routes[name].address, routes[name].port), []).append(routes[name])
            for (address, port), rs in shared.items():
                if len(rs) > 1 and any(r.protocol == "tcp" for r in rs):
                    raise ValueError(f"client {c.node}: a tcp route shares {address or ''}:{port} "
                                     f"with {', '.join(sorted(r.name for r in rs))}")

    def client(self, node: str) -> Client | None:
        return next((c for c in self.clients if c.node == node), None)
