"""The task definition model: frozen dataclasses and the constants they are checked against
(see :mod:`runner.taskdef`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NETWORK_MODES = ("bridge", "host", "awsvpc", "none")
COMPATIBILITIES = ("EC2", "FARGATE", "EXTERNAL", "MANAGED_INSTANCES")
CONDITIONS = ("START", "COMPLETE", "SUCCESS", "HEALTHY")
LOG_DRIVERS = ("json-file", "syslog", "journald", "gelf", "fluentd", "awslogs", "splunk", "awsfirelens",
               "local", "none")
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
           "rss", "rtprio", "rttime", "sigpending", "stack")
MAX_CONTAINERS = 10
# Fargate's valid task sizes: cpu units -> allowed memory MiB.
FARGATE_SIZES: dict[int, tuple[int, ...]] = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4097, 1024)),
    1024: tuple(range(2048, 8193, 1024)),
    2048: tuple(range(4096, 16385, 1024)),
    4096: tuple(range(8192, 30721, 1024)),
    8192: tuple(range(16384, 61441, 4096)),
    16384: tuple(range(32768, 122881, 8192)),
}

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PORT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$")

_CONTAINER_EXTRA = (
    "repositoryCredentials", "restartPolicy", "linuxParameters", "versionConsistency",
    "disableNetworking", "privileged", "readonlyRootFilesystem", "dnsServers", "dnsSearchDomains",
    "extraHosts", "dockerSecurityOptions", "interactive", "pseudoTerminal", "systemControls",
    "resourceRequirements", "firelensConfiguration", "credentialSpecs",
)
_TASK_EXTRA = (
    "taskRoleArn", "executionRoleArn", "pidMode", "ipcMode", "proxyConfiguration",
    "inferenceAccelerators", "ephemeralStorage", "runtimePlatform", "enableFaultInjection",
    "trustedExecutionConfiguration",
)
_VOLUME_EXTRA = (
    "efsVolumeConfiguration", "fsxWindowsFileServerVolumeConfiguration", "configuredAtLaunch",
    "s3filesVolumeConfiguration",
)
# Keys of a stored/described definition that RegisterTaskDefinition does not take; parse
# ignores them so that a described definition can be registered again.
_DESCRIBED = (
    "taskDefinitionArn", "revision", "status", "requiresAttributes", "compatibilities",
    "registeredAt", "registeredBy", "deregisteredAt", "deleteRequestedAt", "tags",
)


# -- the model --------------------------------------------------------------------------------
# Field metadata: ``aws`` = JSON key when not the camelCase of the field name; ``skip`` = not
# rendered; ``keep_empty`` = render an empty tuple as [] (AWS echoes these even when empty).
def _f(default: Any = None, **meta: Any) -> Any:
    if isinstance(default, (tuple, dict)) or default is None:
        factory = (lambda d=default: d) if not isinstance(default, dict) else dict
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class PortMapping:
    container_port: int
    host_port: int = 0  # 0: a dynamic host port (bridge mode only)
    protocol: str = "tcp"
    name: str | None = None
    app_protocol: str | None = None
    container_port_range: str | None = None


@dataclass(frozen=True)
class KeyValue:
    name: str
    value: str


@dataclass(frozen=True)
class Secret:
    name: str
    value_from: str
    secret_name: str = field(default="", metadata={"skip": True})  # the store's NAME


@dataclass(frozen=True)
class EnvironmentFile:
    value: str
    type: str = "s3"


@dataclass(frozen=True)
class HealthCheck:
    command: tuple[str, ...]
    interval: int = 30
    timeout: int = 5
    retries: int = 3
    start_period: int | None = None  # None: not given (the agent uses 0)


@dataclass(frozen=True)
class Dependency:
    container_name: str
    condition: str


@dataclass(frozen=True)
class LogConfiguration:
    log_driver: str
    options: Mapping[str, str] = _f({})
    secret_options: tuple[Secret, ...] = _f(())


@dataclass(frozen=True)
class MountPoint:
    source_volume: str
    container_path: str
    read_only: bool = False


@dataclass(frozen=True)
class VolumeFrom:
    source_container: str
    read_only: bool = False


@dataclass(frozen=True)
class Ulimit:
    name: str
    soft_limit: int
    hard_limit: int


@dataclass(frozen=True)
class HostVolume:
    source_path: str | None = None  # None: a Docker-managed directory for the task


@dataclass(frozen=True)
class DockerVolume:
    scope: str = "task"  # task: created and removed with the task; shared: outlives it
    autoprovision: bool | None = None
    driver: str | None = None
    driver_opts: Mapping[str, str] | None = None
    labels: Mapping[str, str] | None = None


@dataclass(frozen=True)
class Volume:
    name: str
    host: HostVolume | None = None
    docker: DockerVolume | None = field(default=None, metadata={"aws": "dockerVolumeConfiguration"})
    extra: Mapping[str, Any] = _f({})


@dataclass(frozen=True)
class PlacementConstraint:
    type: str
    expression: str | None = None


@dataclass(frozen=True)
class Container:
    """One container definition, defaults filled in."""

    name: str
    image: str
    cpu: int = 0
    memory: int | None = None  # hard limit, MiB
    memory_reservation: int | None = None  # soft limit, MiB
    port_mappings: tuple[PortMapping, ...] = _f((), keep_empty=True)
    essential: bool = True
    entry_point: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    environment: tuple[KeyValue, ...] = _f((), keep_empty=True)
    environment_files: tuple[EnvironmentFile, ...] = _f(())
    mount_points: tuple[MountPoint, ...] = _f((), keep_empty=True)
    volumes_from: tuple[VolumeFrom, ...] = _f((), keep_empty=True)
    secrets: tuple[Secret, ...] = _f(())
    depends_on: tuple[Dependency, ...] = _f(())
    start_timeout: int | None = None
    stop_timeout: int | None = None  # seconds between SIGTERM and SIGKILL (agent default 30)
    hostname: str | None = None
    user: str | None = None
    working_directory: str | None = None
    links: tuple[str, ...] = _f(())
    docker_labels: Mapping[str, str] | None = None
    ulimits: tuple[Ulimit, ...] = _f(())
    log_configuration: LogConfiguration | None = None
    health_check: HealthCheck | None = None
    extra: Mapping[str, Any] = _f({})  # AWS-only fields, echoed as given

    @property
    def memory_needed(self) -> int:
        """MiB the scheduler reserves for this container: memory, else memoryReservation."""
        return self.memory or self.memory_reservation or 0

    @property
    def environment_dict(self) -> dict[str, str]:
        return {kv.name: kv.value for kv in self.environment}


@dataclass(frozen=True)
class TaskDefinition:
    """A validated task definition; ``revision``/``arn``/``status`` are set once stored."""

    family: str
    containers: tuple[Container, ...] = _f((), aws="containerDefinitions", keep_empty=True)
    network_mode: str = "bridge"
    volumes: tuple[Volume, ...] = _f((), keep_empty=True)
    placement_constraints: tuple[PlacementConstraint, ...] = _f((), keep_empty=True)
    requires_compatibilities: tuple[str, ...] = _f(())
    cpu: int | None = _f(None, string=True)  # task CPU units
    memory: int | None = _f(None, string=True)  # task memory MiB
    extra: Mapping[str, Any] = _f({})
    revision: int = _f(0, skip=True)
    arn: str = _f("", skip=True)
    status: str = _f("ACTIVE", skip=True)

    def container(self, name: str) -> Container:
        for c in self.containers:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def cpu_needed(self) -> int:
        """CPU units to reserve on a host: the task's cpu, else the sum of its containers'."""
        return self.cpu if self.cpu is not None else sum(c.cpu for c in self.containers)

    @property
    def memory_needed(self) -> int:
        """MiB to reserve on a host: the task's memory, else the sum of its containers'."""
        return self.memory if self.memory is not None else sum(c.memory_needed for c in self.containers)

    @property
    def host_ports(self) -> tuple[tuple[int, str], ...]:
        """The fixed ``(hostPort, protocol)`` pairs the task needs free on its host (not awsvpc:
        each awsvpc task has its own network namespace; not dynamic bridge ports). With host
        networking the container port is the host port."""
        if self.network_mode not in ("host", "bridge"):
            return ()
        host = self.network_mode == "host"
        pairs = [
            (p.host_port or (p.container_port if host else 0), p.protocol)
            for c in self.containers for p in c.port_mappings
        ]
        return tuple((port, proto) for port, proto in pairs if port)


