"""Snapshots: the Envoy resources one node should hold, computed by a pure function.

``compute(config, endpoints, node)`` turns the desired mesh (``mesh.model``), the endpoints
of each service and the asking node into a frozen ``Snapshot`` of xDS v3 resources (built by
``mesh.resources``, which also fixes the names):

* CDS: one EDS cluster per service the node may reach (only those: a node receives the
  clusters of the routes its ``Client`` entry names, nothing else; an unknown node gets an
  empty snapshot), with HTTP/2 upstream for http2 and grpc services, outlier detection and
  circuit breakers; one STATIC cluster ``local_<name>`` per ingress (its load assignment
  inline, so no EDS), and ``egress_blackhole`` with an egress port;
* EDS: one ``ClusterLoadAssignment`` per EDS cluster, healthy endpoints only (an empty one
  when none is healthy, so the cluster exists and answers 503);
* LDS: one egress listener per (route address, port): HTTP with RDS over ADS, or a tcp_proxy
  for a tcp route. Without ``Client.egress_port`` they bind (the route's address, or
  ``node.listen_address``); with it, they are ``bind_to_port: false`` and one virtual outbound
  listener ``egress_outbound`` on ``127.0.0.1:<egress_port>`` (``use_original_dst``) hands
  them the redirected connections; what it does not hand on is proxied to the STATIC cluster
  ``egress_blackhole``, which has no endpoint (closed). One
  ingress listener ``ingress_<name>`` on ``0.0.0.0:<port>`` per ingress, to ``local_<name>``;
* RDS: one ``RouteConfiguration`` per HTTP egress listener (same name), one virtual host per
  route (domains ``name`` and ``name:port``), one Envoy route per rule in order: matches
  (prefix, exact path, RE2 regex, headers, ``:method``, query parameters),
  ``weighted_clusters`` over the non-zero targets, timeout (0 disables), idle timeout, retries;
* SDS: a node that speaks mTLS (one of its ingresses, or of the services it reaches, has
  ``Tls``; :func:`identity_needed` says so) gets its two secrets, ``mesh_identity`` (the
  certificate the mesh CA issued its ``Client.identity``, given as ``secrets``) and
  ``mesh_trust``; the TLS clusters and ingress listeners name them. Which certificate a node
  needs is decided here; issuing it is the controller's (``mesh.ca``).

A tcp route must be alone on its (address, port) (``MeshConfig`` refuses otherwise).

Each type has a version: a hash of its resources serialized deterministically, sorted by
name, so equal inputs give equal versions and any change to a type changes its version.
``Snapshot.members`` names the discovery instances (task ids) behind its healthy endpoints: not
sent to Envoy, it tells a drain which nodes still route to a task (``AdsServer.drained``).
``Snapshot.problems()`` names every dangling reference, like go-control-plane's
``Consistent()``; the cache refuses an inconsistent snapshot.

The protobuf messages are shared, not copied: treat them as read-only.

Many nodes of one desired state differ only in their own part (their ingress, the address of
their egress listeners): ``compute(..., shared=Shared())`` with one :class:`Shared` for every
node of a state builds each cluster, load assignment, route configuration and listener once,
serializes each message once, and hashes a given tuple of resources once. The controller makes
a new one at each push (a ``Shared`` is valid for one ``(config, endpoints)`` only).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from google.protobuf.message import Message

from mesh import resources as res
from mesh.model import Endpoint, MeshConfig, Node, NodeSecrets, Route
from mesh.telemetry.traces_envoy import Tracing

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
SECRET = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
# Make-before-break: secrets, clusters and endpoints before the listeners and routes that name them.
ORDER = (SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE)
T = TypeVar("T")


def name_of(resource: Message) -> str:
    """The xDS name of a resource (``cluster_name`` for a load assignment)."""
    if isinstance(resource, endpoint_pb2.ClusterLoadAssignment):
        return resource.cluster_name
    return resource.name  # type: ignore[attr-defined]


def _serialized(resource: Message) -> bytes:
    return resource.SerializeToString(deterministic=True)


def version_of(resources: Iterable[Message], serialize: Callable[[Message], bytes] = _serialized) -> str:
    """A deterministic hash of the resources, independent of their order."""
    digest = hashlib.sha256()
    for r in sorted(resources, key=name_of):
        blob = serialize(r)
        digest.update(len(blob).to_bytes(8, "big"))
        digest.update(blob)
    return digest.hexdigest()[:16]


class Shared:
    """What the snapshots of one desired state have in common, made once (module docstring).

    ``make(key, build)`` returns the value made for ``key`` (``build()`` the first time);
    ``version(resources)`` the version of a tuple of resources, each serialized once. The
    caches hold the messages they were computed from, so no ``id()`` is reused while this
    lives: its size is that of one state's snapshots."""

    def __init__(self) -> None:
        self._made: dict[object, Any] = {}
        self._blobs: dict[int, tuple[Message, bytes]] = {}
        self._versions: dict[tuple[int, ...], tuple[tuple[Message, ...], str]] = {}
        self._one: dict[int, tuple[Message, str]] = {}

    def make(self, key: object, build: Callable[[], T]) -> T:
        try:
            return self._made[key]
        except KeyError:
            made = self._made[key] = build()
            return made

    def _blob(self, resource: Message) -> bytes:
        kept = self._blobs.get(id(resource))
        if kept is None:
            kept = self._blobs[id(resource)] = (resource, _serialized(resource))
        return kept[1]

    def resource_version(self, resource: Message) -> str:
        """The version of one resource (a delta stream's per-resource version), made once."""
        kept = self._one.get(id(resource))
        if kept is None:
            kept = self._one[id(resource)] = (resource, version_of((resource,), self._blob))
        return kept[1]

    def version(self, resources: tuple[Message, ...]) -> str:
        key = tuple(map(id, resources))
        kept = self._versions.get(key)
        if kept is None:
            kept = self._versions[key] = (resources, version_of(resources, self._blob))
        return kept[1]


@dataclass(frozen=True)
class Snapshot:
    """Resources by type URL (each sorted by name) and a version per type."""

    resources: Mapping[str, tuple[Message, ...]]
    versions: Mapping[str, str]
    members: frozenset[str] = frozenset()  # the instances behind its EDS endpoints
    # each resource's own version by type and name (what delta xDS sends), when made with a Shared
    resource_versions: Mapping[str, Mapping[str, str]] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, clusters: Iterable[Message] = (), endpoints: Iterable[Message] = (),
           listeners: Iterable[Message] = (), routes: Iterable[Message] = (),
           members: Iterable[str] = (), shared: Shared | None = None,
           secrets: Iterable[Message] = ()) -> Snapshot:
        by_type = {SECRET: secrets, CLUSTER: clusters, ENDPOINT: endpoints, LISTENER: listeners,
                   ROUTE: routes}
        resources = {t: tuple(sorted(rs, key=name_of)) for t, rs in by_type.items()}
        version = version_of if shared is None else shared.version
        each = None if shared is None else MappingProxyType(
            {t: MappingProxyType({name_of(r): shared.resource_version(r) for r in rs})
             for t, rs in resources.items()})
        return cls(MappingProxyType(resources),
                   MappingProxyType({t: version(rs) for t, rs in resources.items()}), frozenset(members),
                   each)

    def names(self, type_url: str) -> set[str]:
        return {name_of(r) for r in self.resources.get(type_url, ())}

    def problems(self) -> list[str]:
        """Every dangling reference, in words; empty when the snapshot is consistent: an EDS
        cluster without load assignment (a STATIC one carries its own), a load assignment
        without cluster, a listener naming a missing route configuration or (tcp_proxy, inline
        routes) a missing cluster, a route naming a missing cluster, a cluster or listener
        naming a missing secret."""
        out: list[str] = []
        clusters, cla = self.names(CLUSTER), self.names(ENDPOINT)
        held = self.names(SECRET)
        for resource in (*self.resources[CLUSTER], *self.resources[LISTENER]):
            for name in sorted(res.secret_references(resource) - held):
                out.append(f"{type(resource).__name__.lower()} {resource.name} names missing secret {name}")
        for c in self.resources[CLUSTER]:
            if c.type == cluster_pb2.Cluster.EDS and c.name not in cla:
                out.append(f"cluster {c.name} has no load assignment")
        for name in sorted(cla - clusters):
            out.append(f"load assignment {name} names no cluster")
        route_names = self.names(ROUTE)
        for lst in self.resources[LISTENER]:
            rds, named, hosts = res.listener_references(lst)
            for name in rds:
                if name not in route_names:
                    out.append(f"listener {lst.name} names missing route configuration {name}")
            for name in named:
                if name not in clusters:
                    out.append(f"listener {lst.name} names missing cluster {name}")
            out.extend(_host_problems(f"listener {lst.name}", hosts, clusters))
        for rc in self.resources[ROUTE]:
            out.extend(_host_problems(f"route {rc.name}", rc.virtual_hosts, clusters))
        return out

    def consistent(self) -> bool:
        return not self.problems()


def _host_problems(where: str, hosts: Iterable[Message], clusters: set[str]) -> list[str]:
    return [f"{where}/{vh.name} names missing cluster {c}"
            for vh in hosts for r in vh.routes for c in res.route_clusters(r) if c not in clusters]


def identity_needed(config: MeshConfig, node: str) -> str:
    """The SPIFFE id whose certificate ``node`` needs: its client's identity when one of its
    ingresses, or one of the services its routes reach, has TLS; "" otherwise."""
    client = config.client(node)
    if client is None or not client.identity:
        return ""
    if any(i.tls is not None for i in client.ingress):
        return client.identity
    wanted = set(client.routes)
    reached = {n for r in config.routes if r.name in wanted for n in r.services()}
    if any(s.tls is not None for s in config.services if s.name in reached):
        return client.identity
    return ""


def compute(config: MeshConfig, endpoints: Mapping[str, Iterable[Endpoint]], node: Node,
            shared: Shared | None = None, tracing: Tracing | None = None,
            secrets: NodeSecrets | None = None) -> Snapshot:
    """The snapshot for ``node``: only the routes its client entry names and their services,
    and its ingress listeners.

    ``endpoints`` maps a service name to its endpoints; unhealthy ones are left out. A route
    naming a service that ``config`` does not define keeps its reference, so the snapshot
    comes out inconsistent (``problems()`` says which) rather than silently different.
    ``shared``, given the same for every node of one ``(config, endpoints)``, makes what the
    nodes have in common once (module docstring); the snapshot is the same without it.
    ``tracing`` puts the Zipkin tracer on every HTTP listener (:mod:`mesh.telemetry.traces_envoy`).
    ``secrets`` is what the CA issued the node's identity: its SDS secrets when
    :func:`identity_needed` names one (without them the snapshot comes out inconsistent).
    """
    s = shared if shared is not None else Shared()
    client = s.make("clients", lambda: {c.node: c for c in config.clients}).get(node.id)
    if client is None:
        return Snapshot.of(shared=s)
    services = s.make("services", lambda: {v.name: v for v in config.services})
    wanted = set(client.routes)
    routes = [r for r in config.routes if r.name in wanted]
    reached = sorted({n for r in routes for n in r.services() if n in services})
    clusters = [s.make(("cds", n), lambda n=n: res.cluster(services[n])) for n in reached]
    assignments = [s.make(("eds", n), lambda n=n: res.load_assignment(n, endpoints.get(n, ())))
                   for n in reached]
    groups: dict[tuple[str | None, int], list[Route]] = {}
    for r in routes:
        groups.setdefault((r.address, r.port), []).append(r)
    virtual = client.egress_port is not None
    listeners = []
    if client.egress_port is not None:
        clusters.append(s.make("blackhole", res.blackhole_cluster))
        listeners.append(s.make(("outbound", client.egress_port),
                                lambda: res.outbound_listener(client.egress_port)))
    route_configs = []
    for (address, port), rs in groups.items():
        name = res.egress_name(rs[0])
        tcp = next((r for r in rs if r.protocol == "tcp"), None)
        where = address or node.listen_address
        listeners.append(s.make(("lds", name, where, port, tcp, virtual, client.access_log, tracing),
                                lambda name=name, where=where, port=port, tcp=tcp:
                                res.egress_listener(name, where, port, tcp, bind=not virtual,
                                                    access=client.access_log, tracing=tracing)))
        if tcp is None:
            route_configs.append(s.make(("rds", name, tuple(r.name for r in rs)),
                                        lambda name=name, rs=rs: res.route_configuration(name, rs)))
    for ingress in client.ingress:
        clusters.append(s.make(("local", ingress), lambda ingress=ingress: res.local_cluster(ingress)))
        listeners.append(s.make(("ingress", ingress, client.access_log, tracing),
                                lambda ingress=ingress: res.ingress_listener(ingress, client.access_log,
                                                                             tracing)))
    members = s.make(("members", tuple(reached)), lambda: frozenset(
        e.instance for n in reached for e in endpoints.get(n, ()) if e.healthy and e.instance))
    held = res.secrets(secrets) if secrets is not None and identity_needed(config, node.id) else []
    return Snapshot.of(clusters, assignments, listeners, route_configs, members, shared=s, secrets=held)

