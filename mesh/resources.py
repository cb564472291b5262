"""Builders of single Envoy xDS v3 resources from the model (pure; ``mesh.snapshot`` assembles them).

Names (the sidecar and the controller rely on them):

* a ``Service``'s cluster is the service's name (EDS over ADS); an ``Ingress``'s cluster is
  ``local_<name>`` (STATIC, ``127.0.0.1:<local_port>``, load assignment inline);
* an egress listener and its ``RouteConfiguration`` are ``egress_<port>`` for a route without
  ``address``, ``egress_<address>_<port>`` for one with (``egress_127.255.0.3_80``);
* the virtual outbound listener is ``egress_outbound`` (``127.0.0.1:<egress_port>``); what
  it does not hand on goes to ``egress_blackhole`` (STATIC, no endpoint: closed);
* an ingress listener is ``ingress_<name>`` (``0.0.0.0:<port>``), its inline route
  configuration has the same name.
"""

from __future__ import annotations

from collections.abc import Iterable

from envoy.config.accesslog.v3 import accesslog_pb2
from envoy.config.cluster.v3 import circuit_breaker_pb2, cluster_pb2, outlier_detection_pb2
from envoy.config.core.v3 import (
    address_pb2,
    base_pb2,
    config_source_pb2,
    protocol_pb2,
    substitution_format_string_pb2,
)
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import listener_components_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from envoy.type.matcher.v3 import regex_pb2, string_pb2
from envoy.type.v3 import range_pb2
from google.protobuf import any_pb2, duration_pb2, json_format, struct_pb2, wrappers_pb2
from google.protobuf.message import Message

from dockyard import edgeproxy
from mesh.model import Endpoint, HeaderMatch, Ingress, Match, Route, Rule, Service, Target
from mesh.telemetry.traces_envoy import Tracing

OUTBOUND = "egress_outbound"
BLACKHOLE = "egress_blackhole"
HCM_FILTER = "envoy.filters.network.http_connection_manager"
TCP_FILTER = "envoy.filters.network.tcp_proxy"
HTTP2_OPTIONS = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
HTTP2_PROTOCOLS = ("http2", "grpc")


def egress_name(route: Route) -> str:
    if route.address is None:
        return f"egress_{route.port}"
    return f"egress_{route.address}_{route.port}"


def local_name(ingress: Ingress) -> str:
    return f"local_{ingress.name}"


def ingress_name(ingress: Ingress) -> str:
    return f"ingress_{ingress.name}"


def ads() -> config_source_pb2.ConfigSource:
    return config_source_pb2.ConfigSource(ads=config_source_pb2.AggregatedConfigSource(),
                                          resource_api_version=config_source_pb2.V3)


def duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def pack(message: Message) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message, deterministic=True)
    return out


def _socket(address: str, port: int) -> address_pb2.Address:
    return address_pb2.Address(socket_address=address_pb2.SocketAddress(address=address, port_value=port))


def _stat(name: str) -> str:
    return name.replace(".", "_")


# --- clusters and endpoints ---------------------------------------------------------------

def _http2(cluster: cluster_pb2.Cluster) -> None:
    options = http_protocol_options_pb2.HttpProtocolOptions(
        explicit_http_config=http_protocol_options_pb2.HttpProtocolOptions.ExplicitHttpConfig(
            http2_protocol_options=protocol_pb2.Http2ProtocolOptions()))
    cluster.typed_extension_protocol_options[HTTP2_OPTIONS].CopyFrom(pack(options))


def cluster(service: Service) -> cluster_pb2.Cluster:
    """The EDS cluster of ``service``: connect timeout, HTTP/2 upstream for http2 and grpc,
    outlier detection and circuit breakers when the service has them."""
    out = cluster_pb2.Cluster(
        name=service.name, type=cluster_pb2.Cluster.EDS, connect_timeout=duration(service.connect_timeout),
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(eds_config=ads()))
    if service.protocol in HTTP2_PROTOCOLS:
        _http2(out)
    if service.outlier is not None:
        o = service.outlier
        out.outlier_detection.CopyFrom(outlier_detection_pb2.OutlierDetection(
            consecutive_5xx=wrappers_pb2.UInt32Value(value=o.max_server_errors),
            interval=duration(o.interval), base_ejection_time=duration(o.base_ejection),
            max_ejection_percent=wrappers_pb2.UInt32Value(value=o.max_ejection_percent)))
    if service.pool is not None:
        t = circuit_breaker_pb2.CircuitBreakers.Thresholds(priority=base_pb2.DEFAULT)
        for field in ("max_connections", "max_pending_requests", "max_requests"):
            value = getattr(service.pool, field)
            if value is not None:
                getattr(t, field).value = value
        out.circuit_breakers.thresholds.append(t)
    return out


def local_cluster(ingress: Ingress) -> cluster_pb2.Cluster:
    """The STATIC cluster of an ingress: the app on ``127.0.0.1:<local_port>``."""
    name = local_name(ingress)
    out = cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.STATIC, connect_timeout=duration(1.0),
        load_assignment=endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=[
            endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=[endpoint_components_pb2.LbEndpoint(
                endpoint=endpoint_components_pb2.Endpoint(
                    address=_socket("127.0.0.1", ingress.local_port)))])]))
    if ingress.protocol in HTTP2_PROTOCOLS:
        _http2(out)
    return out


def load_assignment(name: str, endpoints: Iterable[Endpoint]) -> endpoint_pb2.ClusterLoadAssignment:
    """Healthy endpoints only, sorted, each address once; no locality at all when none is healthy."""
    lb = [endpoint_components_pb2.LbEndpoint(endpoint=endpoint_components_pb2.Endpoint(
        address=_socket(address, port)))
        for address, port in sorted({(e.address, e.port) for e in endpoints if e.healthy})]
    locality = [endpoint_components_pb2.LocalityLbEndpoints(lb_endpoints=lb)] if lb else []
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=locality)


# --- routes ---------------------------------------------------------------------------------

def _string(exact: str | None = None, prefix: str | None = None, suffix: str | None = None,
            regex: str | None = None) -> string_pb2.StringMatcher:
    if regex is not None:
        return string_pb2.StringMatcher(safe_regex=regex_pb2.RegexMatcher(regex=regex))
    if prefix is not None:
        return string_pb2.StringMatcher(prefix=prefix)
    if suffix is not None:
        return string_pb2.StringMatcher(suffix=suffix)
    return string_pb2.StringMatcher(exact=exact or "")


def _header(h: HeaderMatch) -> rc.HeaderMatcher:
    out = rc.HeaderMatcher(name=h.name, invert_match=h.invert)
    if h.range is not None:
        out.range_match.CopyFrom(range_pb2.Int64Range(start=h.range[0], end=h.range[1]))
    elif any(v is not None for v in (h.exact, h.prefix, h.suffix, h.regex)):
        out.string_match.CopyFrom(_string(h.exact, h.prefix, h.suffix, h.regex))
    else:
        out.present_match = True if h.present is None else h.present
    return out


def route_match(m: Match) -> rc.RouteMatch:
    """Path (prefix, exact path or RE2 regex), headers, ``:method`` and query parameters."""
    out = rc.RouteMatch()
    if m.path is not None:
        out.path = m.path
    elif m.regex is not None:
        out.safe_regex.CopyFrom(regex_pb2.RegexMatcher(regex=m.regex))
    else:
        out.prefix = m.prefix or "/"
    out.headers.extend(_header(h) for h in m.headers)
    if m.method is not None:
        out.headers.append(rc.HeaderMatcher(name=":method", string_match=_string(exact=m.method)))
    for q in m.query:
        qm = rc.QueryParameterMatcher(name=q.name)
        if q.exact is None:
            qm.present_match = True
        else:
            qm.string_match.CopyFrom(_string(exact=q.exact))
        out.query_parameters.append(qm)
    return out


def _weighted(targets: Iterable[Target]) -> rc.WeightedCluster:
    return rc.WeightedCluster(clusters=[
        rc.WeightedCluster.ClusterWeight(name=t.service, weight=wrappers_pb2.UInt32Value(value=t.weight))
        for t in targets if t.weight > 0])


def route_entry(rule: Rule) -> rc.Route:
    """One rule: weighted clusters over its non-zero targets, timeouts (0 disables) and retries."""
    action = rc.RouteAction(weighted_clusters=_weighted(rule.targets))
    if rule.timeout is not None:
        action.timeout.CopyFrom(duration(rule.timeout))
    if rule.idle_timeout is not None:
        action.idle_timeout.CopyFrom(duration(rule.idle_timeout))
    if rule.retry is not None:
        action.retry_policy.retry_on = rule.retry.retry_on
        action.retry_policy.num_retries.value = rule.retry.attempts
        if rule.retry.per_try_timeout is not None:
            action.retry_policy.per_try_timeout.CopyFrom(duration(rule.retry.per_try_timeout))
    return rc.Route(match=route_match(rule.match), route=action)


def route_configuration(name: str, routes: Iterable[Route]) -> route_pb2.RouteConfiguration:
    """One virtual host per route (domains ``name`` and ``name:port``), its rules in order."""
    hosts = [rc.VirtualHost(name=r.name, domains=[r.name, f"{r.name}:{r.port}"],
                            routes=[route_entry(rule) for rule in r.effective_rules()])
             for r in sorted(routes, key=lambda r: r.name)]
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=hosts)


# --- listeners ------------------------------------------------------------------------------

def _listener(name: str, address: str, port: int, network_filter: listener_components_pb2.Filter,
              bind: bool = True, direction: int | None = None) -> listener_pb2.Listener:
    out = listener_pb2.Listener(name=name, address=_socket(address, port),
                                filter_chains=[listener_components_pb2.FilterChain(filters=[network_filter])])
    if not bind:
        out.bind_to_port.value = False
    if direction is not None:  # with tracing: CLIENT spans egress, SERVER spans ingress
        out.traffic_direction = direction  # type: ignore[assignment]
    return out


AccessLog = tuple[str, bool]
"""Service Connect's ``accessLogConfiguration``: ``format`` ("" none, ``TEXT``, ``JSON``) and
whether paths keep their query (``includeQueryParameters``)."""
NO_ACCESS_LOG: AccessLog = ("", False)


def access_logs(access: AccessLog) -> list[accesslog_pb2.AccessLog]:
    """Envoy's access log to stdout in ECS's format (the sidecar's output goes to the
    ``logConfiguration`` log group, runner.logs); none for ``""``."""
    fmt, query = access
    if not fmt:
        return []
    path = "%PATH(WQ)%" if query else "%PATH(NQ)%"
    fields = {"start_time": "%START_TIME%", "method": "%REQ(:METHOD)%", "path": path,
              "protocol": "%PROTOCOL%", "response_code": "%RESPONSE_CODE%",
              "response_flags": "%RESPONSE_FLAGS%",
              "bytes_received": "%BYTES_RECEIVED%", "bytes_sent": "%BYTES_SENT%", "duration": "%DURATION%",
              "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
              "x_forwarded_for": "%REQ(X-FORWARDED-FOR)%", "user_agent": "%REQ(USER-AGENT)%",
              "request_id": "%REQ(X-REQUEST-ID)%", "authority": "%REQ(:AUTHORITY)%",
              "upstream_host": "%UPSTREAM_HOST%"}
    if fmt == "JSON":
        shape = struct_pb2.Struct()
        shape.update(fields)
        log_format = substitution_format_string_pb2.SubstitutionFormatString(json_format=shape)
    else:
        text = ('[%START_TIME%] "%REQ(:METHOD)% ' + path + ' %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% '
                '%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% '
                '"%REQ(X-FORWARDED-FOR)%" "%REQ(USER-AGENT)%" "%REQ(X-REQUEST-ID)%" "%REQ(:AUTHORITY)%" '
                '"%UPSTREAM_HOST%"\n')
        log_format = substitution_format_string_pb2.SubstitutionFormatString(
            text_format_source=base_pb2.DataSource(inline_string=text))
    stdout = stream_pb2.StdoutAccessLog(log_format=log_format)
    return [accesslog_pb2.AccessLog(name="envoy.access_loggers.stdout", typed_config=pack(stdout))]


def _http_manager(name: str, *, rds: bool = False, route_config: route_pb2.RouteConfiguration | None = None,
                  access: AccessLog = NO_ACCESS_LOG,
                  tracing: Tracing | None = None) -> listener_components_pb2.Filter:
    manager = hcm.HttpConnectionManager(
        stat_prefix=_stat(name),
        http_filters=[hcm.HttpFilter(name="envoy.filters.http.router",
                                     typed_config=pack(router_pb2.Router()))],
        access_log=access_logs(access))
    if tracing is not None:
        manager.tracing.CopyFrom(tracing.hcm())
    if rds:
        manager.rds.CopyFrom(hcm.Rds(route_config_name=name, config_source=ads()))
    else:
        manager.route_config.CopyFrom(route_config)
    return listener_components_pb2.Filter(name=HCM_FILTER, typed_config=pack(manager))


def _tcp_proxy(name: str, targets: Iterable[Target] = (), cluster_name: str | None = None,
               idle_timeout: float | None = None) -> listener_components_pb2.Filter:
    proxy = tcp_proxy_pb2.TcpProxy(stat_prefix=_stat(name))
    if cluster_name is not None:
        proxy.cluster = cluster_name
    else:
        proxy.weighted_clusters.clusters.extend(
            tcp_proxy_pb2.TcpProxy.WeightedCluster.ClusterWeight(name=t.service, weight=t.weight)
            for t in targets if t.weight > 0)
    if idle_timeout is not None:
        proxy.idle_timeout.CopyFrom(duration(idle_timeout))
    return listener_components_pb2.Filter(name=TCP_FILTER, typed_config=pack(proxy))


def egress_listener(name: str, address: str, port: int, tcp: Route | None,
                    bind: bool, access: AccessLog = NO_ACCESS_LOG,
                    tracing: Tracing | None = None) -> listener_pb2.Listener:
    """An egress listener: HTTP with RDS ``name`` (and the Zipkin tracer when ``tracing``), or
    for a tcp route a tcp_proxy over its first rule's targets; ``bind`` False for one matched
    by original destination."""
    if tcp is not None:
        rule = tcp.effective_rules()[0]
        network_filter = _tcp_proxy(name, rule.targets, idle_timeout=rule.idle_timeout)
    else:
        network_filter = _http_manager(name, rds=True, access=access, tracing=tracing)
    direction = None if tracing is None else base_pb2.OUTBOUND
    return _listener(name, address, port, network_filter, bind, direction)


def gateway_listener(name: str, address: str, port: int) -> listener_pb2.Listener:
    """A virtual gateway's listener on ``address:port`` with RDS ``name``: it faces clients from
    outside, so it is hardened as the edge's load balancers are (:mod:`dockyard.edgeproxy`)."""
    network_filter = _http_manager(name, rds=True)
    manager = hcm.HttpConnectionManager()
    network_filter.typed_config.Unpack(manager)
    json_format.ParseDict(edgeproxy.connection_manager(), manager)
    network_filter.typed_config.CopyFrom(pack(manager))
    out = _listener(name, address, port, network_filter)
    out.per_connection_buffer_limit_bytes.value = edgeproxy.BUFFER_LIMIT
    return out


def blackhole_cluster() -> cluster_pb2.Cluster:
    """``egress_blackhole``: STATIC without endpoints; a connection proxied there is closed."""
    return cluster_pb2.Cluster(name=BLACKHOLE, type=cluster_pb2.Cluster.STATIC, connect_timeout=duration(1.0),
                               load_assignment=endpoint_pb2.ClusterLoadAssignment(cluster_name=BLACKHOLE))


def outbound_listener(port: int) -> listener_pb2.Listener:
    """The virtual outbound listener on ``127.0.0.1:<port>``: hands each redirected connection to
    the listener of its original destination; its own filter chain (Envoy wants one) proxies
    to ``egress_blackhole``, so a connection to an address no route has is closed."""
    out = _listener(OUTBOUND, "127.0.0.1", port, _tcp_proxy(OUTBOUND, cluster_name=BLACKHOLE))
    out.use_original_dst.value = True
    return out


def ingress_listener(ingress: Ingress, access: AccessLog = NO_ACCESS_LOG,
                     tracing: Tracing | None = None) -> listener_pb2.Listener:
    """``0.0.0.0:<port>`` to ``local_<name>``: every request (or connection, for tcp), with the
    ingress timeout and idle timeout (and the Zipkin tracer on HTTP when ``tracing``)."""
    name = ingress_name(ingress)
    if ingress.protocol == "tcp":
        network_filter = _tcp_proxy(name, cluster_name=local_name(ingress), idle_timeout=ingress.idle_timeout)
    else:
        action = rc.RouteAction(cluster=local_name(ingress))
        if ingress.timeout is not None:
            action.timeout.CopyFrom(duration(ingress.timeout))
        if ingress.idle_timeout is not None:
            action.idle_timeout.CopyFrom(duration(ingress.idle_timeout))
        config = route_pb2.RouteConfiguration(name=name, virtual_hosts=[rc.VirtualHost(
            name=name, domains=["*"], routes=[rc.Route(match=rc.RouteMatch(prefix="/"), route=action)])])
        network_filter = _http_manager(name, route_config=config, access=access, tracing=tracing)
    direction = None if tracing is None else base_pb2.INBOUND
    return _listener(name, "0.0.0.0", ingress.port, network_filter, direction=direction)


# --- reading resources back (for Snapshot.problems) ---------------------------------------

def route_clusters(route: rc.Route) -> list[str]:
    action = route.route
    if action.HasField("weighted_clusters"):
        return [c.name for c in action.weighted_clusters.clusters]
    return [action.cluster] if action.cluster else []


def listener_references(listener: listener_pb2.Listener) -> tuple[list[str], list[str], list[rc.VirtualHost]]:
    """What a listener names: RDS route configurations, clusters (tcp_proxy), inline virtual hosts."""
    rds: list[str] = []
    clusters: list[str] = []
    hosts: list[rc.VirtualHost] = []
    chains = list(listener.filter_chains)
    if listener.HasField("default_filter_chain"):
        chains.append(listener.default_filter_chain)
    for chain in chains:
        for f in chain.filters:
            if f.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                manager = hcm.HttpConnectionManager()
                f.typed_config.Unpack(manager)
                if manager.HasField("rds"):
                    rds.append(manager.rds.route_config_name)
                elif manager.HasField("route_config"):
                    hosts.extend(manager.route_config.virtual_hosts)
            elif f.typed_config.Is(tcp_proxy_pb2.TcpProxy.DESCRIPTOR):
                proxy = tcp_proxy_pb2.TcpProxy()
                f.typed_config.Unpack(proxy)
                if proxy.HasField("weighted_clusters"):
                    clusters.extend(c.name for c in proxy.weighted_clusters.clusters)
                elif proxy.cluster:
                    clusters.append(proxy.cluster)
    return rds, clusters, hosts
