"""What the runner needs from other parts, as small typed interfaces (consumer side).

The assembly (:func:`dockyard.platform.assemble`) fills them in; the runner imports no other
part. All are optional: without ``InstanceRegistry`` tasks are not registered anywhere,
without ``PullAuth`` hosts pull anonymously, without ``TaskResolver`` tasks keep the
engine's default nameservers, without ``NamespaceLookup`` ListServicesByNamespace finds no
namespace, without ``NamespaceInfo`` no Service Connect namespace exists, without
``AlarmStates`` no alarm name is checked, no deployment is rolled back by an alarm and no step
scaling policy is invoked, without ``TargetGroups`` a service's ``loadBalancers`` name no
target group that exists.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = ["AlarmFiring", "AlarmStates", "InstanceRegistry", "LogShipper", "MetricSource", "NamespaceInfo",
           "NamespaceLookup", "NamespaceRef", "PullAuth", "Sidecars", "TaskResolver"]


class AlarmFiring(Protocol):
    """An alarm in ALARM that names an action: its threshold and the datapoints its last
    evaluation judged (oldest first; empty when SetAlarmState put it there)."""

    name: str
    threshold: float
    datapoints: Sequence[float]


class AlarmStates(Protocol):
    """CloudWatch alarms, as a deployment with ``deploymentConfiguration.alarms`` and a step
    scaling policy named in alarms' ``AlarmActions`` read them."""

    def state(self, name: str) -> str | None:
        """The alarm's state now (OK, ALARM, INSUFFICIENT_DATA); None when there is no such
        alarm."""
        ...

    def evaluation_seconds(self, name: str) -> float | None:
        """How long the alarm takes to judge a breach: ``(EvaluationPeriods + 1) * Period`` (the
        periods it judges, and the one a breach fills first); None when there is no such alarm.
        A ROLLING deployment's bake time comes from it."""
        ...

    def firing(self, action: str) -> Sequence[AlarmFiring]:
        """The alarms in ALARM (actions enabled) whose ``AlarmActions`` name ``action`` (a
        scaling policy's ARN)."""
        ...

    def subscribe(self) -> asyncio.Queue[Any]:
        """A queue of every state change from now on (each with ``name`` and ``new``, the new
        state), bounded; the service loop wakes on one into ALARM instead of at its next look."""
        ...

    def unsubscribe(self, queue: asyncio.Queue[Any]) -> None: ...


class InstanceRegistry(Protocol):
    """Where a service's running tasks are registered (Cloud Map in Dockyard).

    ``service_id`` is the registry's own service id (the last part of a ``registryArn``),
    ``instance_id`` the task id."""

    async def register(self, service_id: str, instance_id: str, attributes: Mapping[str, str]) -> None:
        """Create or replace the instance. Raises if the service does not exist or refuses the
        attributes."""
        ...

    async def deregister(self, service_id: str, instance_id: str) -> None:
        """Remove the instance; an unknown instance (or service) is not an error."""
        ...

    async def ensure_service(self, namespace: str, name: str) -> str:
        """The ARN of the registry's service ``name`` in the namespace with this id, ARN or name,
        created first when there is none (as ECS creates a Service Connect service's
        ``discoveryName``). Raises if there is no such namespace."""
        ...


class NamespaceLookup(Protocol):
    """The Cloud Map service ids (what a ``registryArn`` ends in) of the namespace with this id,
    ARN or name; None when there is no such namespace (what ListServicesByNamespace needs)."""

    def __call__(self, namespace: str) -> set[str] | None: ...


class NamespaceRef(Protocol):
    """A Cloud Map namespace: its id (``ns-...``), ARN and name."""

    id: str
    arn: str
    name: str


class NamespaceInfo(Protocol):
    """The namespace with this id, ARN or name (the oldest of that name), None when there is
    none (what Service Connect needs: its ARN to show, its name for the aliases)."""

    def __call__(self, namespace: str) -> NamespaceRef | None: ...


class PullAuth(Protocol):
    """Docker ``auth_config`` (``{"username", "password"}``) for pulls from Dockyard's own
    registry, made on first call; None when pulls are anonymous."""

    async def __call__(self) -> dict[str, str] | None: ...


class TaskResolver(Protocol):
    """The resolver tasks get as their nameserver (Dockyard's DNS, forwarding other names)."""

    async def serve(self, address: str) -> bool:
        """Serve DNS on ``address`` port 53 (idempotent); False when that cannot be done, the
        tasks then keep the engine's default nameservers."""
        ...


class Sidecars(Protocol):
    """The mesh's side of a meshed task's sidecar (Envoy, one per task; see docs/mesh.md).

    The runner puts the sidecar in the task's network namespace from ``image`` (built on the
    control plane from the installed Envoy and loaded into each host's engine with
    ``image_tar``, never pulled), passes ``bootstrap(...)`` as ``--config-yaml``, and starts
    the app containers only once ``ready`` says the sidecar ACKed its first complete
    configuration. On stop, the app containers stop only once ``drained`` says no other
    sidecar routes to the task any more (it left discovery first), within a bound."""

    image: str

    def image_tar(self) -> Any:
        """A binary file object of the image's root file system (``docker import``), with
        ``ENTRYPOINT``/``CMD`` given by :meth:`import_changes`."""
        ...

    def import_changes(self) -> list[str]:
        """Dockerfile instructions for the import (``ENTRYPOINT [...]``, ``LABEL ...``)."""
        ...

    async def xds_address(self, gateway: str) -> tuple[str, int]:
        """Where a sidecar in a task whose network's gateway is ``gateway`` reaches the xDS
        server (served there on demand, idempotent)."""
        ...

    def bootstrap(self, task_arn: str, service: str, xds: tuple[str, int]) -> dict[str, Any]:
        """Envoy's bootstrap (JSON-able) for the sidecar of ``task_arn``."""
        ...

    async def ready(self, task_arn: str, timeout: float) -> bool:
        """True once the node ``task_arn`` ACKed every type of a complete snapshot; False when
        ``timeout`` seconds pass first."""
        ...

    async def drained(self, task_arn: str, timeout: float) -> bool:
        """True once no connected sidecar may still send requests to ``task_arn``: the
        configuration each one was given leaves the task's endpoints out, and each one ACKed
        it; False when ``timeout`` seconds pass first."""
        ...


class LogShipper(Protocol):
    """Where the output of ``awslogs`` containers goes (:mod:`runner.logs.collector`; inside
    the runner, handed to the task workers by its install)."""

    async def prepare(self, log_configuration: Mapping[str, Any] | None) -> str:
        """Create the container's log group when it asks to; why it cannot start, else ""."""
        ...

    async def follow(self, docker_url: str, cid: str, task_id: str, container: str,
                     log_configuration: Mapping[str, Any] | None) -> None:
        """Follow the container's output into its stream (idempotent)."""
        ...

    async def drained(self, cid: str, timeout: float) -> bool:
        """True once the container's output up to its end is stored."""
        ...


class MetricSource(Protocol):
    """What the autoscaling loop reads of the metrics (the telemetry's store): one value per
    ``period`` seconds from ``start`` to ``end``, oldest first, None for a period without data."""

    async def points(
        self, namespace: str, name: str, dimensions: dict[str, str], statistic: str, period: float,
        start: float, end: float,
    ) -> list[float | None]: ...


class RevisionWindow(Protocol):
    """One task definition revision's answers over a window: requests, 5xx answers and p99
    latency in milliseconds (None: no latency sample)."""

    requests: float
    errors: float
    p99: float | None


class RevisionMetrics(Protocol):
    """What the tasks of one revision of a service served (the mesh's sidecar metrics, per
    revision: what ``dockyard canary`` judges; see docs/deployments.md)."""

    def window(self, cluster: str, service: str, revision: int, start: float, end: float) -> RevisionWindow:
        """The answers the service's tasks of ``revision`` in ``cluster`` (the cluster's name)
        served in ``[start, end)`` (epoch seconds); zeros when there are none."""
        ...


class TargetGroup(Protocol):
    """An ELBv2 target group as a service behind it needs it (the edge in Dockyard)."""

    arn: str
    target_type: str  # "ip" or "instance"
    deregistration_delay: float  # seconds (``deregistration_delay.timeout_seconds``)
    load_balancers: tuple[str, ...]  # the ARNs of the load balancers whose listeners use it


class TargetGroups(Protocol):
    """Where a service's tasks are registered as targets (``loadBalancers`` on CreateService;
    docs/edge.md, "ECS services behind a target group"). A target is ``(id, port)``: an IPv4
    address (``ip`` groups) or a container instance's ``ec2InstanceId`` (``instance``)."""

    def group(self, arn: str) -> TargetGroup | None:
        """The target group with this ARN, None when there is none."""
        ...

    async def register(self, arn: str, target: tuple[str, int]) -> None:
        """Register the target (idempotent). Raises if the group is gone or refuses it."""
        ...

    async def deregister(self, arn: str, target: tuple[str, int]) -> None:
        """Deregister the target: it gets no new request and drains for the group's
        ``deregistration_delay``; an unknown target (or group) is not an error."""
        ...

    def health(self, arn: str, target: tuple[str, int]) -> tuple[str, str]:
        """The target's ELBv2 state (``initial``, ``healthy``, ``unhealthy``, ``unused``,
        ``draining``, ``unavailable``) and its reason's description ("" when none)."""
        ...


__all__ += ["RevisionMetrics", "RevisionWindow", "TargetGroup", "TargetGroups"]


class ListenerRules(Protocol):
    """The listener rules a traffic-shifting deployment behind a load balancer moves
    (``loadBalancers[].advancedConfiguration``; docs/deployments.md, "Behind a load balancer")."""

    def forwards(self, rule_arn: str) -> tuple[str, ...] | None:
        """The target group ARNs the rule's forward action names, None when there is no rule."""
        ...

    async def set_weights(self, rule_arn: str, weights: Mapping[str, int]) -> None:
        """Make the rule's forward action send to these groups with these weights (ModifyRule).
        Raises if the rule is gone."""
        ...


__all__ += ["ListenerRules"]
