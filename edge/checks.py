"""Pure checks of ELBv2 requests: actions, conditions, health checks, ports and attributes.

Each raises the AWS error ELBv2 answers (``ValidationError``, ``InvalidConfigurationRequest``,
...) or returns the normalised value. No I/O; the handlers (``edge.elbv2``) call them.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from edge.errors import InvalidConfigurationRequest, TargetGroupNotFound, ValidationError
from edge.health import parse_matcher

__all__ = [
    "LB_ATTRIBUTES",
    "MAX_CONDITION_VALUES",
    "TG_ATTRIBUTES",
    "attributes",
    "check_actions",
    "check_conditions",
    "check_health_check",
    "parse_ports",
    "port_allowed",
]

MAX_CONDITION_VALUES = 5  # ALB: condition values per rule
_FIELDS = {
    "host-header": "HostHeaderConfig",
    "path-pattern": "PathPatternConfig",
    "http-header": "HttpHeaderConfig",
    "http-request-method": "HttpRequestMethodConfig",
    "query-string": "QueryStringConfig",
    "source-ip": "SourceIpConfig",
}
_ONCE = {"host-header", "path-pattern", "http-request-method", "source-ip"}

LB_ATTRIBUTES = {
    "idle_timeout.timeout_seconds": "60",
    "deletion_protection.enabled": "false",
    "routing.http2.enabled": "true",
    "routing.http.drop_invalid_header_fields.enabled": "false",
    "access_logs.s3.enabled": "false",
    "access_logs.s3.bucket": "",
    "access_logs.s3.prefix": "",
}
TG_ATTRIBUTES = {
    "deregistration_delay.timeout_seconds": "300",
    "stickiness.enabled": "false",
    "stickiness.type": "lb_cookie",
    "stickiness.lb_cookie.duration_seconds": "86400",
    "load_balancing.algorithm.type": "round_robin",
    "slow_start.duration_seconds": "0",
}
_BOUNDS: dict[str, Callable[[str], bool]] = {
    "idle_timeout.timeout_seconds": lambda v: v.isdigit() and 1 <= int(v) <= 4000,
    "deregistration_delay.timeout_seconds": lambda v: v.isdigit() and 0 <= int(v) <= 3600,
    "stickiness.lb_cookie.duration_seconds": lambda v: v.isdigit() and 1 <= int(v) <= 604800,
    "slow_start.duration_seconds": lambda v: v.isdigit() and (int(v) == 0 or 30 <= int(v) <= 900),
    "stickiness.type": lambda v: v == "lb_cookie",
    "load_balancing.algorithm.type": lambda v: v in ("round_robin", "least_outstanding_requests"),
}


def attributes(
    current: Mapping[str, str], changes: Sequence[Mapping[str, str]], known: Mapping[str, str]
) -> dict[str, str]:
    """``current`` with ``changes`` (``[{Key, Value}]``) applied; ValidationError for a key
    not in ``known`` or a value out of its bounds."""
    out = dict(current)
    for item in changes:
        key, value = item.get("Key", ""), item.get("Value", "")
        if key not in known:
            raise ValidationError(f"Attribute key '{key}' is not recognized")
        if known[key] in ("true", "false") and value not in ("true", "false"):
            raise ValidationError(f"Attribute '{key}' must be 'true' or 'false', not '{value}'")
        check = _BOUNDS.get(key)
        if check is not None and not check(value):
            raise ValidationError(f"'{value}' is not a valid value of attribute '{key}'")
        out[key] = value
    return out


def parse_ports(text: str) -> list[tuple[int, int]]:
    """``8000-8999,443`` → inclusive ranges (the ``edge_ports`` setting); ValueError if bad."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not 1 <= a <= b <= 65535:
            raise ValueError(f"{part!r} is not a port or port range")
        out.append((a, b))
    return out


def port_allowed(ranges: Sequence[tuple[int, int]], port: int) -> bool:
    return any(a <= port <= b for a, b in ranges)


def check_health_check(hc: Mapping[str, Any]) -> None:
    """The health-check settings of a target group as ALB bounds them."""
    bounds = {
        "HealthCheckIntervalSeconds": (5, 300),
        "HealthCheckTimeoutSeconds": (2, 120),
        "HealthyThresholdCount": (2, 10),
        "UnhealthyThresholdCount": (2, 10),
    }
    for key, (lo, hi) in bounds.items():
        value = hc.get(key)
        if value is not None and not lo <= int(value) <= hi:
            raise ValidationError(f"{key} must be between {lo} and {hi}, not {value}")
    if int(hc["HealthCheckTimeoutSeconds"]) >= int(hc["HealthCheckIntervalSeconds"]):
        raise ValidationError("Health check interval must be greater than the timeout.")
    path = hc.get("HealthCheckPath", "/")
    if not path.startswith("/") or len(path) > 1024:
        raise ValidationError(
            f"Health check path '{path}' must begin with '/' and be at most 1024 characters"
        )
    matcher = hc.get("Matcher") or {}
    if "HttpCode" in matcher:
        try:
            parse_matcher(matcher["HttpCode"])
        except ValueError as e:
            raise ValidationError(
                f"Health check matcher HTTP code '{matcher['HttpCode']}' is not valid: {e}"
            ) from None


def check_conditions(conditions: Sequence[Mapping[str, Any]]) -> None:
    """At most five condition values in all, host-header, path-pattern, method and
    source-ip once each, values that parse."""
    seen: set[str] = set()
    total = 0
    for cond in conditions:
        name = cond.get("Field", "")
        if name not in _FIELDS:
            raise ValidationError(f"Condition field '{name}' is not supported")
        if name in _ONCE and name in seen:
            raise ValidationError(f"A rule can have only one '{name}' condition")
        seen.add(name)
        cfg = cond.get(_FIELDS[name]) or {}
        values = list(cfg.get("Values") or cond.get("Values") or [])
        if not values:
            raise ValidationError(f"A '{name}' condition must have at least one value")
        total += len(values)
        if name == "http-header" and not cfg.get("HttpHeaderName"):
            raise ValidationError("An 'http-header' condition must name a header (HttpHeaderName)")
        if name == "source-ip":
            for v in values:
                try:
                    net = ipaddress.ip_network(v, strict=False)
                except ValueError:
                    raise ValidationError(f"'{v}' is not a valid CIDR block") from None
                if net.version != 4:
                    raise InvalidConfigurationRequest(
                        f"'{v}': Dockyard's source-ip condition takes IPv4 blocks"
                    )
        if name in ("host-header", "path-pattern", "http-header"):
            for v in values:
                if not isinstance(v, str) or not v or len(v) > 128:
                    raise ValidationError(f"Condition value '{v}' must be 1 to 128 characters")
    if total > MAX_CONDITION_VALUES:
        raise ValidationError(f"A rule can only have '{MAX_CONDITION_VALUES}' condition values")


def check_actions(actions: Sequence[Mapping[str, Any]], group_exists: Callable[[str], bool]) -> None:
    """One terminal action (forward, redirect, fixed-response), last in order; target
    groups that exist; weights 0-999; status codes ALB accepts."""
    if not actions:
        raise ValidationError("At least one action must be specified")
    ordered = sorted(actions, key=lambda a: a.get("Order", 0))
    for n, act in enumerate(ordered):
        kind = act.get("Type")
        if kind not in ("forward", "redirect", "fixed-response"):
            raise InvalidConfigurationRequest(
                f"Action type '{kind}' is not supported by Dockyard's load balancer"
            )
        if n != len(ordered) - 1:
            raise InvalidConfigurationRequest(
                "Only the last action may be forward, redirect or fixed-response"
            )
        if kind == "forward":
            fwd = act.get("ForwardConfig") or {}
            groups = [g.get("TargetGroupArn", "") for g in fwd.get("TargetGroups", [])]
            if act.get("TargetGroupArn"):
                groups.append(act["TargetGroupArn"])
            if not groups:
                raise ValidationError("A forward action must name a target group")
            if len(fwd.get("TargetGroups", [])) > 5:
                raise ValidationError("A forward action can have at most 5 target groups")
            for g in fwd.get("TargetGroups", []):
                if not 0 <= int(g.get("Weight", 1)) <= 999:
                    raise ValidationError("Target group weights must be between 0 and 999")
            for arn in groups:
                if not group_exists(arn):
                    raise TargetGroupNotFound(f"Target group '{arn}' not found")
        elif kind == "redirect":
            cfg = act.get("RedirectConfig") or {}
            if cfg.get("StatusCode") not in ("HTTP_301", "HTTP_302"):
                raise ValidationError("A redirect action's StatusCode must be HTTP_301 or HTTP_302")
            if cfg.get("Protocol") not in (None, "#{protocol}", "HTTP", "HTTPS"):
                raise ValidationError("A redirect's protocol must be HTTP, HTTPS or #{protocol}")
            port = cfg.get("Port")
            if port not in (None, "#{port}") and not (str(port).isdigit() and 1 <= int(port) <= 65535):
                raise ValidationError(f"Redirect port '{port}' is not valid")
        else:
            cfg = act.get("FixedResponseConfig") or {}
            code = str(cfg.get("StatusCode", ""))
            if not (len(code) == 3 and code.isdigit() and code[0] in "245"):
                raise ValidationError(f"Fixed response status code '{code}' must be 2XX, 4XX or 5XX")
            if len(cfg.get("MessageBody", "")) > 1024:
                raise ValidationError("A fixed response's message body is at most 1024 characters")
