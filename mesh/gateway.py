"""App Mesh virtual gateways → an ingress Envoy's snapshot (pure).

A gateway Envoy (node id :func:`gateway_node`, ``mesh/<mesh>/virtualGateway/<name>`` as App
Mesh's Envoy names itself) has one listener ``gateway_<port>`` on ``host:port`` (its App Mesh
listener's port, bound on this host), an HTTP connection manager taking route configuration
``gateway_<port>`` over ADS, and one virtual host ``*``. Each gateway route (in ``priority``
order, 0 first, none last, then by name) targets a virtual service, whose own rules (a
router's weighted routes, or its one virtual node) still apply, so one gateway route becomes
one Envoy route per rule of its virtual service (:func:`combine`), and a canary's weights
inside the mesh hold for traffic from outside too:

* the gateway route's match (``prefix``; ``path.exact``; ``path.regex``; ``headers``,
  ``method``, ``queryParameters``; ``hostname`` ``exact``/``suffix`` as an ``:authority``
  regex, any case, any port) and the rule's headers, method and query parameters must all hold;
* the rule's own path match is read on the path as the gateway rewrote it (App Mesh sends the
  rewritten request on to the virtual service): a rule prefix ``Q`` under a gateway prefix
  ``P`` rewritten to ``R`` becomes the prefix ``P + Q[len(R):]`` when ``Q`` extends ``R``, none
  when ``R`` extends ``Q``, and never matches otherwise; an exact rule path likewise; under an
  exact gateway path the rewritten path is known and the rule is kept or dropped. A rule regex
  under a gateway prefix, or any rule path under a gateway regex, cannot be said in one Envoy
  route and is left out and named (:class:`Unserved`);
* rewrites: ``prefix`` (App Mesh's default, ``defaultPrefix`` ``ENABLED``: the matched prefix
  becomes ``/``; ``DISABLED``: kept; ``value``: that value) and ``path.exact`` are Envoy's
  ``prefix_rewrite``; the ``Host`` becomes the virtual service's name
  (``defaultTargetHostname`` ``ENABLED``, the default) or stays (``DISABLED``);
* the action is the rule's: weighted clusters over its virtual nodes' services, its timeouts
  and retries.

A request no gateway route matches gets Envoy's 404.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import re2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2

from mesh import resources as res
from mesh.model import Endpoint, HeaderMatch, Match, Rule, Service
from mesh.snapshot import Shared, Snapshot

__all__ = ["Gateway", "GatewayRoute", "Unserved", "combine", "envoy_routes", "gateway_node",
           "gateway_snapshot", "hostname_regex"]


def gateway_node(mesh: str, name: str) -> str:
    """The node id of a virtual gateway's Envoy."""
    return f"mesh/{mesh}/virtualGateway/{name}"


@dataclass(frozen=True)
class GatewayRoute:
    """One gateway route: its ``match`` (a prefix ``/`` for a hostname-only match), an optional
    ``hostname`` (``("exact"|"suffix", value)``), what the matched prefix or exact path becomes
    (``rewrite``, None: kept), whether the ``Host`` becomes the virtual service's name, and
    the virtual service's ``rules``."""

    name: str
    service: str  # the virtual service's name
    rules: tuple[Rule, ...]
    match: Match
    hostname: tuple[str, str] | None = None
    rewrite: str | None = None
    host_rewrite: bool = True


@dataclass(frozen=True)
class Gateway:
    """A gateway Envoy: its node id, where its listener binds, its listener's protocol, and
    its gateway routes in order."""

    node: str
    host: str
    port: int
    protocol: str
    routes: tuple[GatewayRoute, ...] = ()

    @property
    def listener_name(self) -> str:
        return f"gateway_{self.port}"

    def services(self) -> set[str]:
        return {t.service for r in self.routes for rule in r.rules for t in rule.targets}


@dataclass(frozen=True)
class Unserved:
    """A rule of a gateway route's virtual service that cannot be served through it, and why."""

    route: str
    index: int
    reason: str


def hostname_regex(kind: str, value: str) -> str:
    """An RE2 regex for ``:authority``: the host ``value`` exactly (``exact``) or ending in it
    (``suffix``), any case, with an optional port."""
    body = re.escape(value)
    return f"(?i){'.*' if kind == 'suffix' else ''}{body}(:[0-9]+)?"


def _is_root(m: Match) -> bool:
    return m.prefix == "/"


def combine(route: GatewayRoute, rule: Rule) -> tuple[Match, str | None] | str:
    """The Envoy match and ``prefix_rewrite`` of ``rule`` reached through ``route``, or why it
    cannot be (module docstring)."""
    g, r = route.match, rule.match
    if g.method is not None and r.method is not None and g.method != r.method:
        return "its method differs from the gateway route's"
    headers = g.headers + r.headers
    if route.hostname is not None:
        headers += (HeaderMatch(":authority", regex=hostname_regex(*route.hostname)),)
    common = {"headers": headers, "method": g.method or r.method, "query": g.query + r.query}
    if g.prefix is not None:
        rewritten = route.rewrite if route.rewrite is not None else g.prefix
        if _is_root(r):
            return Match(prefix=g.prefix, **common), route.rewrite
        for want, exact in ((r.prefix, False), (r.path, True)):
            if want is None:
                continue
            if not exact and rewritten.startswith(want):
                return Match(prefix=g.prefix, **common), route.rewrite
            if want.startswith(rewritten):
                incoming = g.prefix + want[len(rewritten):]
                out = (Match(prefix=None, path=incoming, **common) if exact
                       else Match(prefix=incoming, **common))
                return out, want if route.rewrite is not None else None
            return "its path never matches the rewritten path"
        return "a regex path under a gateway prefix match is not supported"
    if g.path is not None:
        rewritten = route.rewrite if route.rewrite is not None else g.path
        fits = (_is_root(r) or (r.prefix is not None and rewritten.startswith(r.prefix))
                or r.path == rewritten
                or (r.regex is not None and re2.fullmatch(r.regex, rewritten) is not None))
        if not fits:
            return "its path never matches the rewritten path"
        return Match(prefix=None, path=g.path, **common), route.rewrite
    if not _is_root(r):
        return "a path match under a gateway regex match is not supported"
    return Match(prefix=None, regex=g.regex, **common), None


def envoy_routes(gateway: Gateway) -> tuple[list[rc.Route], list[Unserved]]:
    """The Envoy routes of a gateway, in order, and the rules left out."""
    out: list[rc.Route] = []
    left: list[Unserved] = []
    for route in gateway.routes:
        for i, rule in enumerate(route.rules):
            got = combine(route, rule)
            if isinstance(got, str):
                left.append(Unserved(route.name, i, got))
                continue
            match, rewrite = got
            entry = res.route_entry(replace(rule, match=match))
            if rewrite is not None:
                entry.route.prefix_rewrite = rewrite
            if route.host_rewrite:
                entry.route.host_rewrite_literal = route.service
            out.append(entry)
    return out, left


def gateway_snapshot(gateway: Gateway, services: Mapping[str, Service],
                     endpoints: Mapping[str, Iterable[Endpoint]], shared: Shared | None = None) -> Snapshot:
    """The gateway Envoy's snapshot: the clusters and load assignments of the services its
    routes reach, its listener and its route configuration."""
    s = shared if shared is not None else Shared()
    reached = sorted(n for n in gateway.services() if n in services)
    clusters = [s.make(("cds", n), lambda n=n: res.cluster(services[n])) for n in reached]
    assignments = [s.make(("eds", n), lambda n=n: res.load_assignment(n, endpoints.get(n, ())))
                   for n in reached]
    name = gateway.listener_name
    listener: listener_pb2.Listener = res.egress_listener(name, gateway.host, gateway.port, None, bind=True)
    routes, _ = envoy_routes(gateway)
    config = route_pb2.RouteConfiguration(name=name, virtual_hosts=[
        rc.VirtualHost(name=name, domains=["*"], routes=routes)])
    members = frozenset(e.instance for n in reached for e in endpoints.get(n, ()) if e.healthy and e.instance)
    return Snapshot.of(clusters, assignments, [listener], [config], members, shared=s)
