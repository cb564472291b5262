"""Service Connect in the runner: what a meshed task carries (pure, frozen).

A service whose ``serviceConnectConfiguration.enabled`` is true gets, for each task it
starts, a :class:`TaskConnect`, decided when the task is placed and stored with it:

* ``namespace``: the Cloud Map namespace (name) of the configuration (or the cluster's
  ``serviceConnectDefaults``);
* ``services``: what the task serves (one :class:`ConnectEntry` per ``services[]`` entry:
  ``port_name`` names a port mapping of the task definition, ``container_port`` is its
  container port, ``ingress_port`` the sidecar's listener for it);
* ``alias_addresses``: every client alias ``dns_name`` of the namespace, each with its own
  address in 127.255.0.0/16 (written into the task's ``/etc/hosts``; the iptables of the
  task's network namespace redirect that range to ``egress_port``, the sidecar's virtual
  outbound listener);
* a service with only a namespace is a client: no ``services``.

Besides the shapes, this module holds the pure rules of Service Connect in the runner:

* :func:`check_configuration`: a request's ``serviceConnectConfiguration`` checked against the
  task definition, the namespace and the other services of the namespace, with ECS's errors,
  and normalised as DescribeServices echoes it (defaults filled in);
* :func:`entries`: a deployment's :class:`ConnectEntry` values; :func:`namespace_entries`: every
  service's of one namespace (what clients reach by alias);
* :func:`ingress_ports`: the ingress port of each ``services[]`` entry (the rule is in its
  docstring); :func:`alias_addresses`: the 127.255.x.y address of each alias (likewise);
* :func:`task_connect`: a task's :class:`TaskConnect` when it is placed;
* :func:`ingress_endpoint`: where another task reaches a task's ingress (what the task's Cloud
  Map instance says in ``AWS_INSTANCE_IPV4``/``AWS_INSTANCE_PORT``).

See docs/mesh.md for the data path. The mesh reads this through ``mesh.seams.ConnectView``
(the runner's :class:`runner.connectview.ConnectView`).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from runner.errors import InvalidParameterException, NamespaceNotFoundException
from runner.seams import NamespaceRef

if TYPE_CHECKING:
    from runner.data import Task

__all__ = ["ADMIN_PORT", "EGRESS_PORT", "INGRESS_BASE", "Alias", "ConnectEntry", "MeshedTask",
           "NamespaceRef", "RevisionWeight", "TaskConnect", "TaskIngress", "TrafficSplit", "alias_addresses",
           "check_configuration",
           "connect_from_json", "connect_json", "entries", "ingress_endpoint", "ingress_ports",
           "namespace_entries", "namespace_named", "not_found", "task_connect", "traffic_split"]

EGRESS_PORT = 15001  # the sidecar's virtual outbound listener, in the task's network namespace
ADMIN_PORT = 15000  # Envoy's admin interface, on 127.0.0.1 in the task only
ALIAS_NETWORK = "127.255.0.0/16"
INGRESS_BASE = 15100  # the first default ingress port (see ingress_ports)
RESERVED_PORTS = frozenset({ADMIN_PORT, EGRESS_PORT})
MAX_TIMEOUT = 2_147_483_647  # ECS's Duration
NETWORK_MODES = ("awsvpc", "bridge")  # Service Connect's, as in ECS
HIDDEN_NAMESPACE = "connectNamespace"  # a deployment's namespace name (never shown)
# A deployment's split of its service's traffic over revisions while it shifts it (never shown;
# written by the service loop): {"weights": [[family, revision, basis points], ...],
# "test": [family, revision] or null}.
TRAFFIC = "connectTraffic"
MESH_CA_NAME = "dockyard-mesh"  # the mesh CA's name in its ARN (mesh.ca.CA_ARN_NAME)
_DISCOVERY_NAME = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,63}$")
_DNS_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.-]{0,126}$")


@dataclass(frozen=True)
class Alias:
    dns_name: str
    port: int
    test_header: tuple[str, str] | None = None  # testTrafficRules.header: (name, exact value)


@dataclass(frozen=True)
class RevisionWeight:
    family: str
    revision: int
    weight: int  # basis points of production traffic


@dataclass(frozen=True)
class TrafficSplit:
    """A deployment's split of a Service Connect service over revisions (the mesh's
    ``TrafficSplit``), from the hidden deployment key :data:`TRAFFIC`."""

    weights: tuple[RevisionWeight, ...]
    test_family: str = ""
    test_revision: int | None = None
    test_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ConnectEntry:
    """One ``serviceConnectConfiguration.services[]`` entry of an ECS service (the mesh's
    ``ConnectService``)."""

    namespace: str
    discovery_name: str
    port_name: str
    app_protocol: str = ""
    aliases: tuple[Alias, ...] = ()
    ingress_port_override: int | None = None
    idle_timeout: float | None = None
    per_request_timeout: float | None = None
    traffic: TrafficSplit | None = None
    tls: bool = False  # services[].tls: mTLS with the mesh CA's certificates (docs/mtls.md)


@dataclass(frozen=True)
class TaskIngress:
    port_name: str
    port: int
    container_port: int
    app_protocol: str = ""
    tls: bool = False
    discovery_name: str = ""  # the Service Connect entry's discoveryName ("": the port name)


@dataclass(frozen=True)
class TaskConnect:
    """A meshed task's Service Connect state (the mesh's ``MeshedTask`` adds the task's ARN,
    cluster, service, family and revision)."""

    namespace: str
    ingress: tuple[TaskIngress, ...] = ()
    alias_addresses: Mapping[str, str] = field(default_factory=dict)
    egress_port: int = EGRESS_PORT
    # ``serviceConnectConfiguration.logConfiguration`` (the sidecar's output: runner.logs) and
    # ``accessLogConfiguration.format`` ("" none, "TEXT", "JSON") with includeQueryParameters
    log_configuration: Mapping[str, Any] | None = None
    access_log: str = ""
    access_log_query: bool = False


def connect_json(connect: TaskConnect | None) -> str:
    """The stored form of a task's Service Connect state ('' for none)."""
    if connect is None:
        return ""
    return json.dumps({
        "namespace": connect.namespace,
        "ingress": [{"portName": i.port_name, "port": i.port, "containerPort": i.container_port,
                     "appProtocol": i.app_protocol, **({"tls": True} if i.tls else {}),
                     **({"discoveryName": i.discovery_name} if i.discovery_name else {})}
                    for i in connect.ingress],
        "aliases": dict(connect.alias_addresses),
        "egressPort": connect.egress_port,
        **({"logConfiguration": dict(connect.log_configuration)} if connect.log_configuration else {}),
        **({"accessLog": connect.access_log, "accessLogQuery": connect.access_log_query}
           if connect.access_log else {}),
    }, sort_keys=True)


def connect_from_json(text: str) -> TaskConnect | None:
    """The inverse of :func:`connect_json`."""
    if not text:
        return None
    raw: dict[str, Any] = json.loads(text)
    return TaskConnect(
        namespace=raw["namespace"],
        ingress=tuple(TaskIngress(i["portName"], i["port"], i["containerPort"], i.get("appProtocol", ""),
                                  bool(i.get("tls", False)), i.get("discoveryName", ""))
                      for i in raw.get("ingress", [])),
        alias_addresses=dict(raw.get("aliases", {})),
        egress_port=raw.get("egressPort", EGRESS_PORT),
        log_configuration=raw.get("logConfiguration"),
        access_log=raw.get("accessLog", ""),
        access_log_query=bool(raw.get("accessLogQuery", False)),
    )


@dataclass(frozen=True)
class MeshedTask:
    """A task with a Service Connect state, as :class:`runner.connectview.ConnectView` gives it
    (the mesh's ``MeshedTask``: the node ``task_arn``)."""

    task_arn: str
    cluster: str
    service: str
    namespace: str
    family: str
    revision: int
    alias_addresses: Mapping[str, str]
    ingress: tuple[TaskIngress, ...]
    egress_port: int
    access_log: str = ""
    access_log_query: bool = False


# -- validation ------------------------------------------------------------------------------
def _bad(message: str) -> InvalidParameterException:
    return InvalidParameterException(message)


def _port(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise _bad(f"{what} must be an integer from 1 to 65535.")
    return value


def _seconds(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_TIMEOUT:
        raise _bad(f"{what} must be an integer from 0 to {MAX_TIMEOUT}.")
    return value


def port_mappings(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The task definition's named port mappings by name (the first of each name)."""
    out: dict[str, Mapping[str, Any]] = {}
    for c in definition.get("containerDefinitions") or []:
        for pm in c.get("portMappings") or []:
            if pm.get("name"):
                out.setdefault(pm["name"], pm)
    return out


def _task_ports(definition: Mapping[str, Any]) -> set[int]:
    """Every container and host port of the definition's port mappings."""
    out: set[int] = set()
    for c in definition.get("containerDefinitions") or []:
        for pm in c.get("portMappings") or []:
            for key in ("containerPort", "hostPort"):
                if isinstance(pm.get(key), int) and pm[key]:
                    out.add(pm[key])
    return out


def ingress_ports(definition: Mapping[str, Any], services: Sequence[Mapping[str, Any]]) -> list[int]:
    """The sidecar's ingress port for each ``services[]`` entry, in order (pure, deterministic).

    An entry's ``ingressPortOverride`` when it has one; otherwise the lowest port from
    :data:`INGRESS_BASE` (15100) up that is none of: 15000/15001 (the sidecar's admin and
    egress), a container or host port of the task definition's port mappings, another entry's
    override, a port already given to an earlier entry. Every task of a deployment gets the
    same ports (they depend only on its task definition and configuration)."""
    taken = _task_ports(definition) | RESERVED_PORTS
    taken |= {s["ingressPortOverride"] for s in services if s.get("ingressPortOverride")}
    out, candidate = [], INGRESS_BASE
    for s in services:
        if s.get("ingressPortOverride"):
            out.append(int(s["ingressPortOverride"]))
            continue
        while candidate in taken:
            candidate += 1
        out.append(candidate)
        taken.add(candidate)
    return out


def check_configuration(
    raw: Any,
    definition: Mapping[str, Any],
    namespace: NamespaceRef | None,
    others: Iterable[ConnectEntry] = (),
) -> tuple[dict[str, Any], str]:
    """A request's ``serviceConnectConfiguration`` normalised as ECS echoes it (``namespace`` the
    namespace's ARN, ``discoveryName`` defaulting to ``portName``, each alias's ``dnsName`` to
    ``<discoveryName>.<namespace name>``), and the namespace's name ("" when not enabled).

    ``namespace`` is the namespace the configuration (or the cluster's
    ``serviceConnectDefaults``) names, already looked up (None: no such namespace, or none
    named); ``others`` the Service Connect services of the other ECS services. Raises
    InvalidParameterException (a bad shape, a ``portName`` no port mapping has, a
    ``discoveryName`` or alias ``dnsName``+``port`` another service of the namespace uses, a
    port out of range or reserved, a timeout out of range or a per-request timeout on a TCP
    port, a network mode other than awsvpc or bridge, no namespace at all) or
    the caller's NamespaceNotFoundException (:func:`not_found`) when the namespace
    :func:`namespace_named` gives does not exist."""
    if not isinstance(raw, dict):
        raise _bad("serviceConnectConfiguration must be an object.")
    enabled = raw.get("enabled")
    if not isinstance(enabled, bool):
        raise _bad("serviceConnectConfiguration.enabled is required and must be a boolean.")
    services = raw.get("services") or []
    if not isinstance(services, list) or not all(isinstance(s, dict) for s in services):
        raise _bad("serviceConnectConfiguration.services must be a list of objects.")
    for key in ("logConfiguration", "accessLogConfiguration"):
        if key in raw and not isinstance(raw[key], dict):
            raise _bad(f"serviceConnectConfiguration.{key} must be an object.")
    if "logConfiguration" in raw and not isinstance(raw["logConfiguration"].get("logDriver"), str):
        raise _bad("serviceConnectConfiguration.logConfiguration.logDriver is required.")
    if not enabled:
        out: dict[str, Any] = {"enabled": False}
        if namespace is not None:
            out["namespace"] = namespace.arn
        return out, ""
    if namespace is None:
        raise _bad("Service Connect is enabled but no namespace was given and the cluster has no "
                   "serviceConnectDefaults namespace.")
    mode = str(definition.get("networkMode") or "bridge")
    if mode not in NETWORK_MODES:
        raise _bad(f"Service Connect supports the awsvpc and bridge network modes, not '{mode}'.")
    named = port_mappings(definition)
    normalised: list[dict[str, Any]] = []
    for i, s in enumerate(services):
        where = f"serviceConnectConfiguration.services[{i}]"
        port_name = s.get("portName")
        if not isinstance(port_name, str) or not port_name:
            raise _bad(f"{where}.portName is required.")
        if port_name not in named:
            raise _bad(f"The portName '{port_name}' of {where} does not match the name of any port "
                       "mapping of the task definition's containers.")
        discovery = s.get("discoveryName") or port_name
        if not isinstance(discovery, str) or not _DISCOVERY_NAME.match(discovery):
            raise _bad(f"{where}.discoveryName can have up to 64 lowercase letters, numbers, underscores "
                       "and hyphens, and cannot start with a hyphen.")
        entry: dict[str, Any] = {"portName": port_name, "discoveryName": discovery}
        aliases = s.get("clientAliases") or []
        if not isinstance(aliases, list) or len(aliases) > 1 or not all(isinstance(a, dict) for a in aliases):
            raise _bad(f"{where}.clientAliases can have at most 1 client alias.")
        shown = []
        for a in aliases:
            port = _port(a.get("port"), f"{where}.clientAliases[].port")
            dns = a.get("dnsName") or f"{discovery}.{namespace.name}"
            if not isinstance(dns, str) or not _DNS_NAME.match(dns.lower()):
                raise _bad(f"{where}.clientAliases[].dnsName can have up to 127 lowercase letters, numbers, "
                           "underscores, hyphens and periods, and cannot start with a hyphen.")
            alias: dict[str, Any] = {"port": port, "dnsName": dns}
            if a.get("testTrafficRules") is not None:
                alias["testTrafficRules"] = _test_rules(a["testTrafficRules"], f"{where}.clientAliases[]")
            shown.append(alias)
        entry["clientAliases"] = shown
        if s.get("ingressPortOverride") is not None:
            port = _port(s["ingressPortOverride"], f"{where}.ingressPortOverride")
            if port in RESERVED_PORTS:
                raise _bad(f"{where}.ingressPortOverride cannot be {port}: ports 15000 and 15001 are the "
                           "Service Connect proxy's own.")
            if port in _task_ports(definition):
                raise _bad(f"{where}.ingressPortOverride {port} is a port of the task definition's "
                           "port mappings.")
            entry["ingressPortOverride"] = port
        timeout = s.get("timeout")
        if timeout is not None:
            if not isinstance(timeout, dict):
                raise _bad(f"{where}.timeout must be an object.")
            entry["timeout"] = {k: _seconds(timeout[k], f"{where}.timeout.{k}")
                                for k in ("idleTimeoutSeconds", "perRequestTimeoutSeconds") if k in timeout}
            protocol = named[port_name].get("appProtocol") or ""
            if "perRequestTimeoutSeconds" in entry["timeout"] and not protocol:
                raise _bad(f"{where}.timeout.perRequestTimeoutSeconds can only be set when the port "
                           "mapping's appProtocol is not TCP.")
        if s.get("tls") is not None:
            entry["tls"] = _tls(s["tls"], namespace.arn, f"{where}.tls")
        normalised.append(entry)
    _check_unique(normalised, namespace.name, others)
    ports = ingress_ports(definition, normalised)
    if len(set(ports)) != len(ports):
        raise _bad("Each serviceConnectConfiguration.services[] entry needs its own ingressPortOverride.")
    out = {"enabled": True, "namespace": namespace.arn, "services": normalised}
    for key in ("logConfiguration", "accessLogConfiguration"):
        if key in raw:
            out[key] = raw[key]
    return out, namespace.name


def mesh_ca_arn(region: str, account: str) -> str:
    """The ``awsPcaAuthorityArn`` that names Dockyard's mesh CA (the mesh's ``mesh.ca.ca_arn``)."""
    return f"arn:aws:acm-pca:{region}:{account}:certificate-authority/{MESH_CA_NAME}"


def _tls(raw: Any, namespace_arn: str, where: str) -> dict[str, Any]:
    """``services[].tls`` as echoed: the issuer must be Dockyard's mesh CA, by the ARN of its
    region and account (those of the namespace's ARN); ``kmsKey`` and ``roleArn`` are echoed
    and unused (the CA's key is Dockyard's own, in its data directory)."""
    if not isinstance(raw, dict):
        raise _bad(f"{where} must be an object.")
    issuer = raw.get("issuerCertificateAuthority")
    arn = issuer.get("awsPcaAuthorityArn") if isinstance(issuer, dict) else None
    parts = namespace_arn.split(":")
    expected = mesh_ca_arn(parts[3], parts[4]) if len(parts) > 4 else ""
    if not isinstance(arn, str) or not arn:
        raise _bad(f"{where}.issuerCertificateAuthority.awsPcaAuthorityArn is required.")
    if arn != expected:
        raise _bad(f"{where}.issuerCertificateAuthority.awsPcaAuthorityArn '{arn}' is not a certificate "
                   f"authority of Dockyard: its mesh CA is {expected}.")
    out: dict[str, Any] = {"issuerCertificateAuthority": {"awsPcaAuthorityArn": arn}}
    for key in ("kmsKey", "roleArn"):
        if raw.get(key) is not None:
            if not isinstance(raw[key], str):
                raise _bad(f"{where}.{key} must be a string.")
            out[key] = raw[key]
    return out


def _test_rules(raw: Any, where: str) -> dict[str, Any]:
    header = raw.get("header") if isinstance(raw, dict) else None
    name = header.get("name") if isinstance(header, dict) else None
    value = (header.get("value") or {}).get("exact") if isinstance(header, dict) else None
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$", name):
        raise _bad(f"{where}.testTrafficRules.header.name must be an HTTP header name.")
    if value is None:
        return {"header": {"name": name}}
    if not isinstance(value, str) or not value:
        raise _bad(f"{where}.testTrafficRules.header.value.exact must be a non-empty string.")
    return {"header": {"name": name, "value": {"exact": value}}}


def _check_unique(services: list[dict[str, Any]], namespace: str, others: Iterable[ConnectEntry]) -> None:
    """No two discovery names, nor two aliases (dnsName, port), the same in the namespace."""
    used_names: dict[str, str] = {}
    used_aliases: dict[tuple[str, int], str] = {}
    for e in others:
        if e.namespace != namespace:
            continue
        used_names[e.discovery_name] = "another service"
        for a in e.aliases:
            used_aliases[(a.dns_name.lower(), a.port)] = "another service"
    for s in services:
        name = s["discoveryName"]
        if name in used_names:
            raise _bad(f"The discoveryName '{name}' is already used by {used_names[name]} in the namespace "
                       f"{namespace}.")
        used_names[name] = "this service"
        for a in s["clientAliases"]:
            key = (a["dnsName"].lower(), a["port"])
            if key in used_aliases:
                raise _bad(f"The client alias {a['dnsName']}:{a['port']} is already used by "
                           f"{used_aliases[key]} in the namespace {namespace}.")
            used_aliases[key] = "this service"


# -- what a deployment serves ------------------------------------------------------------------
def entries(deployment: Mapping[str, Any]) -> list[ConnectEntry]:
    """The :class:`ConnectEntry` of each ``services[]`` entry of a deployment (stored with its
    normalised ``serviceConnectConfiguration``, its namespace name and its task definition);
    [] when Service Connect is not enabled on it."""
    config = deployment.get("serviceConnectConfiguration") or {}
    namespace = deployment.get(HIDDEN_NAMESPACE) or ""
    if not config.get("enabled") or not namespace:
        return []
    named = port_mappings(deployment.get("definition") or {})
    out = []
    for s in config.get("services") or []:
        timeout = s.get("timeout") or {}
        out.append(ConnectEntry(
            namespace=namespace,
            discovery_name=s["discoveryName"],
            port_name=s["portName"],
            app_protocol=str((named.get(s["portName"]) or {}).get("appProtocol") or ""),
            aliases=tuple(Alias(a["dnsName"], a["port"], _test_header(a))
                          for a in s.get("clientAliases") or []),
            ingress_port_override=s.get("ingressPortOverride"),
            idle_timeout=timeout.get("idleTimeoutSeconds"),
            per_request_timeout=timeout.get("perRequestTimeoutSeconds"),
            tls=s.get("tls") is not None,
        ))
    return out


def _test_header(alias: Mapping[str, Any]) -> tuple[str, str] | None:
    header = (alias.get("testTrafficRules") or {}).get("header")
    if not header:
        return None
    return header["name"], (header.get("value") or {}).get("exact", "")


def traffic_split(deployments: Sequence[Mapping[str, Any]], entry: ConnectEntry) -> TrafficSplit | None:
    """The split one of the service's deployments asks for (its :data:`TRAFFIC` key), with the
    test headers of ``entry``'s aliases; None when none shifts traffic."""
    raw = next((d[TRAFFIC] for d in deployments if d.get(TRAFFIC)), None)
    if raw is None:
        return None
    test = raw.get("test")
    headers = tuple(a.test_header for a in entry.aliases if a.test_header is not None)
    return TrafficSplit(
        weights=tuple(RevisionWeight(f, int(r), int(w)) for f, r, w in raw.get("weights") or []),
        test_family=test[0] if test else "",
        test_revision=int(test[1]) if test else None,
        test_headers=headers if test else (),
    )


def namespace_entries(deployments_by_service: Iterable[Sequence[Mapping[str, Any]]],
                      namespace: str) -> list[ConnectEntry]:
    """Every Service Connect service in ``namespace`` (by name), one per discovery name and ECS
    service: each service's deployments are given PRIMARY first, so the newest configuration of a
    discovery name wins while an older deployment still runs; a deployment shifting traffic gives
    each of the service's entries its :func:`traffic_split`."""
    out = []
    for deps in deployments_by_service:
        seen: set[str] = set()
        for d in deps:
            for e in entries(d):
                if e.namespace == namespace and e.discovery_name not in seen:
                    seen.add(e.discovery_name)
                    split = traffic_split(deps, e)
                    out.append(replace(e, traffic=split) if split is not None else e)
    return out


# -- a task ------------------------------------------------------------------------------------
def alias_addresses(dns_names: Iterable[str]) -> dict[str, str]:
    """Each distinct ``dnsName`` (case-insensitively the same name is one) its own address in
    127.255.0.0/16 (pure, deterministic).

    The names are sorted; the k-th (from 0) gets ``127.255.<k // 254>.<k % 254 + 1>``: no
    address ends in .0 or .255 (so neither 127.255.0.0 nor any x.y.z.255), and no two names of a
    task share one. At most 65,024 names."""
    names = sorted({n.lower(): n for n in dns_names}.items())
    if len(names) > 256 * 254:
        raise _bad("A namespace can have at most 65024 client alias names in Dockyard.")
    base = int(ipaddress.IPv4Address("127.255.0.0"))
    return {original: str(ipaddress.IPv4Address(base + (k // 254) * 256 + k % 254 + 1))
            for k, (_, original) in enumerate(names)}


def task_connect(
    deployment: Mapping[str, Any], namespace_services: Iterable[ConnectEntry]
) -> TaskConnect | None:
    """The Service Connect state of a task the deployment starts (None: not enabled): its
    namespace, an ingress per ``services[]`` entry (:func:`ingress_ports`; the app's container
    port of the named port mapping), and an address for every client alias of the namespace
    (:func:`alias_addresses`)."""
    config = deployment.get("serviceConnectConfiguration") or {}
    namespace = deployment.get(HIDDEN_NAMESPACE) or ""
    if not config.get("enabled") or not namespace:
        return None
    definition = deployment.get("definition") or {}
    named = port_mappings(definition)
    services = config.get("services") or []
    ingress = tuple(
        TaskIngress(s["portName"], port, int(named[s["portName"]]["containerPort"]),
                    str(named[s["portName"]].get("appProtocol") or ""), s.get("tls") is not None,
                    str(s.get("discoveryName") or ""))
        for s, port in zip(services, ingress_ports(definition, services), strict=True)
        if s["portName"] in named
    )
    names = [a.dns_name for e in namespace_services if e.namespace == namespace for a in e.aliases]
    logs = config.get("logConfiguration") or None
    access = config.get("accessLogConfiguration") or {}
    access_format = str(access.get("format") or "") if logs else ""  # ECS: access logs need logConfiguration
    return TaskConnect(namespace, ingress, alias_addresses(names), log_configuration=logs,
                       access_log=access_format if access_format in ("TEXT", "JSON") else "",
                       access_log_query=access.get("includeQueryParameters") == "ENABLED")


def ingress_endpoint(task: Task, port_name: str) -> tuple[str, int] | None:
    """Where other tasks reach ``task``'s ingress for ``port_name`` (its sidecar's listener), as
    (address, port); the address ``""`` means the task's container instance's address. None when
    the task has no such ingress or it cannot be reached yet.

    * awsvpc: the task's own address and the ingress port (None until it has an address);
    * host: the container instance and the ingress port;
    * bridge: the container instance and the host port published for the ingress port: a
      :class:`runner.data.Binding` whose ``container_port`` is the ingress port on any
      container state of the task (the sidecar's lifecycle publishes the ingress ports on the
      task's pause container and reports them so). None until that binding is reported."""
    connect = task.connect
    if connect is None:
        return None
    ingress = next((i for i in connect.ingress if i.port_name == port_name), None)
    if ingress is None:
        return None
    mode = task.network_mode
    if mode == "awsvpc":
        return (task.network.ip, ingress.port) if task.network.ip else None
    if mode == "bridge":
        for state in task.containers:
            for b in state.bindings:
                if b.container_port == ingress.port:
                    return ("", b.host_port)
        return None
    return ("", ingress.port)


def namespace_named(raw: Any, cluster_default: str) -> str:
    """The namespace a ``serviceConnectConfiguration`` names (its ``namespace``, else the
    cluster's default), "" for none; InvalidParameterException for a namespace that is not a
    string."""
    if not isinstance(raw, dict):
        return ""
    value = raw.get("namespace")
    if value is None or value == "":
        return cluster_default
    if not isinstance(value, str) or len(value) > 1024:
        raise _bad("serviceConnectConfiguration.namespace must be a namespace name or ARN.")
    return value


def not_found(namespace: str) -> NamespaceNotFoundException:
    return NamespaceNotFoundException(f"Namespace {namespace} not found.")
