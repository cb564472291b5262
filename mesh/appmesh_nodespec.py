"""The checks of a virtual node's and a virtual service's spec beyond App Mesh's model, pure.

A virtual node (``VirtualNodeSpec``), as App Mesh's API reference states it:

* ``listeners``: at most one ("You can specify one listener"); with a listener, a
  ``serviceDiscovery`` is required ("If you specify a listener, then you must specify service
  discovery information"). A listener's ``connectionPool`` and ``timeout`` are unions of one
  member, of the listener's own protocol (an ``http`` listener takes ``http``); timeouts are
  ``perRequest`` and ``idle`` (``tcp``: ``idle``), whole durations; ``outlierDetection``'s
  ``interval`` and ``baseEjectionDuration`` are durations above zero; a health check's ``path``,
  when given, starts with ``/``. Listener TLS and backend TLS client policies are refused:
  Dockyard's sidecars do not do TLS yet, and accepting them would claim encryption that is not
  there.
* ``serviceDiscovery``: exactly one of ``awsCloudMap`` (``namespaceName`` and ``serviceName`` not
  blank, ``attributes`` with distinct, non-blank keys and values, ``ipPreference``) or ``dns``
  (``hostname`` not blank).
* ``backends``: each a ``virtualService`` with a ``virtualServiceName``, each name once. Their
  existence is not checked (App Mesh does not: nodes and services may name each other).

A virtual service (``VirtualServiceSpec``): ``provider`` is optional, else exactly one of
``virtualNode`` or ``virtualRouter`` (whose existence :mod:`mesh.data` checks in the write).
"""

from __future__ import annotations

from typing import Any

from mesh.appmesh_checks import check_duration, not_blank, one_of
from mesh.appmesh_errors import BadRequestException

__all__ = ["check_virtual_node_spec", "check_virtual_service_spec"]

PROTOCOLS = ("http", "http2", "grpc", "tcp")


def check_virtual_node_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` if App Mesh accepts it, else BadRequestException naming what is wrong."""
    spec = dict(spec or {})
    listeners = spec.get("listeners") or []
    if len(listeners) > 1:
        raise BadRequestException("A virtual node can have at most one listener.")
    for i, listener in enumerate(listeners):
        _check_listener(listener, f"listeners[{i}]")
    if spec.get("serviceDiscovery") is not None:
        _check_discovery(spec["serviceDiscovery"])
    elif listeners:
        raise BadRequestException("A virtual node with a listener must have serviceDiscovery.")
    names: set[str] = set()
    for i, backend in enumerate(spec.get("backends") or []):
        one_of(backend, ("virtualService",), f"backends[{i}]")
        name = not_blank(backend["virtualService"].get("virtualServiceName"),
                         f"backends[{i}].virtualService.virtualServiceName")
        if name in names:
            raise BadRequestException(f"Backend {name} is named twice.")
        names.add(name)
        _client_tls(backend["virtualService"].get("clientPolicy"),
                    f"backends[{i}].virtualService.clientPolicy")
    _client_tls((spec.get("backendDefaults") or {}).get("clientPolicy"), "backendDefaults.clientPolicy")
    return spec


def check_virtual_service_spec(spec: dict[str, Any] | None) -> dict[str, Any]:
    """``spec`` if App Mesh accepts it, else BadRequestException naming what is wrong."""
    spec = dict(spec or {})
    provider = spec.get("provider")
    if provider is not None:
        which = one_of(provider, ("virtualNode", "virtualRouter"), "provider")
        key = "virtualNodeName" if which == "virtualNode" else "virtualRouterName"
        not_blank(provider[which].get(key), f"provider.{which}.{key}")
    return spec


def _check_listener(listener: dict[str, Any], where: str) -> None:
    protocol = (listener.get("portMapping") or {}).get("protocol")
    if protocol not in PROTOCOLS:
        raise BadRequestException(f"{where}.portMapping.protocol must be one of {', '.join(PROTOCOLS)}.")
    if listener.get("tls") is not None:
        _listener_tls(listener["tls"], f"{where}.tls")
    pool = listener.get("connectionPool")
    if pool is not None:
        kind = one_of(pool, PROTOCOLS, f"{where}.connectionPool")
        if kind != protocol:
            raise BadRequestException(f"{where}.connectionPool.{kind} does not match the listener's "
                                      f"protocol {protocol}.")
    timeout = listener.get("timeout")
    if timeout is not None:
        kind = one_of(timeout, PROTOCOLS, f"{where}.timeout")
        if kind != protocol:
            raise BadRequestException(f"{where}.timeout.{kind} does not match the listener's protocol "
                                      f"{protocol}.")
        for name, value in (timeout[kind] or {}).items():
            if kind == "tcp" and name == "perRequest":
                raise BadRequestException(f"{where}.timeout.tcp has only idle.")
            check_duration(value, f"{where}.timeout.{kind}.{name}")
    outlier = listener.get("outlierDetection")
    if outlier is not None:
        for name in ("interval", "baseEjectionDuration"):
            check_duration(outlier.get(name), f"{where}.outlierDetection.{name}")
            if outlier[name]["value"] == 0:
                raise BadRequestException(f"{where}.outlierDetection.{name} must be above zero.")
    health = listener.get("healthCheck")
    if health is not None and health.get("path") is not None and not str(health["path"]).startswith("/"):
        raise BadRequestException(f"{where}.healthCheck.path must start with '/'.")


def _check_discovery(discovery: dict[str, Any]) -> None:
    which = one_of(discovery, ("awsCloudMap", "dns"), "serviceDiscovery")
    if which == "dns":
        not_blank(discovery["dns"].get("hostname"), "serviceDiscovery.dns.hostname")
        return
    cloud_map = discovery["awsCloudMap"]
    not_blank(cloud_map.get("namespaceName"), "serviceDiscovery.awsCloudMap.namespaceName")
    not_blank(cloud_map.get("serviceName"), "serviceDiscovery.awsCloudMap.serviceName")
    keys: set[str] = set()
    for i, attr in enumerate(cloud_map.get("attributes") or []):
        key = not_blank(attr.get("key"), f"serviceDiscovery.awsCloudMap.attributes[{i}].key")
        not_blank(attr.get("value"), f"serviceDiscovery.awsCloudMap.attributes[{i}].value")
        if key in keys:
            raise BadRequestException(f"Cloud Map attribute {key} is given twice.")
        keys.add(key)


SDS_ONLY = ("Dockyard's sidecars hold only the certificates of Dockyard's mesh CA, over SDS "
            "(docs/mtls.md): give sds.")


def _sds_only(union: Any, members: tuple[str, ...], where: str) -> None:
    if one_of(union, members, where) != "sds":
        raise BadRequestException(f"{where}: {SDS_ONLY}")
    not_blank(union["sds"].get("secretName"), f"{where}.sds.secretName")


def _validation(validation: Any, trust: tuple[str, ...], where: str) -> None:
    if not isinstance(validation, dict):
        raise BadRequestException(f"{where} must be an object.")
    _sds_only(validation.get("trust"), trust, f"{where}.trust")
    names = validation.get("subjectAlternativeNames")
    if names is not None:
        exact = ((names or {}).get("match") or {}).get("exact")
        if not isinstance(exact, list) or not exact or not all(isinstance(n, str) and n for n in exact):
            raise BadRequestException(f"{where}.subjectAlternativeNames.match.exact must list at least "
                                      "one name.")


def _listener_tls(tls: Any, where: str) -> None:
    """A listener's ``tls``: STRICT, PERMISSIVE or DISABLED; certificate and trust by SDS only
    (Dockyard's mesh CA's: the secret names are App Mesh's, the contents Dockyard's)."""
    if not isinstance(tls, dict) or tls.get("mode") not in ("STRICT", "PERMISSIVE", "DISABLED"):
        raise BadRequestException(f"{where}.mode must be one of STRICT, PERMISSIVE, DISABLED.")
    _sds_only(tls.get("certificate"), ("acm", "file", "sds"), f"{where}.certificate")
    if tls.get("validation") is not None:
        _validation(tls["validation"], ("file", "sds"), f"{where}.validation")


def _client_tls(policy: Any, where: str) -> None:
    """A client policy's ``tls``: validation (trust by SDS) required, certificate by SDS if given."""
    if not isinstance(policy, dict) or policy.get("tls") is None:
        return
    tls = policy["tls"]
    if not isinstance(tls, dict):
        raise BadRequestException(f"{where}.tls must be an object.")
    if tls.get("certificate") is not None:
        _sds_only(tls["certificate"], ("file", "sds"), f"{where}.tls.certificate")
    _validation(tls.get("validation"), ("acm", "file", "sds"), f"{where}.tls.validation")
