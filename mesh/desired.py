"""From Service Connect, App Mesh and discovery to one desired mesh (pure).

:func:`build` turns what the other parts say (through ``mesh.seams``) and App Mesh's stored
specs into one :class:`mesh.model.MeshConfig` and the endpoints of each of its services, from
which ``mesh.snapshot.compute`` makes each node's snapshot. The rules (docs/mesh.md, "From the
APIs to Envoy"):

* **Service Connect.** Each client alias (``dnsName``, ``port``) of a namespace is a
  :class:`Route` named ``dnsName`` on ``port`` at the alias address the tasks' ``/etc/hosts``
  give it (a task whose address differs from the others' gets a route of its own, named
  ``dnsName@address``), to the :class:`Service` ``sc/<namespace>/<discoveryName>``: its
  endpoints are the healthy instances of that Cloud Map service (``AWS_INSTANCE_IPV4``,
  ``AWS_INSTANCE_PORT``), its protocol the port's ``appProtocol`` (none: tcp), the rule's
  timeouts the Service Connect ``timeout`` (``perRequestTimeoutSeconds``,
  ``idleTimeoutSeconds``). While an ECS deployment shifts the service's traffic
  (``ConnectService.traffic``), the route's rules are the test-header rules (to the service
  ``sc/<namespace>/<discoveryName>@<family>:<revision>`` of the test revision: the instances
  whose ``ECS_TASK_DEFINITION_FAMILY``/``ECS_TASK_DEFINITION_REVISION`` say so), then one rule
  splitting production traffic over the revisions' services by weight, what is left of 10000
  to ``sc/<namespace>/<discoveryName>`` itself (docs/deployments.md).
* **App Mesh overrides it.** When an App Mesh virtual service is named like the alias's
  ``dnsName`` (in any mesh; if several meshes have one, the oldest mesh's wins), its provider
  decides: a virtual router's routes become the route's rules (``httpRoute``, ``http2Route``,
  ``grpcRoute``, ``tcpRoute``: matches, ``weightedTargets`` over virtual nodes, ``retryPolicy``,
  ``timeout``), in ``priority`` order (0 first; routes without one last, then by name); a
  virtual node provider is one rule to that node. The protocol is the router's (or node's)
  first listener's. A virtual node is the service ``am/<mesh>/<node>``: its endpoints are the
  healthy instances of its ``serviceDiscovery.awsCloudMap`` service whose attributes carry
  every ``attributes`` pair given (``ECS_TASK_DEFINITION_REVISION=2`` selects one revision);
  outlier detection and connection pool come from its first listener. A target naming a
  virtual node that does not exist is dropped, a rule left with no weight is dropped, and a
  virtual service left with no rule falls back to Service Connect's route; each such case is
  named in :attr:`Desired.problems`.
* **Virtual gateways.** Each virtual gateway is a :class:`mesh.gateway.Gateway` (node id
  ``mesh/<mesh>/virtualGateway/<name>``, its listener on ``gateway_host``): its gateway routes
  of the listener's protocol, in ``priority`` order, each with the rules of its target virtual
  service (as above, in the gateway's mesh); :mod:`mesh.gateway` makes its snapshot. A route
  whose virtual service has no HTTP rules is left out and named.
* **Clients.** Each meshed task is a :class:`Client` (node id: its task ARN) whose routes are
  the aliases of its namespace it has addresses for, so a sidecar receives only the clusters
  of the services it calls; its ingress listeners are its ``TaskIngress`` list, its virtual
  outbound listener its ``egress_port``. Any other node id has no client: an empty snapshot.

Nothing here raises on stored data: what cannot be served is left out and named.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mesh.gateway import Gateway, GatewayRoute, envoy_routes, gateway_node
from mesh.model import (
    Client,
    Endpoint,
    HeaderMatch,
    Ingress,
    Match,
    MeshConfig,
    Outlier,
    Pool,
    QueryMatch,
    Retry,
    Route,
    Rule,
    Service,
    Target,
)
from mesh.seams import ConnectService, Instance, MeshedTask

__all__ = ["AppMeshSpecs", "Desired", "InstancesOf", "build"]

InstancesOf = Callable[[str, str], "Sequence[Instance] | None"]
"""The instances of (namespace name, Cloud Map service name), None when there is none."""

_ROUTE_KINDS = {"httpRoute": "http", "http2Route": "http2", "grpcRoute": "grpc", "tcpRoute": "tcp"}
_HTTP_EVENTS = {
    "server-error": "5xx",
    "gateway-error": "gateway-error",
    "client-error": "retriable-4xx",
    "stream-error": "reset",
}
_TCP_EVENTS = {"connection-error": "connect-failure"}
_GATEWAY_KINDS = {"http": "httpRoute", "http2": "http2Route", "grpc": "grpcRoute"}


@dataclass(frozen=True)
class AppMeshSpecs:
    """App Mesh's resources as the API stored them (``spec`` dicts): ``meshes`` oldest first;
    ``virtual_nodes``, ``virtual_services`` and ``virtual_routers`` by mesh then name;
    ``routes`` by mesh, then virtual router, then route name; ``virtual_gateways`` by mesh then
    name, ``gateway_routes`` by mesh, then virtual gateway, then name."""

    meshes: tuple[str, ...] = ()
    virtual_nodes: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    virtual_services: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    virtual_routers: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    routes: Mapping[str, Mapping[str, Mapping[str, dict[str, Any]]]] = field(default_factory=dict)
    virtual_gateways: Mapping[str, Mapping[str, dict[str, Any]]] = field(default_factory=dict)
    gateway_routes: Mapping[str, Mapping[str, Mapping[str, dict[str, Any]]]] = field(default_factory=dict)


@dataclass(frozen=True)
class Desired:
    """The mesh to serve: ``config``, the endpoints of each of its services by name (the
    gateways' too), what could not be served, in words, and the virtual gateways' Envoys."""

    config: MeshConfig
    endpoints: Mapping[str, tuple[Endpoint, ...]]
    problems: tuple[str, ...] = ()
    gateways: tuple[Gateway, ...] = ()


def _protocol(app_protocol: str) -> str:
    return app_protocol if app_protocol in ("http", "http2", "grpc") else "tcp"


def _seconds(d: Any) -> float | None:
    """App Mesh's ``Duration`` (``{"unit": "s"|"ms", "value": n}``) in seconds."""
    if not isinstance(d, dict) or not isinstance(d.get("value"), int | float):
        return None
    return d["value"] / 1000.0 if d.get("unit") == "ms" else float(d["value"])


def _endpoints(
    found: Sequence[Instance] | None,
    attributes: Mapping[str, str] | None = None,
    default_port: int | None = None,
) -> tuple[Endpoint, ...]:
    out = []
    for inst in found or ():
        a = inst.attributes
        if not inst.healthy or any(a.get(k) != v for k, v in (attributes or {}).items()):
            continue
        ip, port = a.get("AWS_INSTANCE_IPV4"), a.get("AWS_INSTANCE_PORT")
        number = int(port) if port and port.isdigit() else default_port
        if ip and number and 0 < number < 65536:
            out.append(Endpoint(ip, number, instance=inst.instance_id))
    return tuple(sorted(set(out), key=lambda e: (e.address, e.port)))


def _first_listener(spec: dict[str, Any]) -> dict[str, Any]:
    listeners = spec.get("listeners") or []
    return listeners[0] if listeners and isinstance(listeners[0], dict) else {}


def _outlier(raw: Any) -> Outlier | None:
    if not isinstance(raw, dict):
        return None
    interval, ejection = _seconds(raw.get("interval")), _seconds(raw.get("baseEjectionDuration"))
    if interval is None or ejection is None:
        return None
    return Outlier(
        int(raw.get("maxServerErrors", 5)), interval, ejection, int(raw.get("maxEjectionPercent", 10))
    )


def _pool(raw: Any) -> Pool | None:
    if not isinstance(raw, dict):
        return None
    for kind in ("http", "http2", "grpc", "tcp"):
        p = raw.get(kind)
        if isinstance(p, dict):
            return Pool(p.get("maxConnections"), p.get("maxPendingRequests"), p.get("maxRequests"))
    return None


def _header(raw: dict[str, Any]) -> HeaderMatch:
    m = raw.get("match") or {}
    rng = m.get("range")
    return HeaderMatch(
        raw["name"],
        exact=m.get("exact"),
        prefix=m.get("prefix"),
        suffix=m.get("suffix"),
        regex=m.get("regex"),
        range=(int(rng["start"]), int(rng["end"])) if isinstance(rng, dict) else None,
        present=None if m else True,
        invert=bool(raw.get("invert", False)),
    )


def _match(kind: str, raw: dict[str, Any]) -> Match:
    if kind == "grpcRoute":
        service, method = raw.get("serviceName"), raw.get("methodName")
        headers = tuple(_header(h) for h in raw.get("metadata") or [])
        if service and method:
            return Match(prefix=None, path=f"/{service}/{method}", headers=headers)
        return Match(prefix=f"/{service}/" if service else "/", headers=headers)
    path = raw.get("path") or {}
    headers = tuple(_header(h) for h in raw.get("headers") or [])
    query = tuple(
        QueryMatch(q["name"], (q.get("match") or {}).get("exact")) for q in raw.get("queryParameters") or []
    )
    common: dict[str, Any] = {"headers": headers, "method": raw.get("method"), "query": query}
    if path.get("exact") is not None:
        return Match(prefix=None, path=path["exact"], **common)
    if path.get("regex") is not None:
        return Match(prefix=None, regex=path["regex"], **common)
    return Match(prefix=raw.get("prefix") or "/", **common)


def _retry(kind: str, raw: Any) -> Retry | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("maxRetries"), int):
        return None
    events = [_HTTP_EVENTS.get(e, "") for e in raw.get("httpRetryEvents") or []]
    events += [e for e in raw.get("grpcRetryEvents") or []]
    events += [_TCP_EVENTS.get(e, "") for e in raw.get("tcpRetryEvents") or []]
    retry_on = ",".join(dict.fromkeys(e for e in events if e)) or "5xx,reset,connect-failure"
    return Retry(raw["maxRetries"], retry_on, _seconds(raw.get("perRetryTimeout")))


def _shorthand(name: str, port: int, rule: Rule, protocol: str, address: str) -> Route:
    """The route, in its one-rule shorthand when the rule fits it (a prefix, no idle timeout)."""
    m = rule.match
    if m.prefix is not None and not (m.headers or m.method or m.query) and rule.idle_timeout is None:
        return Route(
            name,
            port,
            targets=rule.targets,
            prefix=m.prefix,
            timeout=rule.timeout,
            retry=rule.retry,
            protocol=protocol,
            address=address,
        )
    return Route(name, port, rules=(rule,), protocol=protocol, address=address)


class _Builder:
    def __init__(self, appmesh: AppMeshSpecs, instances: InstancesOf) -> None:
        self.appmesh = appmesh
        self.instances = instances
        self.services: dict[str, Service] = {}
        self.endpoints: dict[str, tuple[Endpoint, ...]] = {}
        self.problems: list[str] = []

    def connect_service(self, cs: ConnectService) -> str:
        name = f"sc/{cs.namespace}/{cs.discovery_name}"
        if name not in self.services:
            self.services[name] = Service(name, protocol=_protocol(cs.app_protocol))
            self.endpoints[name] = _endpoints(self.instances(cs.namespace, cs.discovery_name))
        return name

    def revision_service(self, cs: ConnectService, family: str, revision: int) -> str:
        """The service of one task definition revision of a Service Connect service: its
        instances whose ``ECS_TASK_DEFINITION_FAMILY``/``_REVISION`` are that revision's."""
        name = f"sc/{cs.namespace}/{cs.discovery_name}@{family}:{revision}"
        if name not in self.services:
            self.services[name] = Service(name, protocol=_protocol(cs.app_protocol))
            attrs = {"ECS_TASK_DEFINITION_FAMILY": family, "ECS_TASK_DEFINITION_REVISION": str(revision)}
            self.endpoints[name] = _endpoints(self.instances(cs.namespace, cs.discovery_name), attrs)
        return name

    def connect_rules(self, cs: ConnectService) -> tuple[Rule, ...]:
        """A Service Connect service's rules: one to all its instances or, while a deployment
        shifts its traffic (``cs.traffic``), the test-header rules to the test revision first,
        then production traffic over the revisions by weight, what the weights leave of 10000
        to all its instances (so a split can name its revisions' clusters at weight 0 first,
        Envoy warms them, before it moves traffic onto them)."""
        timeouts = {"timeout": cs.per_request_timeout, "idle_timeout": cs.idle_timeout}
        split = getattr(cs, "traffic", None)
        everyone = Target(self.connect_service(cs), 1)
        if split is None or not split.weights:
            return (Rule((everyone,), **timeouts),)
        rules = []
        if split.test_revision is not None and _protocol(cs.app_protocol) != "tcp":
            test = Target(self.revision_service(cs, split.test_family, split.test_revision), 1)
            for header, value in split.test_headers:
                match = Match(headers=(HeaderMatch(header, exact=value),))
                rules.append(Rule((test,), match, **timeouts))
        rest = max(0, 10000 - sum(max(0, w.weight) for w in split.weights))
        production = (Target(everyone.service, rest), *(
            Target(self.revision_service(cs, w.family, w.revision), max(0, w.weight)) for w in split.weights))
        rules.append(Rule(production, **timeouts))
        return tuple(rules)

    def virtual_node(self, mesh: str, node: str) -> str | None:
        spec = self.appmesh.virtual_nodes.get(mesh, {}).get(node)
        if spec is None:
            return None
        name = f"am/{mesh}/{node}"
        if name in self.services:
            return name
        listener = _first_listener(spec)
        protocol = _protocol(str((listener.get("portMapping") or {}).get("protocol", "")))
        try:
            service = Service(
                name,
                protocol=protocol,
                outlier=_outlier(listener.get("outlierDetection")),
                pool=_pool(listener.get("connectionPool")),
            )
        except (ValueError, TypeError) as e:
            self.problems.append(f"virtual node {mesh}/{node}: {e}")
            service = Service(name, protocol=protocol)
        self.services[name] = service
        cloud_map = (spec.get("serviceDiscovery") or {}).get("awsCloudMap")
        if isinstance(cloud_map, dict) and cloud_map.get("namespaceName") and cloud_map.get("serviceName"):
            attrs = {
                a["key"]: a["value"] for a in cloud_map.get("attributes") or [] if "key" in a and "value" in a
            }
            self.endpoints[name] = _endpoints(
                self.instances(cloud_map["namespaceName"], cloud_map["serviceName"]),
                attrs,
                (listener.get("portMapping") or {}).get("port"),
            )
        else:
            self.problems.append(
                f"virtual node {mesh}/{node}: no awsCloudMap service discovery, no endpoints"
            )
            self.endpoints[name] = ()
        return name

    def virtual_service(self, dns_name: str) -> tuple[str, dict[str, Any]] | None:
        """The mesh and spec of the virtual service named ``dns_name`` (the oldest mesh's)."""
        for mesh in self.appmesh.meshes:
            spec = self.appmesh.virtual_services.get(mesh, {}).get(dns_name)
            if spec is not None:
                return mesh, spec
        return None

    def _router_rule(self, mesh: str, route: str, spec: dict[str, Any]) -> tuple[str, Rule] | None:
        kind = next((k for k in _ROUTE_KINDS if isinstance(spec.get(k), dict)), None)
        if kind is None:
            return None
        body = spec[kind]
        targets = []
        timeout = body.get("timeout") or {}
        try:
            for t in (body.get("action") or {}).get("weightedTargets") or []:
                service = self.virtual_node(mesh, str(t.get("virtualNode", "")))
                if service is None:
                    self.problems.append(f"route {mesh}/{route}: no virtual node {t.get('virtualNode')}")
                    continue
                targets.append(Target(service, int(t.get("weight", 0))))
            rule = Rule(
                tuple(targets),
                Match() if kind == "tcpRoute" else _match(kind, body.get("match") or {}),
                _seconds(timeout.get("perRequest")),
                _seconds(timeout.get("idle")),
                _retry(kind, body.get("retryPolicy")),
            )
            rule.check(route)
        except (ValueError, KeyError, TypeError) as e:
            self.problems.append(f"route {mesh}/{route}: {e}")
            return None
        return _ROUTE_KINDS[kind], rule

    def app_mesh_rules(self, dns_name: str) -> tuple[str, tuple[Rule, ...]] | None:
        """The protocol and rules the virtual service ``dns_name`` gives, None without one."""
        found = self.virtual_service(dns_name)
        if found is None:
            return None
        return self.service_rules(found[0], dns_name, found[1])

    def service_rules(
        self, mesh: str, dns_name: str, spec: dict[str, Any]
    ) -> tuple[str, tuple[Rule, ...]] | None:
        """The protocol and rules of the virtual service ``dns_name`` of ``mesh`` (``spec``)."""
        provider = spec.get("provider") or {}
        node = (provider.get("virtualNode") or {}).get("virtualNodeName")
        router = (provider.get("virtualRouter") or {}).get("virtualRouterName")
        if node:
            service = self.virtual_node(mesh, node)
            if service is not None:
                return self.services[service].protocol, (Rule((Target(service, 1),)),)
            self.problems.append(f"virtual service {mesh}/{dns_name}: no virtual node {node}")
        elif router and router in self.appmesh.virtual_routers.get(mesh, {}):
            listener = _first_listener(self.appmesh.virtual_routers[mesh][router])
            protocol = (listener.get("portMapping") or {}).get("protocol")
            routes = self.appmesh.routes.get(mesh, {}).get(router, {})

            def order(name: str) -> tuple[int, str]:
                p = routes[name].get("priority")
                return (p if isinstance(p, int) else 1001, name)

            rules = []
            for name in sorted(routes, key=order):
                got = self._router_rule(mesh, name, routes[name])
                if got is None:
                    continue
                kind_protocol, rule = got
                protocol = protocol or kind_protocol
                if (kind_protocol == "tcp") == (_protocol(str(protocol)) == "tcp"):
                    rules.append(rule)
            if rules:
                return _protocol(str(protocol)), tuple(rules)
            self.problems.append(f"virtual service {mesh}/{dns_name}: router {router} has no usable route")
        else:
            self.problems.append(f"virtual service {mesh}/{dns_name}: no provider to serve")
        return None


def _gateway_route(name: str, spec: dict[str, Any], service: str, rules: tuple[Rule, ...]) -> GatewayRoute:
    """A stored gateway route as :class:`mesh.gateway.GatewayRoute` (App Mesh's defaults: a
    prefix match rewritten to ``/``, the ``Host`` to the virtual service's name)."""
    kind = next(k for k in ("httpRoute", "http2Route", "grpcRoute") if isinstance(spec.get(k), dict))
    body = spec[kind]
    raw = body.get("match") or {}
    rewrite_spec = (body.get("action") or {}).get("rewrite") or {}
    hostname = raw.get("hostname") or {}
    host = next(((k, hostname[k]) for k in ("exact", "suffix") if hostname.get(k)), None)
    if kind == "grpcRoute":
        match = _match(kind, raw)
        rewrite = None
    else:
        match = _match(kind, raw) if (raw.get("prefix") or raw.get("path")) else Match(
            headers=_match(kind, raw).headers, method=raw.get("method"), query=_match(kind, raw).query)
        prefix, path = rewrite_spec.get("prefix") or {}, rewrite_spec.get("path") or {}
        if raw.get("prefix"):
            rewrite = prefix.get("value") or (None if prefix.get("defaultPrefix") == "DISABLED" else "/")
        else:
            rewrite = path.get("exact")
    host_rewrite = (rewrite_spec.get("hostname") or {}).get("defaultTargetHostname") != "DISABLED"
    return GatewayRoute(name, service, rules, match, host, rewrite, host_rewrite)


def _gateways(b: _Builder, host: str) -> list[Gateway]:
    out = []
    for mesh in b.appmesh.meshes:
        for gw, spec in sorted(b.appmesh.virtual_gateways.get(mesh, {}).items()):
            listener = _first_listener(spec)
            mapping = listener.get("portMapping") or {}
            protocol = str(mapping.get("protocol", "http"))
            kind = _GATEWAY_KINDS.get(protocol, "httpRoute")
            routes = b.appmesh.gateway_routes.get(mesh, {}).get(gw, {})

            def order(name: str, routes: Mapping[str, dict[str, Any]] = routes) -> tuple[int, str]:
                p = routes[name].get("priority")
                return (p if isinstance(p, int) else 1001, name)

            served = []
            for name in sorted(routes, key=order):
                rspec = routes[name]
                where = f"gateway route {mesh}/{gw}/{name}"
                if not isinstance(rspec.get(kind), dict):
                    b.problems.append(f"{where}: not a {kind} for the gateway's {protocol} listener")
                    continue
                target = ((rspec[kind].get("action") or {}).get("target") or {}).get("virtualService") or {}
                vs = str(target.get("virtualServiceName", ""))
                vs_spec = b.appmesh.virtual_services.get(mesh, {}).get(vs)
                got = None if vs_spec is None else b.service_rules(mesh, vs, vs_spec)
                if got is None or got[0] == "tcp":
                    b.problems.append(f"{where}: virtual service {vs} has no HTTP rules to serve")
                    continue
                try:
                    served.append(_gateway_route(name, rspec, vs, got[1]))
                except (ValueError, KeyError, TypeError) as e:
                    b.problems.append(f"{where}: {e}")
            try:
                gateway = Gateway(gateway_node(mesh, gw), host, int(mapping.get("port", 0)), protocol,
                                  tuple(served))
                for left in envoy_routes(gateway)[1]:
                    b.problems.append(f"gateway route {mesh}/{gw}/{left.route}: rule {left.index} of its "
                                      f"virtual service is not served: {left.reason}")
            except (ValueError, TypeError) as e:
                b.problems.append(f"virtual gateway {mesh}/{gw}: {e}")
                continue
            out.append(gateway)
    return out


def build(
    tasks: Sequence[MeshedTask],
    namespace_services: Mapping[str, Sequence[ConnectService]],
    appmesh: AppMeshSpecs,
    instances: InstancesOf,
    gateway_host: str = "0.0.0.0",
) -> Desired:
    """The desired mesh for ``tasks`` (the meshed tasks), the Service Connect services of each
    of their namespaces (by namespace name), App Mesh's specs and discovery's instances (see
    the module docstring for the rules); the virtual gateways' Envoys listen on ``gateway_host``."""
    b = _Builder(appmesh, instances)
    tasks = list({t.task_arn: t for t in tasks}.values())
    aliases: dict[tuple[str, str, int], ConnectService] = {}  # (namespace, dnsName, port)
    for ns in sorted(namespace_services):
        for cs in namespace_services[ns]:
            for alias in cs.aliases:
                key = (ns, alias.dns_name, alias.port)
                if key in aliases:
                    b.problems.append(f"namespace {ns}: alias {alias.dns_name}:{alias.port} named twice")
                    continue
                aliases[key] = cs
    ports: dict[tuple[str, str], list[int]] = {}
    for ns, dns, port in sorted(aliases):
        ports.setdefault((ns, dns), []).append(port)
    # the address each alias has in most tasks gets the plain name; any other its own route
    seen: dict[tuple[str, str], dict[str, int]] = {}
    for task in tasks:
        for dns, address in task.alias_addresses.items():
            counts = seen.setdefault((task.namespace, dns), {})
            counts[address] = counts.get(address, 0) + 1
    routes: dict[str, Route] = {}
    route_names: dict[tuple[str, str, str], list[str]] = {}  # (namespace, dnsName, address) -> routes
    for (ns, dns), counts in sorted(seen.items()):
        if (ns, dns) not in ports:
            continue
        usual = min(counts, key=lambda a: (-counts[a], a))
        override = b.app_mesh_rules(dns)
        for address in sorted(counts):
            for port in ports[(ns, dns)]:
                cs = aliases[(ns, dns, port)]
                name = dns if address == usual else f"{dns}@{address}"
                if len(ports[(ns, dns)]) > 1 and port != ports[(ns, dns)][0]:
                    name = f"{name}:{port}"
                if override is not None:
                    protocol, rules = override
                    route = (
                        _shorthand(name, port, rules[0], protocol, address)
                        if len(rules) == 1
                        else Route(name, port, rules=rules, protocol=protocol, address=address)
                    )
                else:
                    rules = b.connect_rules(cs)
                    protocol = _protocol(cs.app_protocol)
                    route = (
                        _shorthand(name, port, rules[0], protocol, address)
                        if len(rules) == 1
                        else Route(name, port, rules=rules, protocol=protocol, address=address)
                    )
                routes[name] = route
                route_names.setdefault((ns, dns, address), []).append(name)
    clients = []
    for task in sorted(tasks, key=lambda t: t.task_arn):
        names = sorted(
            n
            for dns, address in task.alias_addresses.items()
            for n in route_names.get((task.namespace, dns, address), ())
        )
        ingress = []
        for i in task.ingress:
            try:
                ingress.append(Ingress(i.port_name, i.port, i.container_port, _protocol(i.app_protocol)))
            except ValueError as e:
                b.problems.append(f"task {task.task_arn}: {e}")
        access = (getattr(task, "access_log", ""), bool(getattr(task, "access_log_query", False)))
        clients.append(Client(task.task_arn, tuple(names), tuple(ingress), task.egress_port, access))
    gateways = _gateways(b, gateway_host)
    used = {s for r in routes.values() for s in r.services()} | {s for g in gateways for s in g.services()}
    config = MeshConfig(
        services=tuple(b.services[n] for n in sorted(used)),
        routes=tuple(routes[n] for n in sorted(routes)),
        clients=tuple(clients),
    )
    return Desired(config, {n: b.endpoints.get(n, ()) for n in sorted(used)}, tuple(b.problems),
                   tuple(gateways))
