"""What ``docker info`` says about an engine, as ECS container instance facts (pure):
capacity, built-in attributes, the EC2-style instance id, whether its agent is connected.

Registered CPU is ``NCPU * 1024`` units and memory ``MemTotal`` in MiB. Built-in attributes
follow ECS (``ecs.os-type``, ``ecs.cpu-architecture``, ``ecs.instance-type``,
``ecs.availability-zone``, ``ecs.capability.*``...)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["agent_connected", "builtin_attributes", "capacity_from_info", "ec2_id"]


def capacity_from_info(info: Mapping[str, Any]) -> tuple[int, int]:
    """(cpu units, memory MiB) a host registers: ``NCPU * 1024`` and ``MemTotal`` in MiB."""
    return int(info.get("NCPU") or 1) * 1024, int(info.get("MemTotal") or 0) // (1024 * 1024)


# Docker Remote API versions ECS names capabilities after start at 1.17.
FIRST_API = (1, 17)
# The API version assumed when ``docker info`` does not carry it (a registration from an older
# ``dockyard agent``): Docker 1.13's, the newest any task definition's capabilities need.
FALLBACK_API = "1.25"
# Log drivers every engine has, whatever ``docker info`` lists: ``none`` is built in, and
# ``awslogs`` is run as ``json-file`` (runner.agent.spec), so it needs nothing of the engine.
ALWAYS_LOG_DRIVERS = ("json-file", "none", "awslogs")
# What Dockyard itself implements, whatever the engine: health checks, dependsOn and stop
# ordering, task cpu/memory limits, awsvpc (a network namespace per task), secrets and env
# files from Dockyard's secret store (the ASM/SSM and S3 forms name the same store), pulls
# with the runner's registry credential.
DOCKYARD_CAPABILITIES = (
    "ecs.capability.container-health-check",
    "ecs.capability.container-ordering",
    "ecs.capability.task-cpu-mem-limit",
    "ecs.capability.task-eni",
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.secrets.ssm.environment-variables",
    "ecs.capability.env-files.s3",
    "ecs.capability.execution-role-ecr-pull",
)


def _api_versions(api: Any) -> list[str]:
    """``1.17`` ... the engine's API version: ECS's ``docker-remote-api.1.N`` means "the
    features of API 1.N are there", so a newer engine has every earlier one (even when its
    ``MinAPIVersion`` refuses clients that old)."""
    m = re.fullmatch(r"1\.(\d+)", str(api or "")) or re.fullmatch(r"1\.(\d+)", FALLBACK_API)
    assert m is not None
    return [f"1.{minor}" for minor in range(FIRST_API[1], max(int(m.group(1)), FIRST_API[1]) + 1)]


def builtin_attributes(info: Mapping[str, Any], zone: str) -> list[dict[str, str]]:
    """ECS's built-in attributes for a Docker host described by ``docker info`` (plus
    ``ApiVersion`` from ``docker version``): the host's facts, then the capabilities it has.

    Capabilities follow what the engine reports: ``docker-remote-api.1.17`` up to its API
    version, ``logging-driver.NAME`` for each log driver it lists (``Plugins.Log``) plus
    :data:`ALWAYS_LOG_DRIVERS`, ``docker-plugin.NAME`` for each volume driver; then
    :data:`DOCKYARD_CAPABILITIES`. A task definition's ``requiresAttributes`` are checked
    against these at placement (``ATTRIBUTE``)."""
    arch = {"aarch64": "arm64", "amd64": "x86_64"}.get(
        str(info.get("Architecture")), str(info.get("Architecture") or "x86_64")
    )
    os_type = str(info.get("OSType") or "linux")
    names = {
        "ecs.os-type": os_type,
        "ecs.os-family": "LINUX" if os_type == "linux" else os_type.upper(),
        "ecs.cpu-architecture": arch,
        "ecs.instance-type": f"docker.{int(info.get('NCPU') or 1)}cpu",
        "ecs.availability-zone": zone,
        "dockyard.hostname": str(info.get("Name") or ""),
        "dockyard.docker-version": str(info.get("ServerVersion") or ""),
    }
    out = [{"name": k, "value": v} for k, v in names.items()]
    plugins = info.get("Plugins") if isinstance(info.get("Plugins"), Mapping) else {}
    log_drivers = [str(d) for d in (plugins.get("Log") or []) if isinstance(d, str)]
    volume_drivers = [str(d) for d in (plugins.get("Volume") or ["local"]) if isinstance(d, str)]
    api = _api_versions(info.get("ApiVersion"))
    flags = [f"com.amazonaws.ecs.capability.docker-remote-api.{v}" for v in api]
    flags += [
        f"com.amazonaws.ecs.capability.logging-driver.{d}"
        for d in sorted({*log_drivers, *ALWAYS_LOG_DRIVERS})
    ]
    flags += [f"ecs.capability.docker-plugin.{d}" for d in sorted(set(volume_drivers))]
    flags += DOCKYARD_CAPABILITIES
    out += [{"name": f} for f in flags]
    return out


def ec2_id(docker_host: str, info: Mapping[str, Any]) -> str:
    digest = hashlib.sha256(f"{info.get('ID', '')}|{docker_host}".encode()).hexdigest()
    return "i-" + digest[:17]


def agent_connected(local: bool, heartbeat_at: float, now: float, timeout: float) -> bool:
    """Whether an instance's agent counts as connected at ``now``: the local engine always
    (the control plane is its agent), another host while its last heartbeat is at most
    ``timeout`` seconds old."""
    return local or now - heartbeat_at <= timeout


