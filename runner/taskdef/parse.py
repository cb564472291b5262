"""Parsing ECS task definition JSON into the model, with messages naming the wrong field
(see :mod:`runner.taskdef`)."""

from __future__ import annotations

from typing import Any

from runner.errors import ClientException
from runner.secrets import parse_reference
from runner.taskdef.model import (
    _CONTAINER_EXTRA,
    _DESCRIBED,
    _IMAGE,
    _NAME,
    _PORT_NAME,
    _TASK_EXTRA,
    _VOLUME_EXTRA,
    COMPATIBILITIES,
    CONDITIONS,
    FARGATE_SIZES,
    LOG_DRIVERS,
    MAX_CONTAINERS,
    NETWORK_MODES,
    ULIMITS,
    Container,
    Dependency,
    DockerVolume,
    EnvironmentFile,
    HealthCheck,
    HostVolume,
    KeyValue,
    LogConfiguration,
    MountPoint,
    PlacementConstraint,
    PortMapping,
    Secret,
    TaskDefinition,
    Ulimit,
    Volume,
    VolumeFrom,
)
from runner.taskdef.sizes import parse_task_cpu, parse_task_memory
from runner.taskdef.sizes import task_error as _task_error


# -- errors -----------------------------------------------------------------------------------
class _Where:
    """Where a value sits, for error messages."""

    def __init__(self, container: str | None = None) -> None:
        self.container = container

    def error(self, msg: str) -> ClientException:
        if self.container is None:
            return _task_error(msg)
        return ClientException(f"Invalid setting for container '{self.container}': {msg}")


def _int(w: _Where, name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if ok and (lo is None or value >= lo) and (hi is None or value <= hi):
        return value
    if lo is not None and hi is not None:
        raise w.error(f"{name} must be an integer between {lo} and {hi}")
    if lo is not None:
        raise w.error(f"{name} must be an integer >= {lo}")
    raise w.error(f"{name} must be an integer")


def _str(w: _Where, name: str, value: Any, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise w.error(f"{name} must be a non-empty string" if not allow_empty else f"{name} must be a string")
    return value


def _bool(w: _Where, name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise w.error(f"{name} must be true or false")
    return value


def _str_list(w: _Where, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise w.error(f"{name} must be a list of strings")
    return tuple(value)


def _str_map(w: _Where, name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) for k, v in value.items()
    ):
        raise w.error(f"{name} must be a map of non-empty string keys to string values")
    return dict(value)


def _objects(w: _Where, name: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise w.error(f"{name} must be a list of objects")
    return value


def _known(w: _Where, name: str, obj: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in obj:
        if key not in allowed:
            raise w.error(f"{name} has an unknown field '{key}'")


# -- containers -------------------------------------------------------------------------------
_CONTAINER_KEYS = (
    "name", "image", "cpu", "memory", "memoryReservation", "links", "portMappings", "essential",
    "entryPoint", "command", "environment", "environmentFiles", "mountPoints", "volumesFrom",
    "secrets", "dependsOn", "startTimeout", "stopTimeout", "hostname", "user", "workingDirectory",
    "dockerLabels", "ulimits", "logConfiguration", "healthCheck", *_CONTAINER_EXTRA,
)


def _secret(w: _Where, name: str, s: dict[str, Any]) -> Secret:
    _known(w, name, s, ("name", "valueFrom"))
    env = _str(w, f"{name}.name", s.get("name"))
    value_from = _str(w, f"{name}.valueFrom", s.get("valueFrom"))
    secret_name = parse_reference(value_from)
    if secret_name is None:
        raise w.error(
            f"{name}.valueFrom {value_from!r} is not a secret reference: use dockyard:secret:NAME, "
            "arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME or arn:aws:ssm:REGION:ACCOUNT:parameter/NAME"
        )
    return Secret(env, value_from, secret_name)


def _port_mappings(w: _Where, raw: Any, network_mode: str) -> tuple[PortMapping, ...]:
    out = []
    for pm in _objects(w, "portMappings", raw):
        _known(w, "portMappings", pm,
               ("containerPort", "hostPort", "protocol", "name", "appProtocol", "containerPortRange"))
        if "containerPortRange" in pm and "containerPort" not in pm:
            raise w.error("portMappings.containerPortRange is not supported by Dockyard; "
                          "give each containerPort")
        cport = _int(w, "portMappings.containerPort", pm.get("containerPort"), 1, 65535)
        hport = pm.get("hostPort")
        if hport is not None:
            hport = _int(w, "portMappings.hostPort", hport, 0, 65535)
        if network_mode in ("awsvpc", "host"):
            if hport not in (None, cport):
                raise w.error(
                    f"portMappings.hostPort {hport} must equal containerPort {cport} or be omitted "
                    f"in network mode {network_mode}"
                )
            hport = cport
        elif network_mode == "none":
            raise w.error("portMappings are not allowed in network mode none")
        protocol = pm.get("protocol", "tcp")
        if protocol not in ("tcp", "udp"):
            raise w.error(f"portMappings.protocol must be tcp or udp, not {protocol!r}")
        app = pm.get("appProtocol")
        if app is not None and app not in ("http", "http2", "grpc"):
            raise w.error(f"portMappings.appProtocol must be http, http2 or grpc, not {app!r}")
        pname = pm.get("name")
        if pname is not None and (not isinstance(pname, str) or not _PORT_NAME.match(pname)):
            raise w.error("portMappings.name must be 1 to 64 lowercase letters, digits and hyphens")
        out.append(PortMapping(cport, hport or 0, protocol, pname, app))
    return tuple(out)


def _health_check(w: _Where, hc: Any) -> HealthCheck:
    if not isinstance(hc, dict):
        raise w.error("healthCheck must be an object")
    _known(w, "healthCheck", hc, ("command", "interval", "timeout", "retries", "startPeriod"))
    command = _str_list(w, "healthCheck.command", hc.get("command"))
    if not command or command[0] not in ("CMD", "CMD-SHELL", "NONE") or (
        command[0] != "NONE" and len(command) < 2
    ):
        raise w.error('healthCheck.command must start with "CMD" or "CMD-SHELL" followed by the command')
    start = hc.get("startPeriod")
    return HealthCheck(
        command,
        _int(w, "healthCheck.interval", hc.get("interval", 30), 5, 300),
        _int(w, "healthCheck.timeout", hc.get("timeout", 5), 2, 60),
        _int(w, "healthCheck.retries", hc.get("retries", 3), 1, 10),
        None if start is None else _int(w, "healthCheck.startPeriod", start, 0, 300),
    )


def _log_configuration(w: _Where, lc: Any) -> LogConfiguration:
    if not isinstance(lc, dict):
        raise w.error("logConfiguration must be an object")
    _known(w, "logConfiguration", lc, ("logDriver", "options", "secretOptions"))
    driver = lc.get("logDriver")
    if driver not in LOG_DRIVERS:
        raise w.error(f"logConfiguration.logDriver must be one of {', '.join(LOG_DRIVERS)}, not {driver!r}")
    return LogConfiguration(
        driver,
        _str_map(w, "logConfiguration.options", lc.get("options", {})),
        tuple(_secret(w, "logConfiguration.secretOptions", s)
              for s in _objects(w, "logConfiguration.secretOptions", lc.get("secretOptions", []))),
    )


def _container(raw: Any, index: int, network_mode: str) -> Container:
    if not isinstance(raw, dict):
        raise _task_error(f"containerDefinitions[{index}] must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _task_error(
            f"containerDefinitions[{index}].name must be 1 to 255 letters, numbers, hyphens and underscores"
        )
    w = _Where(name)
    _known(w, "the container definition", raw, _CONTAINER_KEYS)
    image = raw.get("image")
    if not isinstance(image, str) or not _IMAGE.match(image) or len(image) > 255:
        raise w.error("image must be an image reference like repository:tag")
    memory = raw.get("memory")
    reservation = raw.get("memoryReservation")
    if memory is not None:
        memory = _int(w, "memory", memory, 6)
    if reservation is not None:
        reservation = _int(w, "memoryReservation", reservation, 6)
    if memory is not None and reservation is not None and reservation > memory:
        raise w.error(f"memoryReservation {reservation} must be <= memory {memory}")
    kw: dict[str, Any] = {
        "cpu": _int(w, "cpu", raw.get("cpu", 0), 0, 196608),
        "memory": memory,
        "memory_reservation": reservation,
        "essential": _bool(w, "essential", raw.get("essential", True)),
        "port_mappings": _port_mappings(w, raw.get("portMappings", []), network_mode),
    }
    for key, attr in (("entryPoint", "entry_point"), ("command", "command")):
        if raw.get(key) is not None:
            kw[attr] = _str_list(w, key, raw[key]) or None  # [] is the image's own, like absent
    env = []
    for e in _objects(w, "environment", raw.get("environment", [])):
        _known(w, "environment", e, ("name", "value"))
        env.append(KeyValue(_str(w, "environment.name", e.get("name")),
                            _str(w, "environment.value", e.get("value", ""), allow_empty=True)))
    kw["environment"] = tuple(env)
    files = []
    for ef in _objects(w, "environmentFiles", raw.get("environmentFiles", [])):
        _known(w, "environmentFiles", ef, ("value", "type"))
        if ef.get("type", "s3") != "s3":
            raise w.error("environmentFiles.type must be s3")
        value = _str(w, "environmentFiles.value", ef.get("value"))
        if not value.startswith("arn:aws:s3:") and parse_reference(value) is None:
            raise w.error(f"environmentFiles.value {value!r} must be dockyard:secret:NAME or an S3 ARN")
        files.append(EnvironmentFile(value, "s3"))
    kw["environment_files"] = tuple(files)
    kw["secrets"] = tuple(_secret(w, "secrets", s) for s in _objects(w, "secrets", raw.get("secrets", [])))
    names = [s.name for s in kw["secrets"]] + [e.name for e in env]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise w.error(f"environment and secrets name the variable {sorted(dup)[0]!r} twice")
    mounts = []
    for mp in _objects(w, "mountPoints", raw.get("mountPoints", [])):
        _known(w, "mountPoints", mp, ("sourceVolume", "containerPath", "readOnly"))
        path = _str(w, "mountPoints.containerPath", mp.get("containerPath"))
        if not path.startswith("/"):
            raise w.error(f"mountPoints.containerPath {path!r} must be an absolute path")
        mounts.append(MountPoint(_str(w, "mountPoints.sourceVolume", mp.get("sourceVolume")), path,
                                 _bool(w, "mountPoints.readOnly", mp.get("readOnly", False))))
    kw["mount_points"] = tuple(mounts)
    vfs = []
    for vf in _objects(w, "volumesFrom", raw.get("volumesFrom", [])):
        _known(w, "volumesFrom", vf, ("sourceContainer", "readOnly"))
        vfs.append(VolumeFrom(_str(w, "volumesFrom.sourceContainer", vf.get("sourceContainer")),
                              _bool(w, "volumesFrom.readOnly", vf.get("readOnly", False))))
    kw["volumes_from"] = tuple(vfs)
    deps = []
    for d in _objects(w, "dependsOn", raw.get("dependsOn", [])):
        _known(w, "dependsOn", d, ("containerName", "condition"))
        cond = d.get("condition")
        if cond not in CONDITIONS:
            raise w.error(f"dependsOn.condition must be one of {', '.join(CONDITIONS)}, not {cond!r}")
        deps.append(Dependency(_str(w, "dependsOn.containerName", d.get("containerName")), cond))
    kw["depends_on"] = tuple(deps)
    for key, attr, hi in (("startTimeout", "start_timeout", 600), ("stopTimeout", "stop_timeout", 120)):
        if raw.get(key) is not None:
            kw[attr] = _int(w, key, raw[key], 2 if key == "startTimeout" else 0, hi)
    for key, attr in (("hostname", "hostname"), ("user", "user"), ("workingDirectory", "working_directory")):
        if raw.get(key) is not None:
            kw[attr] = _str(w, key, raw[key])
    if kw.get("hostname") and network_mode in ("awsvpc", "host"):
        raise w.error(f"hostname is not supported in network mode {network_mode}")
    if "links" in raw:
        kw["links"] = _str_list(w, "links", raw["links"])
        if kw["links"] and network_mode != "bridge":
            raise w.error(f"links are only supported in network mode bridge, not {network_mode}")
    if raw.get("dockerLabels") is not None:
        kw["docker_labels"] = _str_map(w, "dockerLabels", raw["dockerLabels"])
    ulimits = []
    for u in _objects(w, "ulimits", raw.get("ulimits", [])):
        _known(w, "ulimits", u, ("name", "softLimit", "hardLimit"))
        if u.get("name") not in ULIMITS:
            raise w.error(f"ulimits.name must be one of {', '.join(ULIMITS)}, not {u.get('name')!r}")
        soft = _int(w, f"ulimits[{u['name']}].softLimit", u.get("softLimit"), -1)
        hard = _int(w, f"ulimits[{u['name']}].hardLimit", u.get("hardLimit"), -1)
        if hard != -1 and (soft == -1 or soft > hard):
            raise w.error(f"ulimits[{u['name']}].softLimit must be <= hardLimit")
        ulimits.append(Ulimit(u["name"], soft, hard))
    kw["ulimits"] = tuple(ulimits)
    if raw.get("logConfiguration") is not None:
        kw["log_configuration"] = _log_configuration(w, raw["logConfiguration"])
    if raw.get("healthCheck") is not None:
        kw["health_check"] = _health_check(w, raw["healthCheck"])
    kw["extra"] = {k: raw[k] for k in _CONTAINER_EXTRA if k in raw}
    return Container(name, image, **kw)


# -- volumes ----------------------------------------------------------------------------------
def _volume(raw: Any) -> Volume:
    w = _Where()
    if not isinstance(raw, dict):
        raise w.error("volumes must be a list of objects")
    name = raw.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise w.error("volumes.name must be 1 to 255 letters, numbers, hyphens and underscores")
    _known(w, f"volume '{name}'", raw, ("name", "host", "dockerVolumeConfiguration", *_VOLUME_EXTRA))
    host = docker = None
    if raw.get("host") is not None:
        h = raw["host"]
        if not isinstance(h, dict):
            raise w.error(f"volume '{name}': host must be an object")
        _known(w, f"volume '{name}' host", h, ("sourcePath",))
        path = h.get("sourcePath")
        if path is not None and (not isinstance(path, str) or not path.startswith("/")):
            raise w.error(f"volume '{name}': host.sourcePath must be an absolute path")
        host = HostVolume(path)
    if raw.get("dockerVolumeConfiguration") is not None:
        d = raw["dockerVolumeConfiguration"]
        where = f"volume '{name}' dockerVolumeConfiguration"
        if not isinstance(d, dict):
            raise w.error(f"{where} must be an object")
        _known(w, where, d, ("scope", "autoprovision", "driver", "driverOpts", "labels"))
        scope = d.get("scope", "task")
        if scope not in ("task", "shared"):
            raise w.error(f"{where}: scope must be task or shared")
        auto = d.get("autoprovision")
        if auto is not None:
            _bool(w, f"{where}: autoprovision", auto)
            if auto and scope != "shared":
                raise w.error(f"{where}: autoprovision is only valid with scope shared")
        docker = DockerVolume(
            scope, auto,
            None if d.get("driver") is None else _str(w, f"{where}: driver", d["driver"]),
            None if d.get("driverOpts") is None else _str_map(w, f"{where}: driverOpts", d["driverOpts"]),
            None if d.get("labels") is None else _str_map(w, f"{where}: labels", d["labels"]),
        )
    if host is not None and docker is not None:
        raise w.error(f"volume '{name}' cannot have both host and dockerVolumeConfiguration")
    return Volume(name, host, docker, {k: raw[k] for k in _VOLUME_EXTRA if k in raw})


# -- the task ---------------------------------------------------------------------------------
_TASK_KEYS = (
    "family", "containerDefinitions", "networkMode", "volumes", "placementConstraints",
    "requiresCompatibilities", "cpu", "memory", *_TASK_EXTRA, *_DESCRIBED,
)


def parse(raw: Any, validate_expression: Any = None) -> TaskDefinition:
    """Validate a RegisterTaskDefinition body; ``ClientException`` names the wrong field.

    ``validate_expression(expr)`` (optional) checks a memberOf placement constraint's
    expression and raises with a message on error.
    """
    w = _Where()
    if not isinstance(raw, dict):
        raise w.error("the request must be an object")
    _known(w, "the request", raw, _TASK_KEYS)
    family = raw.get("family")
    if not isinstance(family, str) or not _NAME.match(family):
        raise w.error("family must be 1 to 255 letters (uppercase and lowercase), numbers, hyphens "
                      "and underscores")
    network_mode = raw.get("networkMode") or "bridge"
    if network_mode not in NETWORK_MODES:
        raise w.error(f"networkMode must be one of {', '.join(NETWORK_MODES)}, not {network_mode!r}")
    compat = raw.get("requiresCompatibilities", [])
    if not isinstance(compat, list) or any(c not in COMPATIBILITIES for c in compat):
        raise w.error(f"requiresCompatibilities must be a list of {', '.join(COMPATIBILITIES)}")
    cpu = None if raw.get("cpu") in (None, "") else parse_task_cpu(raw["cpu"])
    memory = None if raw.get("memory") in (None, "") else parse_task_memory(raw["memory"])
    defs = raw.get("containerDefinitions")
    if not isinstance(defs, list) or not defs:
        raise w.error("containerDefinitions must be a non-empty list")
    if len(defs) > MAX_CONTAINERS:
        raise w.error(f"containerDefinitions can hold at most {MAX_CONTAINERS} containers")
    containers = tuple(_container(c, i, network_mode) for i, c in enumerate(defs))
    volumes = tuple(_volume(v) for v in _objects(w, "volumes", raw.get("volumes", [])))
    constraints = []
    for pc in _objects(w, "placementConstraints", raw.get("placementConstraints", [])):
        _known(w, "placementConstraints", pc, ("type", "expression"))
        if pc.get("type") != "memberOf":
            raise w.error("placementConstraints.type must be memberOf")
        expr = _str(w, "placementConstraints.expression", pc.get("expression"))
        if validate_expression is not None:
            try:
                validate_expression(expr)
            except Exception as e:
                raise w.error(f"placementConstraints.expression: {getattr(e, 'message', e)}") from None
        constraints.append(PlacementConstraint("memberOf", expr))
    if len(constraints) > 10:
        raise w.error("placementConstraints can hold at most 10 constraints")
    td = TaskDefinition(
        family, containers, network_mode, volumes, tuple(constraints), tuple(dict.fromkeys(compat)),
        cpu, memory, {k: raw[k] for k in _TASK_EXTRA if k in raw},
    )
    _check_task(td)
    return td


def _check_task(td: TaskDefinition) -> None:
    """Rules across fields: names, references, sizes, dependencies, Fargate."""
    names = [c.name for c in td.containers]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise _task_error(f"container name {sorted(dup)[0]!r} is used twice")
    vnames = [v.name for v in td.volumes]
    if len(set(vnames)) != len(vnames):
        raise _task_error("volumes names must be unique")
    if not any(c.essential for c in td.containers):
        raise _task_error("at least one container must be essential")
    ports: dict[tuple[int, str], str] = {}
    for c in td.containers:
        w = _Where(c.name)
        if td.memory is None and c.memory is None and c.memory_reservation is None:
            raise w.error("memory or memoryReservation is required when the task has no memory")
        if td.memory is not None and c.memory is not None and c.memory > td.memory:
            raise w.error(f"memory {c.memory} exceeds the task's memory {td.memory}")
        for mp in c.mount_points:
            if mp.source_volume not in vnames:
                raise w.error(f"mountPoints.sourceVolume {mp.source_volume!r} is not a volume of the task")
        for vf in c.volumes_from:
            if vf.source_container not in names or vf.source_container == c.name:
                raise w.error(f"volumesFrom.sourceContainer {vf.source_container!r} is not another container")
        for link in c.links:
            if link.split(":", 1)[0] not in names:
                raise w.error(f"links names {link!r}, which is not a container of the task")
        for d in c.depends_on:
            if d.container_name not in names or d.container_name == c.name:
                raise w.error(f"dependsOn.containerName {d.container_name!r} is not another container")
            target = td.container(d.container_name)
            if d.condition == "HEALTHY" and target.health_check is None:
                raise w.error(f"dependsOn {d.container_name!r} HEALTHY requires that container to have a "
                              "healthCheck")
            if d.condition in ("SUCCESS", "COMPLETE") and target.essential:
                raise w.error(f"dependsOn {d.container_name!r} {d.condition} requires that container to be "
                              "non-essential")
        for p in c.port_mappings:
            if p.host_port:
                key = (p.host_port, p.protocol)
                if key in ports:
                    raise w.error(f"portMappings.hostPort {p.host_port}/{p.protocol} is already used by "
                                  f"container '{ports[key]}'")
                ports[key] = c.name
    _check_cycles(td)
    total_mem = sum(c.memory or c.memory_reservation or 0 for c in td.containers)
    if td.memory is not None and total_mem > td.memory:
        raise _task_error(f"memory {td.memory} is less than the {total_mem} MiB its containers reserve")
    total_cpu = sum(c.cpu for c in td.containers)
    if td.cpu is not None and total_cpu > td.cpu:
        raise _task_error(f"cpu {td.cpu} is less than the {total_cpu} units its containers reserve")
    if "FARGATE" in td.requires_compatibilities:
        if td.network_mode != "awsvpc":
            raise _task_error("networkMode must be awsvpc for requiresCompatibilities FARGATE")
        if td.cpu is None or td.memory is None:
            raise _task_error("cpu and memory are required for requiresCompatibilities FARGATE")
        if td.cpu not in FARGATE_SIZES:
            raise _task_error(f"cpu {td.cpu} is not a Fargate size: use one of "
                              f"{', '.join(map(str, FARGATE_SIZES))}")
        if td.memory not in FARGATE_SIZES[td.cpu]:
            allowed = FARGATE_SIZES[td.cpu]
            raise _task_error(f"memory {td.memory} is not valid with cpu {td.cpu} on Fargate: use "
                              f"{allowed[0]} to {allowed[-1]} MiB in steps of "
                              f"{allowed[1] - allowed[0] if len(allowed) > 1 else allowed[0]}")
        for v in td.volumes:
            if v.host is not None and v.host.source_path is not None:
                raise _task_error(f"volume '{v.name}': host.sourcePath is not supported on FARGATE")


def _check_cycles(td: TaskDefinition) -> None:
    graph = {c.name: [d.container_name for d in c.depends_on] for c in td.containers}
    state: dict[str, int] = {}

    def visit(n: str) -> None:
        state[n] = 1
        for m in graph[n]:
            if state.get(m) == 1:
                raise _Where(n).error(f"dependsOn forms a cycle through container '{m}'")
            if m not in state:
                visit(m)
        state[n] = 2

    for n in graph:
        if n not in state:
            visit(n)


