"""Snapshots: the Envoy resources one node should hold, computed by a pure function.

``compute(config, endpoints, node)`` turns the desired mesh (``mesh.model``), the endpoints
of each service and the asking node into a frozen ``Snapshot`` of xDS v3 resources:

* CDS: one EDS cluster per service the node may reach (only those: a node receives the
  clusters of the routes its ``Client`` entry names, nothing else; an unknown node gets an
  empty snapshot);
* EDS: one ``ClusterLoadAssignment`` per cluster, healthy endpoints only (an empty one when
  none is healthy, so the cluster exists and answers 503);
* LDS: one egress listener per port, on ``node.listen_address``, with an HTTP connection
  manager fetching its routes over RDS (ADS);
* RDS: one ``RouteConfiguration`` per listener, one virtual host per route (domains ``name``
  and ``name:port``), ``weighted_clusters`` over the non-zero targets.

Each type has a version: a hash of its resources serialized deterministically, sorted by
name, so equal inputs give equal versions and any change to a type changes its version.
``Snapshot.problems()`` names every dangling reference, like go-control-plane's
``Consistent()``; the cache refuses an inconsistent snapshot.

The protobuf messages are shared, not copied: treat them as read-only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, config_source_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2
from google.protobuf.message import Message

from mesh.model import Endpoint, MeshConfig, Node, Route

CLUSTER = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
ENDPOINT = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
LISTENER = "type.googleapis.com/envoy.config.listener.v3.Listener"
ROUTE = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
# Make-before-break: clusters and endpoints before the listeners and routes that name them.
ORDER = (CLUSTER, ENDPOINT, LISTENER, ROUTE)


def name_of(resource: Message) -> str:
    """The xDS name of a resource (``cluster_name`` for a load assignment)."""
    if isinstance(resource, endpoint_pb2.ClusterLoadAssignment):
        return resource.cluster_name
    return resource.name  # type: ignore[attr-defined]


def version_of(resources: Iterable[Message]) -> str:
    """A deterministic hash of the resources, independent of their order."""
    digest = hashlib.sha256()
    for res in sorted(resources, key=name_of):
        blob = res.SerializeToString(deterministic=True)
        digest.update(len(blob).to_bytes(8, "big"))
        digest.update(blob)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    """Resources by type URL (each sorted by name) and a version per type."""

    resources: Mapping[str, tuple[Message, ...]]
    versions: Mapping[str, str]

    @classmethod
    def of(cls, clusters: Iterable[Message] = (), endpoints: Iterable[Message] = (),
           listeners: Iterable[Message] = (), routes: Iterable[Message] = ()) -> Snapshot:
        by_type = {CLUSTER: clusters, ENDPOINT: endpoints, LISTENER: listeners, ROUTE: routes}
        resources = {t: tuple(sorted(rs, key=name_of)) for t, rs in by_type.items()}
        return cls(MappingProxyType(resources),
                   MappingProxyType({t: version_of(rs) for t, rs in resources.items()}))

    def names(self, type_url: str) -> set[str]:
        return {name_of(r) for r in self.resources.get(type_url, ())}

    def problems(self) -> list[str]:
        """Every dangling reference, in words; empty when the snapshot is consistent."""
        out: list[str] = []
        clusters, cla = self.names(CLUSTER), self.names(ENDPOINT)
        for c in self.resources[CLUSTER]:
            if c.type == cluster_pb2.Cluster.EDS and c.name not in cla:
                out.append(f"cluster {c.name} has no load assignment")
        for name in sorted(cla - clusters):
            out.append(f"load assignment {name} names no cluster")
        route_names = self.names(ROUTE)
        for lst in self.resources[LISTENER]:
            for rds in _rds_names(lst):
                if rds not in route_names:
                    out.append(f"listener {lst.name} names missing route configuration {rds}")
        for rc in self.resources[ROUTE]:
            for vh in rc.virtual_hosts:
                for r in vh.routes:
                    for cluster in _route_clusters(r):
                        if cluster not in clusters:
                            out.append(f"route {rc.name}/{vh.name} names missing cluster {cluster}")
        return out

    def consistent(self) -> bool:
        return not self.problems()


def _rds_names(listener: Message) -> list[str]:
    out = []
    for chain in listener.filter_chains:
        for f in chain.filters:
            if f.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                manager = hcm.HttpConnectionManager()
                f.typed_config.Unpack(manager)
                if manager.HasField("rds"):
                    out.append(manager.rds.route_config_name)
    return out


def _route_clusters(route: Message) -> list[str]:
    action = route.route
    if action.HasField("weighted_clusters"):
        return [c.name for c in action.weighted_clusters.clusters]
    return [action.cluster] if action.cluster else []


def _ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(),
                                          resource_api_version=config_source_pb2.V3)


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def _pack(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def _cluster(name: str, connect_timeout: float) -> cluster_pb2.Cluster:
    return cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.EDS, connect_timeout=_duration(connect_timeout),
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=_ads()))


def _load_assignment(name: str, endpoints: Iterable[Endpoint]) -> endpoint_pb2.ClusterLoadAssignment:
    lb = [endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
            address=e.address, port_value=e.port))))
        for e in sorted(set(endpoints), key=lambda e: (e.address, e.port)) if e.healthy]
    locality = [endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb)] if lb else []
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=locality)


def _listener(address: str, port: int) -> listener_pb2.Listener:
    name = f"egress_{port}"
    manager = hcm.HttpConnectionManager(
        stat_prefix=name,
        rds=hcm.Rds(route_config_name=name, config_source=_ads()),
        http_filters=[hcm.HttpFilter(name="envoy.filters.http.router",
                                     typed_config=_pack(router_pb2.Router()))])
    return listener_pb2.Listener(
        name=name,
        address=address_pb2.Address(socket_address=address_pb2.SocketAddress(
            address=address, port_value=port)),
        filter_chains=[listener_components_pb2.FilterChain(filters=[listener_components_pb2.Filter(
            name="envoy.filters.network.http_connection_manager", typed_config=_pack(manager))])])


def _route_entry(route: Route) -> route_components_pb2.Route:
    action = route_components_pb2.RouteAction(weighted_clusters=route_components_pb2.WeightedCluster(
        clusters=[route_components_pb2.WeightedCluster.ClusterWeight(
            name=t.service, weight=wrappers_pb2.UInt32Value(value=t.weight))
            for t in route.targets if t.weight > 0]))
    if route.timeout is not None:
        action.timeout.CopyFrom(_duration(route.timeout))
    if route.retry is not None:
        action.retry_policy.retry_on = route.retry.retry_on
        action.retry_policy.num_retries.value = route.retry.attempts
        if route.retry.per_try_timeout is not None:
            action.retry_policy.per_try_timeout.CopyFrom(_duration(route.retry.per_try_timeout))
    return route_components_pb2.Route(match=route_components_pb2.RouteMatch(prefix=route.prefix),
                                      route=action)


def _route_configuration(port: int, routes: list[Route]) -> route_pb2.RouteConfiguration:
    hosts = [route_components_pb2.VirtualHost(name=r.name, domains=[r.name, f"{r.name}:{port}"],
                                              routes=[_route_entry(r)])
             for r in sorted(routes, key=lambda r: r.name)]
    return route_pb2.RouteConfiguration(name=f"egress_{port}", virtual_hosts=hosts)


def compute(config: MeshConfig, endpoints: Mapping[str, Iterable[Endpoint]], node: Node) -> Snapshot:
    """The snapshot for ``node``: only the routes its client entry names and their services.

    ``endpoints`` maps a service name to its endpoints; unhealthy ones are left out. A route
    naming a service that ``config`` does not define keeps its reference, so the snapshot
    comes out inconsistent (``problems()`` says which) rather than silently different.
    """
    client = config.client(node.id)
    wanted = set(client.routes) if client else set()
    routes = [r for r in config.routes if r.name in wanted]
    services = {s.name: s for s in config.services}
    reached = sorted({t.service for r in routes for t in r.targets if t.service in services})
    clusters = [_cluster(n, services[n].connect_timeout) for n in reached]
    assignments = [_load_assignment(n, endpoints.get(n, ())) for n in reached]
    by_port: dict[int, list[Route]] = {}
    for r in routes:
        by_port.setdefault(r.port, []).append(r)
    listeners = [_listener(node.listen_address, p) for p in sorted(by_port)]
    route_configs = [_route_configuration(p, rs) for p, rs in sorted(by_port.items())]
    return Snapshot.of(clusters, assignments, listeners, route_configs)
