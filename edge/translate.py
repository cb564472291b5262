"""ALB listeners, rules and target groups → Envoy's listeners, routes, clusters and endpoints.

A pure function: :func:`translate` takes the edge's state as plain values and returns the
xDS resources as JSON-able dicts (``edge.xds`` turns them into protobuf):

* one listener ``edge_<id>`` per ALB listener on ``host:port`` (HTTPS: a TLS transport socket
  with the certificate inline), an HTTP connection manager taking route config ``edge_<id>``
  over ADS;
* one route config per listener, one virtual host (``*``), one Envoy route per alternative of
  each rule in priority order, the default actions last. An ALB condition with several values
  matches any of them; several conditions must all match: a rule becomes the cartesian product
  of its conditions' values. Host headers and HTTP headers match case-insensitively, paths and
  query strings case-sensitively, ``*`` and ``?`` as ALB's wildcards; ``source-ip`` matches
  the client address Envoy appends to ``x-forwarded-for``;
* actions: ``forward`` (one target group or weighted ones, a zero weight left out, none left:
  503), ``redirect`` (``#{host}``, ``#{port}``, ``#{path}``, ``#{query}`` keep the request's),
  ``fixed-response`` (a direct response);
* one EDS cluster ``tg_<id>`` per target group named by a rule (HTTP/2 upstream for
  ``HTTP2``/``GRPC``, TLS upstream for ``HTTPS``, a cookie hash for ``lb_cookie``
  stickiness) and its load assignment: the targets that are healthy, or every routable one when
  none is (ALB's fail-open).

Hardening, after Envoy's "configuring Envoy as an edge proxy": paths normalized and slashes
merged before rules match (``/./admin`` is ``/admin``; an escaped slash is unescaped by a
redirect), header names with underscores refused with 400 (dropped instead when the load
balancer's ``routing.http.drop_invalid_header_fields.enabled`` is true), 32 KiB buffers per
connection, a 10 s limit on sending the request headers, 300 s stream idle timeout, the
load balancer's ``idle_timeout.timeout_seconds`` as the connection idle timeout, and bounded
HTTP/2 streams and windows. HTTP listeners speak HTTP/1.1; HTTPS ones offer h2 by ALPN unless
``routing.http2.enabled`` is false. Envoy itself refuses conflicting Content-Length and
Transfer-Encoding, oversized headers (431) and malformed requests.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockyard import edgeproxy

__all__ = ["Group", "Listener", "Rule", "glob_regex", "listener_name", "source_regex", "translate"]

HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
DOWNSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
BUFFER_LIMIT = edgeproxy.BUFFER_LIMIT
UPSTREAM_TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
ADS = {"ads": {}, "resource_api_version": "V3"}


@dataclass(frozen=True)
class Rule:
    priority: int
    conditions: tuple[Mapping[str, Any], ...]
    actions: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class Listener:
    id: str
    host: str
    port: int
    protocol: str  # HTTP | HTTPS
    default_actions: tuple[Mapping[str, Any], ...]
    rules: tuple[Rule, ...] = ()
    certificate: tuple[str, str] | None = None  # (chain PEM, key PEM) for HTTPS
    idle_timeout: int = 60  # the load balancer's idle_timeout.timeout_seconds
    http2: bool = True  # routing.http2.enabled (HTTPS listeners only, as ALB)
    drop_invalid_headers: bool = False  # routing.http.drop_invalid_header_fields.enabled


@dataclass(frozen=True)
class Group:
    arn: str
    id: str
    protocol: str = "HTTP"  # HTTP | HTTPS
    version: str = "HTTP1"  # HTTP1 | HTTP2 | GRPC
    endpoints: tuple[tuple[str, int], ...] = ()  # where Envoy sends requests
    stickiness: float | None = None  # lb_cookie duration in seconds when enabled
    attrs: Mapping[str, str] = field(default_factory=dict)


def glob_regex(pattern: str, *, host: bool = False) -> str:
    """An RE2 regex for ALB's wildcard pattern (``*`` any run, ``?`` one character); a host
    pattern ignores case and an optional ``:port``."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return f"(?i){body}(:[0-9]+)?" if host else body


def source_regex(cidr: str) -> str:
    """An RE2 regex matching the last ``x-forwarded-for`` element (the address Envoy saw) in
    ``cidr``; ValueError for a bad or non-IPv4 block."""
    net = ipaddress.ip_network(cidr, strict=False)
    if net.version != 4:
        raise ValueError(f"{cidr}: only IPv4 blocks are supported")
    full, rest = divmod(net.prefixlen, 8)
    octets = str(net.network_address).split(".")
    parts = [re.escape(o) for o in octets[:full]]
    if full < 4:
        if rest:
            base = int(octets[full])
            parts.append("(" + "|".join(str(v) for v in range(base, base + 2 ** (8 - rest))) + ")")
            full += 1
        parts.extend(["[0-9]{1,3}"] * (4 - full))
    return r"(^|.*,\s*)" + r"\.".join(parts) + r"\s*$"


def _regex(value: str) -> dict[str, Any]:
    return {"safe_regex": {"regex": value}}


def _alternatives(cond: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The partial Envoy route matches of one ALB condition, any of which matches it."""
    kind = cond.get("Field", "")
    cfg_key = {
        "host-header": "HostHeaderConfig",
        "path-pattern": "PathPatternConfig",
        "http-header": "HttpHeaderConfig",
        "http-request-method": "HttpRequestMethodConfig",
        "query-string": "QueryStringConfig",
        "source-ip": "SourceIpConfig",
    }.get(kind)
    cfg = cond.get(cfg_key, {}) if cfg_key else {}
    values = list(cfg.get("Values") or cond.get("Values") or [])
    if kind == "host-header":
        return [
            {"headers": [{"name": ":authority", "string_match": _regex(glob_regex(v, host=True))}]}
            for v in values
        ]
    if kind == "path-pattern":
        return [{"path": _regex(glob_regex(v))} for v in values]
    if kind == "http-header":
        name = cfg.get("HttpHeaderName", "")
        return [
            {"headers": [{"name": name.lower(), "string_match": _regex("(?i)" + glob_regex(v))}]}
            for v in values
        ]
    if kind == "http-request-method":
        return [{"headers": [{"name": ":method", "string_match": {"exact": v}}]} for v in values]
    if kind == "query-string":
        out = []
        for kv in values:
            key, val = kv.get("Key"), kv.get("Value", "")
            if key:
                out.append({"query_parameters": [{"name": key, "string_match": _regex(glob_regex(val))}]})
            else:  # a value without a key: any parameter's value
                out.append({"query_parameters": [], "query_value": glob_regex(val)})
        return out
    if kind == "source-ip":
        return [
            {"headers": [{"name": "x-forwarded-for", "string_match": _regex(source_regex(v))}]}
            for v in values
        ]
    raise ValueError(f"unknown condition field {kind!r}")


def _merge(parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    match: dict[str, Any] = {"prefix": "/"}
    headers: list[dict[str, Any]] = []
    query: list[dict[str, Any]] = []
    for p in parts:
        if "path" in p:
            match.pop("prefix", None)
            match["safe_regex"] = p["path"]["safe_regex"]
        headers.extend(p.get("headers", []))
        query.extend(p.get("query_parameters", []))
        if "query_value" in p:  # ALB's key-less value: some parameter has it
            headers.append(
                {"name": ":path", "string_match": _regex(r".*[?&][^=&]*=" + p["query_value"] + r"(&.*)?")}
            )
    if headers:
        match["headers"] = headers
    if query:
        match["query_parameters"] = query
    return match


def _keep(value: str | None, placeholder: str) -> bool:
    return value in (None, "", placeholder)


def _action(actions: Sequence[Mapping[str, Any]], groups: Mapping[str, Group]) -> dict[str, Any]:
    """The Envoy route action of an ALB rule's actions (the last, terminal one decides)."""
    act = sorted(actions, key=lambda a: a.get("Order", 0))[-1]
    kind = act.get("Type")
    if kind == "fixed-response":
        cfg = act.get("FixedResponseConfig", {})
        out: dict[str, Any] = {"direct_response": {"status": int(cfg.get("StatusCode", "200"))}}
        if cfg.get("MessageBody"):
            out["direct_response"]["body"] = {"inline_string": cfg["MessageBody"]}
        if cfg.get("ContentType"):
            out["response_headers_to_add"] = [
                {
                    "header": {"key": "content-type", "value": cfg["ContentType"]},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ]
        return out
    if kind == "redirect":
        cfg = act.get("RedirectConfig", {})
        red: dict[str, Any] = {
            "response_code": "FOUND" if cfg.get("StatusCode") == "HTTP_302" else "MOVED_PERMANENTLY"
        }
        proto = cfg.get("Protocol")
        port = cfg.get("Port")
        if proto == "HTTPS" and port == "443":  # the default port is left out of the location
            red["https_redirect"] = True
        else:
            if not _keep(proto, "#{protocol}"):
                red["scheme_redirect"] = proto.lower()  # type: ignore[union-attr]
            if not _keep(port, "#{port}"):
                red["port_redirect"] = int(port)  # type: ignore[arg-type]
        if not _keep(cfg.get("Host"), "#{host}"):
            red["host_redirect"] = cfg["Host"]
        if not _keep(cfg.get("Path"), "/#{path}"):
            red["path_redirect"] = cfg["Path"]
        if cfg.get("Query") == "":
            red["strip_query"] = True
        return {"redirect": red}
    if kind == "forward":
        fwd = act.get("ForwardConfig") or {}
        weighted = [(g["TargetGroupArn"], int(g.get("Weight", 1))) for g in fwd.get("TargetGroups", [])]
        if not weighted and act.get("TargetGroupArn"):
            weighted = [(act["TargetGroupArn"], 1)]
        live = [(groups[arn], w) for arn, w in weighted if w > 0 and arn in groups]
        if not live:
            return {"direct_response": {"status": 503}}
        route: dict[str, Any] = {"timeout": "60s"}
        if len(live) == 1:
            route["cluster"] = f"tg_{live[0][0].id}"
        else:
            route["weighted_clusters"] = {"clusters": [{"name": f"tg_{g.id}", "weight": w} for g, w in live]}
        sticky = next((g.stickiness for g, _ in live if g.stickiness), None)
        if sticky:
            route["hash_policy"] = [{"cookie": {"name": "AWSALB", "ttl": f"{int(sticky)}s"}}]
        return {"route": route}
    raise ValueError(f"unknown action type {kind!r}")


def _routes(listener: Listener, groups: Mapping[str, Group]) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for rule in sorted(listener.rules, key=lambda r: r.priority):
        options = [_alternatives(c) for c in rule.conditions]
        action = _action(rule.actions, groups)
        for n, combo in enumerate(itertools.product(*options)):
            routes.append({"name": f"rule_{rule.priority}_{n}", "match": _merge(combo), **action})
    routes.append({"name": "default", "match": {"prefix": "/"}, **_action(listener.default_actions, groups)})
    return routes


def listener_name(listener_id: str) -> str:
    """The Envoy listener's name and stat prefix (``http.<it>.downstream_rq_total``)."""
    return f"edge_{listener_id}"


def _listener(listener: Listener) -> dict[str, Any]:
    name = listener_name(listener.id)
    h2 = listener.protocol == "HTTPS" and listener.http2
    hcm = {
        "@type": HCM,
        "stat_prefix": name,
        "codec_type": "AUTO" if h2 else "HTTP1",
        "rds": {"route_config_name": name, "config_source": ADS},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": ROUTER}}],
        **edgeproxy.connection_manager(listener.idle_timeout, listener.drop_invalid_headers),
    }
    chain: dict[str, Any] = {
        "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]
    }
    if listener.protocol == "HTTPS" and listener.certificate is not None:
        chain_pem, key_pem = listener.certificate
        chain["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": DOWNSTREAM_TLS,
                "common_tls_context": {
                    "alpn_protocols": ["h2", "http/1.1"] if h2 else ["http/1.1"],
                    "tls_certificates": [
                        {
                            "certificate_chain": {"inline_string": chain_pem},
                            "private_key": {"inline_string": key_pem},
                        }
                    ],
                },
            },
        }
    return {
        "name": name,
        "address": {"socket_address": {"address": listener.host, "port_value": listener.port}},
        "per_connection_buffer_limit_bytes": BUFFER_LIMIT,
        "filter_chains": [chain],
    }


def _cluster(group: Group) -> dict[str, Any]:
    cluster: dict[str, Any] = {
        "name": f"tg_{group.id}",
        "type": "EDS",
        "connect_timeout": "5s",
        "eds_cluster_config": {"eds_config": ADS},
        "lb_policy": "RING_HASH" if group.stickiness else "ROUND_ROBIN",
        "per_connection_buffer_limit_bytes": BUFFER_LIMIT,
    }
    if group.version in ("HTTP2", "GRPC"):
        cluster["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        }
    if group.protocol == "HTTPS":
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {"@type": UPSTREAM_TLS},
        }
    return cluster


def _assignment(group: Group) -> dict[str, Any]:
    return {
        "cluster_name": f"tg_{group.id}",
        "endpoints": [
            {
                "lb_endpoints": [
                    {"endpoint": {"address": {"socket_address": {"address": ip, "port_value": port}}}}
                    for ip, port in group.endpoints
                ]
            }
        ],
    }


def translate(listeners: Sequence[Listener], groups: Sequence[Group]) -> dict[str, list[dict[str, Any]]]:
    """The edge Envoy's resources: ``clusters``, ``endpoints``, ``listeners``, ``routes``."""
    by_arn = {g.arn: g for g in groups}
    routes = [
        {
            "name": f"edge_{lst.id}",
            "virtual_hosts": [{"name": "alb", "domains": ["*"], "routes": _routes(lst, by_arn)}],
        }
        for lst in listeners
    ]
    used = sorted(
        {
            c["cluster"]
            for rc in routes
            for vh in rc["virtual_hosts"]
            for r in vh["routes"]
            for c in _clusters_of(r)
        }
    )
    named = [g for g in groups if f"tg_{g.id}" in used]
    return {
        "clusters": [_cluster(g) for g in named],
        "endpoints": [_assignment(g) for g in named],
        "listeners": [_listener(lst) for lst in listeners],
        "routes": routes,
    }


def _clusters_of(route: Mapping[str, Any]) -> list[dict[str, str]]:
    r = route.get("route")
    if not r:
        return []
    if "cluster" in r:
        return [{"cluster": r["cluster"]}]
    return [{"cluster": c["name"]} for c in r["weighted_clusters"]["clusters"]]
