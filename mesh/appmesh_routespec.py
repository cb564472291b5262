"""The checks of a route's spec beyond App Mesh's model (:func:`check_route_spec`), pure.

What is accepted, as App Mesh's API reference describes it:

* exactly one of ``httpRoute``, ``http2Route``, ``grpcRoute``, ``tcpRoute``; ``priority`` 0-1000
  (the model);
* HTTP and HTTP/2 matches: exactly one of ``prefix`` (starting with ``/``) or ``path`` (exactly one
  of ``exact``, starting with ``/``, or ``regex``); ``headers[]`` each with a name and at most one
  ``match`` (``exact``, ``prefix``, ``suffix``, ``regex`` or ``range`` with ``start`` < ``end``),
  ``invert``; ``method``; ``queryParameters[]`` (a name, ``match.exact`` when a match is given);
  ``scheme``; ``port``;
* gRPC matches: ``serviceName``, ``methodName`` (only with a ``serviceName``), ``metadata[]``
  (as headers), ``port``;
* TCP: only ``weightedTargets`` (and ``match.port``, ``timeout.idle``);
* ``action.weightedTargets``: 1 to 10, each naming a virtual node (whose existence
  :mod:`mesh.data` checks in the write), weights 0-100, not all zero, summing to at most 100
  ("The total weight for all targets combined must be less than or equal to 100"), each
  (node, port) once;
* ``retryPolicy`` (HTTP, HTTP/2, gRPC): ``maxRetries``, ``perRetryTimeout`` and at least one kind
  of retry event (``httpRetryEvents`` among server-error, gateway-error, client-error,
  stream-error; ``tcpRetryEvents``; for gRPC also ``grpcRetryEvents``);
* ``timeout``: ``perRequest`` and ``idle`` (``idle`` only for TCP), each a whole duration.

Regexes (path, header, metadata) go through :func:`mesh.appmesh_checks.check_regex` (RE2's rules).
"""

from __future__ import annotations

from typing import Any

from mesh.appmesh_checks import check_duration, check_regex, not_blank, one_of
from mesh.appmesh_errors import BadRequestException

__all__ = ["HTTP_RETRY_EVENTS", "ROUTE_KINDS", "check_header", "check_route_spec"]

ROUTE_KINDS = ("httpRoute", "http2Route", "grpcRoute", "tcpRoute")
HTTP_RETRY_EVENTS = ("server-error", "gateway-error", "client-error", "stream-error")
_HEADER_MATCHES = ("exact", "prefix", "suffix", "regex", "range")
MAX_TARGETS = 10


def check_route_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` if App Mesh (and Dockyard) accepts it, else BadRequestException naming what is wrong."""
    spec = spec or {}
    kinds = [k for k in ROUTE_KINDS if spec.get(k) is not None]
    if len(kinds) != 1:
        raise BadRequestException("A route spec must have exactly one of httpRoute, http2Route, grpcRoute "
                                  "or tcpRoute.")
    kind = kinds[0]
    route = spec[kind]
    if not isinstance(route, dict):
        raise BadRequestException(f"{kind} must be an object.")
    match = route.get("match") or {}
    if kind in ("httpRoute", "http2Route"):
        _check_http_match(match, f"{kind}.match")
    elif kind == "grpcRoute":
        _check_grpc_match(match, f"{kind}.match")
    _check_targets((route.get("action") or {}).get("weightedTargets"), f"{kind}.action.weightedTargets")
    if route.get("retryPolicy") is not None:
        if kind == "tcpRoute":
            raise BadRequestException("A tcpRoute has no retryPolicy.")
        _check_retry(route["retryPolicy"], kind, f"{kind}.retryPolicy")
    timeout = route.get("timeout") or {}
    for name in ("perRequest", "idle"):
        if timeout.get(name) is not None:
            if kind == "tcpRoute" and name == "perRequest":
                raise BadRequestException("A tcpRoute's timeout has only idle.")
            check_duration(timeout[name], f"{kind}.timeout.{name}")
    return spec


def _check_http_match(match: dict[str, Any], where: str) -> None:
    which = one_of(match, ("prefix", "path"), where)
    if which == "prefix":
        if not isinstance(match["prefix"], str) or not match["prefix"].startswith("/"):
            raise BadRequestException(f"{where}.prefix must start with '/'.")
    else:
        path = match["path"]
        if one_of(path, ("exact", "regex"), f"{where}.path") == "exact":
            if not str(path["exact"]).startswith("/"):
                raise BadRequestException(f"{where}.path.exact must start with '/'.")
        else:
            check_regex(path["regex"], f"{where}.path.regex")
    for i, header in enumerate(match.get("headers") or []):
        check_header(header, f"{where}.headers[{i}]")
    for i, param in enumerate(match.get("queryParameters") or []):
        not_blank(param.get("name"), f"{where}.queryParameters[{i}].name")
        if param.get("match") is not None and not isinstance(param["match"].get("exact"), str):
            raise BadRequestException(f"{where}.queryParameters[{i}].match must have exact.")


def _check_grpc_match(match: dict[str, Any], where: str) -> None:
    if match.get("methodName") is not None and match.get("serviceName") is None:
        raise BadRequestException(f"{where}.methodName needs a serviceName.")
    if match.get("serviceName") is not None:
        not_blank(match["serviceName"], f"{where}.serviceName")
    for i, entry in enumerate(match.get("metadata") or []):
        check_header(entry, f"{where}.metadata[{i}]")


def check_header(header: dict[str, Any], where: str) -> None:
    not_blank(header.get("name"), f"{where}.name")
    how = header.get("match")
    if how is None:
        return  # the header is present (or, inverted, absent)
    which = one_of(how, _HEADER_MATCHES, f"{where}.match")
    if which == "regex":
        check_regex(how["regex"], f"{where}.match.regex")
    elif which == "range":
        start, end = how["range"].get("start"), how["range"].get("end")
        if not (isinstance(start, int) and isinstance(end, int)) or start >= end:
            raise BadRequestException(f"{where}.match.range must have a start below its end.")


def _check_targets(targets: Any, where: str) -> None:
    if not isinstance(targets, list) or not targets:
        raise BadRequestException("A route's action must have at least one weighted target.")
    if len(targets) > MAX_TARGETS:
        raise BadRequestException(f"A route's action has at most {MAX_TARGETS} weighted targets.")
    seen: set[tuple[str, Any]] = set()
    for t in targets:
        weight = t.get("weight")
        if not isinstance(weight, int) or isinstance(weight, bool) or not 0 <= weight <= 100:
            raise BadRequestException("A weighted target's weight must be an integer from 0 to 100.")
        if not t.get("virtualNode"):
            raise BadRequestException("A weighted target must name a virtualNode.")
        key = (t["virtualNode"], t.get("port"))
        if key in seen:
            raise BadRequestException(f"{where} names virtual node {key[0]} twice.")
        seen.add(key)
    total = sum(t["weight"] for t in targets)
    if total == 0:
        raise BadRequestException("At least one weighted target must have a weight above 0.")
    if total > 100:
        raise BadRequestException(f"The weights of a route's targets must add up to at most 100, not "
                                  f"{total}.")


def _check_retry(policy: dict[str, Any], kind: str, where: str) -> None:
    check_duration(policy.get("perRetryTimeout"), f"{where}.perRetryTimeout")
    events = ["httpRetryEvents", "tcpRetryEvents"] + (["grpcRetryEvents"] if kind == "grpcRoute" else [])
    if not any(policy.get(e) for e in events):
        raise BadRequestException(f"{where} must name at least one retry event ({', '.join(events)}).")
    for event in policy.get("httpRetryEvents") or []:
        if event not in HTTP_RETRY_EVENTS:
            raise BadRequestException(f"{where}.httpRetryEvents: {event!r} is not one of "
                                      f"{', '.join(HTTP_RETRY_EVENTS)}.")
