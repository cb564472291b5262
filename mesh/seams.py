"""What the mesh needs from other parts, as small typed interfaces (consumer side).

The assembly (:func:`dockyard.platform.assemble`) fills them in; the mesh imports no other part.

* :class:`ConnectView` (the runner): the meshed tasks (the nodes, keyed by task ARN) and the
  Service Connect services of each namespace (what clients reach by alias);
* :class:`InstanceView` (discovery): the instances of a Cloud Map service, with attributes
  and health.

The mesh follows ``store.changes`` on :data:`CHANGE_TOPICS` plus the topics each view names,
then re-reads through the views; it never reads another part's tables.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["AlarmChange", "AlarmFiring", "Alarms", "Alias", "ConnectService", "ConnectView", "Instance",
           "InstanceView", "MeshedTask", "TaskIngress", "TaskUsage", "UsageView"]


class Alias(Protocol):
    """A client alias (``clientAliases[]``): ``dns_name`` and ``port`` as the app calls them."""

    dns_name: str
    port: int


class RevisionWeight(Protocol):
    """One task definition revision's share of a Service Connect service's production traffic,
    in basis points (0-10000; 0 keeps the revision's cluster but sends it nothing)."""

    family: str
    revision: int
    weight: int


class TrafficSplit(Protocol):
    """How a deployment that shifts traffic (ECS's BLUE_GREEN, LINEAR, CANARY) splits a Service
    Connect service over the revisions of its tasks (their Cloud Map instances'
    ``ECS_TASK_DEFINITION_FAMILY``/``ECS_TASK_DEFINITION_REVISION``): production traffic by
    ``weights``; requests carrying one of ``test_headers`` (name, exact value), when
    ``test_revision`` is set, to the revision ``test_family``:``test_revision``."""

    weights: Sequence[RevisionWeight]
    test_family: str
    test_revision: int | None
    test_headers: Sequence[tuple[str, str]]


class ConnectService(Protocol):
    """One entry of an ECS service's ``serviceConnectConfiguration.services[]``.

    ``discovery_name`` is the Cloud Map service in ``namespace`` its tasks register in (the
    instance's ``AWS_INSTANCE_IPV4``/``AWS_INSTANCE_PORT`` are where the task's ingress is
    reached); ``app_protocol`` is the port mapping's ``appProtocol`` ("" = tcp); timeouts are
    seconds, None when not set; ``traffic`` the split a deployment in progress asks for (None:
    every healthy instance alike); ``tls``: its callers speak mTLS to it (``services[].tls``)."""

    namespace: str
    discovery_name: str
    port_name: str
    app_protocol: str
    aliases: Sequence[Alias]
    idle_timeout: float | None
    per_request_timeout: float | None
    traffic: TrafficSplit | None
    tls: bool


class TaskIngress(Protocol):
    """One ingress listener of a meshed task: ``port`` in the task's network namespace to the
    app's ``container_port`` on loopback; with ``tls`` it takes mTLS only (STRICT);
    ``discovery_name`` is the Service Connect entry's ``discoveryName`` (what its metrics'
    ``DiscoveryName`` is; "" for the port name)."""

    port_name: str
    port: int
    container_port: int
    app_protocol: str
    tls: bool
    discovery_name: str


class MeshedTask(Protocol):
    """A task with a sidecar: the node whose id is ``task_arn``.

    ``alias_addresses`` maps ``dns_name`` to the 127.255.x.y address the task's /etc/hosts
    gives it (assigned when the task was placed); ``ingress`` is what it serves; ``egress_port``
    the virtual outbound listener's port (iptables in the task redirect 127.255.0.0/16 there)."""

    task_arn: str
    cluster: str
    service: str
    namespace: str
    family: str
    revision: int
    alias_addresses: Mapping[str, str]
    ingress: Sequence[TaskIngress]
    egress_port: int
    access_log: str  # Service Connect's accessLogConfiguration.format: "", "TEXT" or "JSON"
    access_log_query: bool  # ...and includeQueryParameters ENABLED


class ConnectView(Protocol):
    """The runner's Service Connect state, as committed."""

    change_topics: Sequence[str]

    def meshed_tasks(self) -> Sequence[MeshedTask]:
        """Every task with a sidecar that is not STOPPED."""
        ...

    def namespace_services(self, namespace: str) -> Sequence[ConnectService]:
        """The Service Connect services (with aliases) of every active ECS service in the
        namespace with this name."""
        ...


class Instance(Protocol):
    instance_id: str
    attributes: Mapping[str, str]
    healthy: bool


class InstanceView(Protocol):
    """Discovery's instances, from its in-memory index."""

    change_topics: Sequence[str]

    def instances(self, namespace: str, service: str) -> Sequence[Instance] | None:
        """The instances of the Cloud Map service ``service`` in the namespace with this name,
        healthy or not; None when there is no such namespace or service."""
        ...


class AlarmChange(Protocol):
    """One state change of a CloudWatch alarm (``mesh.telemetry.alarms.StateChange``)."""

    name: str
    old: str  # OK, ALARM, INSUFFICIENT_DATA
    new: str
    reason: str
    at: float


class AlarmFiring(Protocol):
    """An alarm in ALARM whose actions name something (``mesh.telemetry.alarms.Firing``): its
    threshold and the datapoints its last evaluation judged, oldest first."""

    name: str
    threshold: float
    datapoints: Sequence[float]


class Alarms(Protocol):
    """What the mesh offers a deployment that is rolled back by alarms, and a step scaling
    policy that alarms invoke (provider side: the platform hands ``mesh.telemetry.alarms`` to
    the runner)."""

    def state(self, name: str) -> str | None:
        """The alarm's state now; None when there is no such alarm."""
        ...

    def evaluation_seconds(self, name: str) -> float | None:
        """``(EvaluationPeriods + 1) * Period`` of the alarm; None when there is no such alarm."""
        ...

    def firing(self, action: str) -> Sequence[AlarmFiring]:
        """The alarms in ALARM, actions enabled, whose ``AlarmActions`` name ``action``."""
        ...

    def subscribe(self) -> asyncio.Queue[AlarmChange]:
        """A queue of every state change from now on (bounded, oldest dropped)."""
        ...

    def unsubscribe(self, queue: asyncio.Queue[AlarmChange]) -> None: ...


class TaskUsage(Protocol):
    """One reading of a running task's containers from the Docker Engine (summed over them):
    ``cpu_seconds`` is cumulative CPU time, ``memory_bytes`` memory in use now (page cache left
    out, as ``docker stats`` shows it), ``at`` when read; ``cpu_units`` (1024 = one vCPU) and
    ``memory_mib`` are what the task reserves (0: nothing reserved)."""

    task_arn: str
    cluster: str  # the ECS cluster's name
    service: str  # "" for a task of no service
    cpu_seconds: float
    memory_bytes: float
    at: float
    cpu_units: int
    memory_mib: int


class UsageView(Protocol):
    """What the mesh's telemetry reads of the runner's containers (``runner.usage.Usage``)."""

    async def usage(self) -> Sequence[TaskUsage]:
        """A reading of every RUNNING task (a container the engine cannot answer for is left out)."""
        ...
