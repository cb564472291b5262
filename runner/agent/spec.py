"""Pure translation of an ECS task definition into Docker container specs.

Given the task definition (ECS JSON as DescribeTaskDefinition returns it), the task's
overrides and where it runs, :func:`container_specs` returns one :class:`ContainerSpec` per
container definition. Nothing here performs I/O; the host agent creates what it returns.

Mapping (ECS -> Docker):

* ``cpu`` (units, 1024 = one CPU) -> ``cpu_shares`` (at least 2, Docker's minimum);
  task-level ``cpu`` -> ``nano_cpus`` on every container (a hard cap of the task's share).
* ``memory`` (MiB, hard) -> ``mem_limit``; ``memoryReservation`` (MiB, soft) ->
  ``mem_reservation``; a container with neither inherits the task-level ``memory`` as its limit.
* ``healthCheck`` -> Docker healthcheck (defaults: interval 30 s, timeout 5 s, retries 3,
  startPeriod 0 s).
* ``networkMode``: ``bridge`` (ports published, ``hostPort`` 0 or absent = ephemeral),
  ``host``, ``none``, and ``awsvpc``: every container joins the task's own network namespace,
  held by a "pause" container (``container:<pause id>``); the task is reached at its own
  address, so nothing is published on the host (two tasks may both listen on port 80).
* ``mountPoints`` + ``volumes``: host paths (``host.sourcePath``) become bind mounts; other
  volumes are Docker volumes (``dockerVolumeConfiguration.scope`` ``shared`` keeps the name,
  ``task`` or none gets a per-task name ``dy-<task id>-<volume>``, listed by
  :func:`task_volumes`: the agent removes those when the task stops).
* ``pidMode`` / ``ipcMode`` ``host``: the host's PID / IPC namespace (``task`` is not
  rendered).
* ``logConfiguration``: ``awslogs`` becomes ``json-file``, which the control plane follows into
  the container's log stream (:mod:`runner.logs.collector`); other drivers pass through.
* A meshed task (``Placement.meshed``, Service Connect): every container joins the pause
  container's namespace as in ``awsvpc``, whatever the mode; the pause container publishes a
  ``bridge`` task's ports (:mod:`runner.agent.meshed`).
* Nameservers: ``Placement.dns`` (Dockyard's resolver for tasks, see :func:`task_dns_address`)
  becomes ``HostConfig.Dns`` of every ``bridge`` or ``host`` container without ``dnsServers``
  of its own, and of an ``awsvpc`` task's pause container, whose ``/etc/resolv.conf`` the
  containers that join its namespace share (Docker refuses ``Dns`` on those); ``none`` has no
  network to resolve over.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.agent.transport import ContainerSpec
from runner.numbers import loose_int

__all__ = [
    "LABEL_CLUSTER",
    "LABEL_CONTAINER",
    "LABEL_INSTANCE",
    "LABEL_OWNER",
    "LABEL_TASK",
    "PAUSE_IMAGE",
    "PAUSE_NAME",
    "Placement",
    "container_name",
    "container_specs",
    "healthcheck",
    "local_engine",
    "pause_spec",
    "port_bindings",
    "task_dns_address",
    "task_volumes",
]

LABEL_TASK = "dockyard.task-arn"
LABEL_CLUSTER = "dockyard.cluster"
LABEL_CONTAINER = "dockyard.container-name"
LABEL_INSTANCE = "dockyard.instance"
LABEL_OWNER = "dockyard.owner"
PAUSE_NAME = "~pause"
PAUSE_IMAGE = "dockyard/pause:1"
NANO = 1_000_000_000
MIB = 1024 * 1024
HEALTH_DEFAULTS = {"interval": 30, "timeout": 5, "retries": 3, "startPeriod": 0}


@dataclass(frozen=True)
class Placement:
    """Where and as what a task runs (what the specs need besides the definition)."""

    task_id: str
    task_arn: str
    cluster: str
    instance_arn: str
    registry: str = ""
    owner: str = ""
    pause_id: str = ""
    dns: tuple[str, ...] = ()
    overrides: Mapping[str, Any] = field(default_factory=dict)
    environment: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    meshed: bool = False  # a Service Connect task: its containers join the pause container's namespace


def local_engine(docker_url: str) -> bool:
    """Whether the engine at ``docker_url`` runs on this machine: a ``unix://`` socket, or
    ``tcp://`` to a loopback address."""
    scheme, _, rest = docker_url.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    loopback = host in ("localhost", "::1") or host.startswith("127.")
    return scheme == "unix" or (scheme == "tcp" and loopback)


def task_dns_address(setting: str, docker_url: str, gateway: str) -> str:
    """The address tasks on the engine at ``docker_url`` use as their nameserver, "" for none.

    ``setting`` is the config ``task_dns``: ``off``; an IP address (every engine's tasks use it);
    or ``auto``: the gateway of the engine's ``bridge`` network (``gateway``, an address of the
    engine's machine on the bridge its tasks are on) when the engine runs on this machine
    (:func:`local_engine`), so that Dockyard can listen on it; "" for an engine elsewhere, whose
    bridge gateway is an address of another machine.
    """
    value = setting.strip().lower()
    if value in ("off", "none", "false", ""):
        return ""
    if value != "auto":
        return setting.strip()
    return gateway if local_engine(docker_url) else ""


def instance_address(docker_url: str, gateway: str) -> str:
    """The IPv4 address other tasks and the Docker host reach a ``bridge`` task's host port at
    (what ECS registers in Cloud Map for it: its container instance's address), "" if unknown.

    A local engine (:func:`local_engine`): ``gateway``, its ``bridge`` network's gateway (an
    address of this machine, and Docker publishes host ports on every address). An engine
    elsewhere: the IPv4 address its ``tcp://`` URL names; "" for any other URL (a host name,
    ``ssh://``), whose address is not known.
    """
    if local_engine(docker_url):
        return gateway
    scheme, _, rest = docker_url.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0]
    if scheme != "tcp":
        return ""
    try:
        return str(ipaddress.IPv4Address(host))
    except ValueError:
        return ""


def container_name(task_id: str, name: str) -> str:
    """The Docker name of a task's container: unique per task, so a retry never duplicates.

    The pause container is ``dy-<task>.pause``: a dot never appears in an ECS container name.
    """
    if name == PAUSE_NAME:
        return f"dy-{task_id}.pause"
    return f"dy-{task_id}-{name}"


def labels(p: Placement, name: str) -> dict[str, str]:
    return {
        LABEL_TASK: p.task_arn,
        LABEL_CLUSTER: p.cluster,
        LABEL_CONTAINER: name,
        LABEL_INSTANCE: p.instance_arn,
        LABEL_OWNER: p.owner,
    }


def healthcheck(hc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """ECS ``healthCheck`` -> Docker healthcheck (durations in nanoseconds)."""
    if not hc or not hc.get("command"):
        return None
    merged = {**HEALTH_DEFAULTS, **{k: v for k, v in hc.items() if v is not None}}
    command = list(merged["command"])
    if command[0] not in ("CMD", "CMD-SHELL", "NONE"):
        command = ["CMD-SHELL", " ".join(command)]
    return {
        "test": command,
        "interval": int(merged["interval"]) * NANO,
        "timeout": int(merged["timeout"]) * NANO,
        "retries": int(merged["retries"]),
        "start_period": int(merged["startPeriod"]) * NANO,
    }


def port_bindings(mappings: list[Mapping[str, Any]], network_mode: str) -> tuple[list, dict]:
    """The exposed ports and, in ``bridge`` mode, Docker's ``port_bindings`` of port mappings."""
    ports: list[tuple[int, str]] = []
    bindings: dict[str, Any] = {}
    for m in mappings:
        port = loose_int(m.get("containerPort"))
        if port is None:
            continue
        proto = str(m.get("protocol") or "tcp").lower()
        ports.append((port, proto))
        if network_mode == "bridge":
            host_port = loose_int(m.get("hostPort")) or None
            bindings[f"{port}/{proto}"] = host_port
    return ports, bindings


def _volume_source(vol: Mapping[str, Any], task_id: str) -> str:
    """What a volume mounts from: its host path, a shared volume's own name, or the task's
    own Docker volume."""
    src = (vol.get("host") or {}).get("sourcePath")
    if src:
        return str(src)
    name = str(vol.get("name"))
    shared = (vol.get("dockerVolumeConfiguration") or {}).get("scope") == "shared"
    return name if shared else f"dy-{task_id}-{name}"


def task_volumes(defn: Mapping[str, Any], task_id: str) -> list[str]:
    """Names of the task-scoped Docker volumes the task's containers mount (scope ``task``,
    or no host path and no scope): they live as long as the task and go when it stops."""
    volumes = {v.get("name"): v for v in defn.get("volumes") or []}
    out: list[str] = []
    for c in defn.get("containerDefinitions") or []:
        for mp in c.get("mountPoints") or []:
            vol = volumes.get(mp.get("sourceVolume"))
            if not vol or not mp.get("containerPath"):
                continue
            src = _volume_source(vol, task_id)
            if src.startswith(f"dy-{task_id}-") and src not in out:
                out.append(src)
    return out


def _mounts(defn: Mapping[str, Any], mounts: list[Mapping[str, Any]], task_id: str) -> list[str]:
    volumes = {v.get("name"): v for v in defn.get("volumes") or []}
    binds = []
    for mp in mounts:
        vol = volumes.get(mp.get("sourceVolume"))
        path = mp.get("containerPath")
        if not vol or not path:
            continue
        src = _volume_source(vol, task_id)
        binds.append(f"{src}:{path}:{'ro' if mp.get('readOnly') else 'rw'}")
    return binds


def _log_config(lc: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not lc:
        return None
    driver = lc.get("logDriver") or "json-file"
    if driver == "awslogs":
        return {"type": "json-file", "config": {}}
    return {"type": driver, "config": dict(lc.get("options") or {})}


def _overrides_for(p: Placement, name: str) -> Mapping[str, Any]:
    for o in p.overrides.get("containerOverrides") or []:
        if o.get("name") == name:
            return o
    return {}


def container_specs(defn: Mapping[str, Any], p: Placement) -> list[ContainerSpec]:
    """One spec per container definition, in definition order (see module docstring)."""
    mode = defn.get("networkMode") or "bridge"
    if p.meshed:  # in the pause container's namespace, as awsvpc (runner.agent.meshed)
        mode = "awsvpc"
    task_cpu = loose_int(p.overrides.get("cpu")) or loose_int(defn.get("cpu"))
    task_mem = loose_int(p.overrides.get("memory")) or loose_int(defn.get("memory"))
    specs = []
    for c in defn.get("containerDefinitions") or []:
        name = c["name"]
        o = _overrides_for(p, name)
        env = {e["name"]: str(e.get("value", "")) for e in c.get("environment") or [] if e.get("name")}
        env.update({e["name"]: str(e.get("value", "")) for e in o.get("environment") or [] if e.get("name")})
        env.update(p.environment.get(name, {}))
        cpu = loose_int(o.get("cpu")) or loose_int(c.get("cpu"))
        memory = loose_int(o.get("memory")) or loose_int(c.get("memory"))
        reservation = loose_int(o.get("memoryReservation")) or loose_int(c.get("memoryReservation"))
        host: dict[str, Any] = {}
        if cpu:
            host["cpu_shares"] = max(cpu, 2)
        if task_cpu:
            host["nano_cpus"] = task_cpu * NANO // 1024
        if memory:
            host["mem_limit"] = memory * MIB
        elif task_mem and not reservation:
            host["mem_limit"] = task_mem * MIB
        if reservation:
            host["mem_reservation"] = reservation * MIB
        ports, bindings = port_bindings(c.get("portMappings") or [], mode)
        if mode == "awsvpc":
            host["network_mode"] = f"container:{p.pause_id}"
        else:
            host["network_mode"] = mode
        if bindings:
            host["port_bindings"] = bindings
        binds = _mounts(defn, c.get("mountPoints") or [], p.task_id)
        if binds:
            host["binds"] = binds
        if c.get("ulimits"):
            host["ulimits"] = [
                {"name": u["name"], "soft": int(u["softLimit"]), "hard": int(u["hardLimit"])}
                for u in c["ulimits"]
            ]
        log_config = _log_config(c.get("logConfiguration"))
        if log_config:
            host["log_config"] = log_config
        if c.get("extraHosts") and mode not in ("awsvpc", "host"):
            host["extra_hosts"] = {h["hostname"]: h["ipAddress"] for h in c["extraHosts"]}
        if c.get("dnsServers") and mode not in ("awsvpc", "host"):
            host["dns"] = list(c["dnsServers"])
        elif p.dns and mode in ("bridge", "host") and not c.get("dnsServers"):
            host["dns"] = list(p.dns)
        if c.get("readonlyRootFilesystem"):
            host["read_only"] = True
        if c.get("privileged"):
            host["privileged"] = True
        for key, docker_key in (("pidMode", "pid_mode"), ("ipcMode", "ipc_mode")):
            if defn.get(key) == "host":  # allowed only where host access is (runner.hostaccess)
                host[docker_key] = "host"
        if (c.get("linuxParameters") or {}).get("initProcessEnabled"):
            host["init"] = True
        stop_timeout = loose_int(c.get("stopTimeout"))
        specs.append(
            ContainerSpec(
                name=container_name(p.task_id, name),
                image=c["image"],
                labels={
                    **{str(k): str(v) for k, v in (c.get("dockerLabels") or {}).items()},
                    **labels(p, name),
                },
                command=list(o.get("command") or c.get("command") or []) or None,
                entrypoint=list(c.get("entryPoint") or []) or None,
                environment=env,
                working_dir=c.get("workingDirectory") or None,
                user=c.get("user") or None,
                ports=ports if mode in ("bridge", "none") else [],
                healthcheck=healthcheck(c.get("healthCheck")),
                stop_timeout=stop_timeout,
                hostname=c.get("hostname") if mode in ("bridge", "none") else None,
                host=host,
            )
        )
    return specs


def pause_spec(p: Placement) -> ContainerSpec:
    """The container that holds an ``awsvpc`` task's network namespace (bridge address)."""
    return ContainerSpec(
        name=container_name(p.task_id, PAUSE_NAME),
        image=PAUSE_IMAGE,
        labels=labels(p, PAUSE_NAME),
        entrypoint=["/busybox", "sleep", "2147483647"],
        stop_timeout=1,
        host={"network_mode": "bridge", **({"dns": list(p.dns)} if p.dns else {})},
    )
