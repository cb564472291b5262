"""Pure rules of a task's life: statuses, dependsOn, health and why a task stopped.

A task walks ``PROVISIONING -> PENDING -> ACTIVATING -> RUNNING -> DEACTIVATING -> STOPPING ->
DEPROVISIONING -> STOPPED`` (it may skip ahead to the stop half from any start step). The host
agent observes containers as :class:`Observed` values and asks these functions what follows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "STATUSES",
    "Observed",
    "container_status",
    "dependency_verdict",
    "essential_exit",
    "next_to_start",
    "observe",
    "status_index",
    "stop_waves",
    "task_health",
]

STATUSES = [
    "PROVISIONING",
    "PENDING",
    "ACTIVATING",
    "RUNNING",
    "DEACTIVATING",
    "STOPPING",
    "DEPROVISIONING",
    "STOPPED",
]
_HEALTH = {"healthy": "HEALTHY", "unhealthy": "UNHEALTHY", "starting": "UNKNOWN"}

# stopCode values as ECS writes them.
FAILED_TO_START = "TaskFailedToStart"
ESSENTIAL_EXITED = "EssentialContainerExited"
USER_INITIATED = "UserInitiated"
SCHEDULER_INITIATED = "ServiceSchedulerInitiated"


def status_index(status: str) -> int:
    return STATUSES.index(status) if status in STATUSES else 0


@dataclass(frozen=True)
class Observed:
    """One container as Docker reports it (from ``inspect``)."""

    started: bool = False
    running: bool = False
    exit_code: int | None = None
    health: str = "UNKNOWN"
    reason: str = ""
    oom: bool = False


def observe(inspect: Mapping[str, Any] | None) -> Observed:
    """An :class:`Observed` from a ``docker inspect`` result (None: the container is gone)."""
    if not inspect:
        return Observed(started=True, exit_code=137, reason="Container is gone")
    state = inspect.get("State") or {}
    started_at = str(state.get("StartedAt") or "")
    started = bool(state.get("Running")) or not started_at.startswith("0001-")
    exited = state.get("Status") in ("exited", "dead") and started
    health = _HEALTH.get(((state.get("Health") or {}).get("Status") or ""), "UNKNOWN")
    reason = ""
    if state.get("OOMKilled"):
        reason = "OutOfMemoryError: Container killed due to memory usage"
    elif state.get("Error"):
        reason = str(state["Error"])
    return Observed(
        started=started,
        running=bool(state.get("Running")),
        exit_code=int(state.get("ExitCode", 0)) if exited else None,
        health=health,
        reason=reason,
        oom=bool(state.get("OOMKilled")),
    )


def container_status(o: Observed) -> str:
    """ECS container ``lastStatus`` for an observed container."""
    if o.running:
        return "RUNNING"
    if o.exit_code is not None:
        return "STOPPED"
    return "PENDING"


def dependency_verdict(condition: str, dep: Observed) -> str:
    """``"ok"``, ``"wait"`` or ``"failed"`` for one ``dependsOn`` entry."""
    condition = condition.upper()
    if condition == "START":
        return "ok" if dep.started else "wait"
    if condition == "COMPLETE":
        return "ok" if dep.exit_code is not None else "wait"
    if condition == "SUCCESS":
        if dep.exit_code is None:
            return "wait"
        return "ok" if dep.exit_code == 0 else "failed"
    if condition == "HEALTHY":
        if dep.health == "HEALTHY":
            return "ok"
        return "failed" if dep.exit_code is not None else "wait"
    return "failed"


def next_to_start(
    defs: Sequence[Mapping[str, Any]], seen: Mapping[str, Observed], started: set[str]
) -> tuple[list[str], str]:
    """Containers whose ``dependsOn`` are all met and not yet started, and a failure reason
    (non-empty when some container can never start because a dependency failed)."""
    ready = []
    for c in defs:
        name = c["name"]
        if name in started:
            continue
        verdicts = []
        for d in c.get("dependsOn") or []:
            dep = d.get("containerName")
            verdict = dependency_verdict(d.get("condition", "START"), seen.get(dep, Observed()))
            if verdict == "failed":
                return [], (
                    f"Dependency {dep} of container {name} did not reach condition "
                    f"{d.get('condition', 'START')}"
                )
            verdicts.append(verdict)
        if all(v == "ok" for v in verdicts):
            ready.append(name)
    return ready, ""


def stop_waves(defs: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    """Container names in stop order: a container stops before anything it depends on."""
    names = [c["name"] for c in defs]
    deps = {c["name"]: {d.get("containerName") for d in c.get("dependsOn") or []} for c in defs}
    remaining = set(names)
    waves = []
    while remaining:
        # Stop now whatever no remaining container depends on.
        needed = set().union(*(deps[n] for n in remaining)) if remaining else set()
        wave = [n for n in names if n in remaining and n not in needed]
        if not wave:  # a cycle: stop the rest together
            wave = [n for n in names if n in remaining]
        waves.append(wave)
        remaining -= set(wave)
    return waves


def essential_exit(defs: Sequence[Mapping[str, Any]], seen: Mapping[str, Observed]) -> str:
    """The name of an essential container that has exited, or ``""``."""
    for c in defs:
        if c.get("essential", True) and seen.get(c["name"], Observed()).exit_code is not None:
            return c["name"]
    return ""


def task_health(defs: Sequence[Mapping[str, Any]], seen: Mapping[str, Observed]) -> str:
    """ECS task ``healthStatus``: UNHEALTHY if any essential container with a health check is
    unhealthy, HEALTHY if all of them are healthy, else UNKNOWN (also when none has one)."""
    checked = [c for c in defs if c.get("essential", True) and (c.get("healthCheck") or {}).get("command")]
    if not checked:
        return "UNKNOWN"
    states = [seen.get(c["name"], Observed()).health for c in checked]
    if "UNHEALTHY" in states:
        return "UNHEALTHY"
    if all(s == "HEALTHY" for s in states):
        return "HEALTHY"
    return "UNKNOWN"
