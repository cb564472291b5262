"""The runner part: ECS's API over the Docker Engine.

Each module listed in ``MODULES`` exposes ``MIGRATIONS`` and ``OPERATIONS`` (ECS operation
name -> ``async fn(store, config, params) -> dict``), and optionally ``CONTEXTS`` (start/stop
hooks taking the platform). :func:`install` starts the task supervisor and the service loop
with the seams the assembly gives it (:mod:`runner.seams`), and returns a :class:`RunnerPart`
whose ``connect`` (:class:`runner.connectview.ConnectView`) is what the mesh reads of Service
Connect (``mesh.seams.ConnectView``).
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dockyard.aws.errors import ValidationException
from dockyard.aws.protocol import ECS, Call
from dockyard.store import Store
from runner import (
    accountsettings,
    clusters,
    events,
    execs,
    hostaccess,
    secrets,
    service_loop,
    services,
    taskcreds,
    tasklogs,
)
from runner.autoscaling import api as autoscaling_api
from runner.autoscaling import loop as autoscaling_loop
from runner.connectview import ConnectView
from runner.eventbridge import api as events_api
from runner.eventbridge import bus as events_bus
from runner.eventbridge import scheduler as events_scheduler
from runner.logs import service as logs_service
from runner.seams import (
    AlarmStates,
    InstanceRegistry,
    ListenerRules,
    MetricSource,
    NamespaceInfo,
    NamespaceLookup,
    PullAuth,
    RevisionMetrics,
    Sidecars,
    TargetGroups,
    TaskResolver,
)
from runner.supervisor import Supervisor
from runner.usage import Usage

if TYPE_CHECKING:
    from dockyard.platform import Platform

MODULES = ["runner.accountsettings", "runner.clusters", "runner.taskdefs", "runner.secrets",
           "runner.instances", "runner.attributes", "runner.tasks", "runner.protection", "runner.services",
           "runner.service_loop", "runner.tags", "runner.unsupported", "runner.capacity",
           "runner.servicedeployments"]
_modules = [importlib.import_module(m) for m in MODULES]

MIGRATIONS = [m for mod in _modules for m in getattr(mod, "MIGRATIONS", [])] + autoscaling_api.MIGRATIONS + \
    events_api.MIGRATIONS


def _bind(platform: Platform, fn: Any, name: str = "") -> Any:
    guarded = name in hostaccess.OPERATIONS  # where a task definition meets a cluster

    async def handler(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        if guarded:
            params = hostaccess.check(platform.store, platform.config, call, params)
        return await fn(platform.store, platform.config, params)

    return handler


def secret_lookup(store: Store) -> Callable[[str], str | None]:
    """The secret store as the registry reads it (``registry.seams.SecretLookup``): a Secrets
    Manager ARN (or ``dockyard:secret:NAME``) to the secret's value, None when absent."""

    def lookup(reference: str) -> str | None:
        name = secrets.parse_reference(reference)
        if name is None:
            return None
        try:
            return secrets.get(store, name)
        except secrets.SecretNotFound:
            return None

    return lookup


def _install_events(platform: Platform) -> events_bus.Bus:
    """EventBridge (:mod:`runner.eventbridge`): its operations (AWS JSON 1.1, its own target),
    EventBridge Scheduler's (REST-JSON) and the bus they feed."""
    bus = events_bus.install(platform)
    for name, fn in events_api.operations(bus.put).items():
        async def handler(call: Call, params: dict[str, Any], fn: Any = fn) -> dict[str, Any]:
            return await fn(platform.store, platform.config, params, call)

        platform.ops.add(events_api.TARGET, name, handler)
    platform.ops.validate(events_api.TARGET, ValidationException)
    for name, fn in events_scheduler.operations().items():  # EventBridge Scheduler (REST-JSON)
        async def scheduled(call: Call, params: dict[str, Any], fn: Any = fn) -> dict[str, Any]:
            return await fn(platform.store, platform.config, params, call)

        platform.ops.add(events_scheduler.SERVICE, name, scheduled)
    platform.ops.validate(events_scheduler.SERVICE, ValidationException)
    return bus


@dataclass(frozen=True)
class RunnerPart:
    """What the runner offers other parts: ``connect``, its Service Connect state (the mesh's
    ``mesh.seams.ConnectView``), and ``usage``, its running tasks' CPU and memory from the
    Docker Engine (``mesh.seams.UsageView``), and ``ecr_events``, where the registry sends ECR's
    events (``registry.seams.EventSink``: onto the EventBridge bus)."""

    connect: ConnectView
    usage: Usage | None = None
    ecr_events: Callable[[str, list[str], Mapping[str, Any]], None] | None = None


def install(
    platform: Platform,
    *,
    instances: InstanceRegistry | None = None,
    pull_auth: PullAuth | None = None,
    task_dns: TaskResolver | None = None,
    namespaces: NamespaceLookup | None = None,
    namespace_info: NamespaceInfo | None = None,
    sidecars: Sidecars | None = None,
    metrics: MetricSource | None = None,
    alarms: AlarmStates | None = None,
    revision_metrics: RevisionMetrics | None = None,
    target_groups: TargetGroups | None = None,
    listener_rules: ListenerRules | None = None,
) -> RunnerPart:
    """Register the ECS operations (ListServicesByNamespace reads Cloud Map namespaces through
    ``namespaces``; Service Connect's through ``namespace_info``, its Cloud Map services are
    ensured in ``instances``); run the supervisor (hosts pull from Dockyard's registry with
    ``pull_auth``; tasks resolve names through ``task_dns``) and the service loop (tasks of
    services with ``serviceRegistries`` or Service Connect are registered in ``instances``; a
    meshed task's sidecar comes from ``sidecars``, and without it such a task fails to start;
    deployments with ``deploymentConfiguration.alarms`` read ``alarms``, a canary analysis
    ``revision_metrics``; services with ``loadBalancers`` register their tasks in
    ``target_groups``, shifts move the rules of ``listener_rules``); and the autoscaling loop
    (target tracking over ``metrics``, step policies invoked by ``alarms``)."""
    seams: dict[str, dict[str, Any]] = {
        **{n: {"namespace_info": namespace_info} for n in clusters.NAMESPACED},
        **{n: {"namespace_info": namespace_info, "registry": instances, "alarms": alarms,
               "target_groups": target_groups, "listener_rules": listener_rules}
           for n in services.NAMESPACED},
    }
    for mod in _modules:
        for name, fn in getattr(mod, "OPERATIONS", {}).items():
            if name in seams:
                fn = functools.partial(fn, **seams[name])
            platform.ops.add(ECS, name, _bind(platform, fn, name))
        platform.contexts.extend(getattr(mod, "CONTEXTS", []))
    creds = None
    if getattr(platform, "session_key", None) is not None:  # task roles (runner.taskcreds)
        creds = taskcreds.TaskCredentials(platform.store, platform.config, platform.session_key)
        platform.contexts.append(creds.serve)
    log_store, collector = logs_service.install(platform)  # CloudWatch Logs (runner.logs)
    supervisor = Supervisor(
        platform.store, platform.config, pull_auth=pull_auth, task_dns=task_dns, task_credentials=creds,
        sidecars=sidecars, logs=collector,
    )

    async def supervise(p: Platform) -> AsyncIterator[None]:
        await supervisor.start()
        try:
            yield
        finally:
            await supervisor.stop()

    async def get_logs(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await tasklogs.task_logs(platform.store, platform.config, supervisor, params, log_store)

    async def list_by_namespace(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await services.list_by_namespace(platform.store, platform.config, params, namespaces,
                                                 namespace_info)

    platform.contexts.append(supervise)
    platform.ops.add(ECS, "GetTaskLogs", get_logs)
    platform.ops.add(ECS, "ListServicesByNamespace", list_by_namespace)
    execs.install(platform, supervisor)  # ExecuteCommand and its /exec/ stream (dockyard exec)
    events.install(platform)
    accountsettings.install(platform)  # (its operations need the call: the caller is the principal)
    for name, fn in autoscaling_api.OPERATIONS.items():  # Application Auto Scaling (its own target)
        platform.ops.add(autoscaling_api.TARGET, name, _bind(platform, fn, name))
    platform.ops.validate(autoscaling_api.TARGET, ValidationException)
    # target tracking reads ``metrics``, step policies ``alarms`` (neither: schedules only)
    autoscaling_loop.install(platform, metrics, alarms)
    bus = _install_events(platform)
    service_loop.install(platform, registrar=instances, addresses=supervisor.instance_address,
                         prewarm=supervisor.prewarm, alarms=alarms, metrics=revision_metrics,
                         targets=target_groups, rules=listener_rules)
    return RunnerPart(ConnectView(platform.store, platform.config),
                      Usage(platform.store, platform.config, supervisor), bus.ecr_event)
