"""The scheduler, pure: which host should a task run on? (Nomad-style.)

Flow: the caller builds frozen :class:`HostView` s (remaining cpu/memory, ports in use,
attributes, unstopped tasks) and a :class:`TaskNeeds` (cpu, memory, fixed host ports, group,
constraints, strategies), then

1. **feasibility** (:mod:`.feasible`): agent connected, the definition's requiresAttributes,
   memberOf constraints (cluster query language, :mod:`runner.query`), distinctInstance, cpu,
   memory, ports. A rejected host is recorded with every reason it failed
   (``RESOURCE:MEMORY``, ``ATTRIBUTE``, ...) and the required attributes it lacks.
2. **ranking** (:mod:`.rank`): the feasible hosts ordered by the strategies chained in the
   order given: ``binpack`` (cpu|memory), ``spread`` (instanceId|attribute:NAME), ``random``
   (seedable).

:func:`schedule` returns a :class:`Placement` or a :class:`NoHostFits` (with ``reason`` for
RunTask ``failures`` and ``explain()`` for a service event): a result, never an exception.
:func:`place` places several tasks, charging each to its host. :func:`needs_for` builds the
needs of a task definition (its cpu/memory, fixed host ports, requiresAttributes, own memberOf
constraints); with
the FARGATE launch type it uses :data:`FARGATE_STRATEGY` whatever was asked: Dockyard picks.

:mod:`.placement` is the way in from the store's values: :func:`host_view` (a container
instance and its host's usage), :func:`task_needs` (``needs_for`` plus a request's placement and
overrides) and :func:`choose` (where ``count`` tasks go, and a :class:`LaunchFailure` for each
one placed nowhere), which :func:`runner.tasks.launch` calls.
"""

from runner.scheduler.model import (
    DEFAULT_SERVICE_STRATEGY,
    DEFAULT_TASK_STRATEGY,
    FARGATE_STRATEGY,
    Constraint,
    HostView,
    NoHostFits,
    Placed,
    Placement,
    Rejection,
    Strategy,
    TaskNeeds,
    TaskView,
    needs_for,
    parse_constraints,
    parse_required_attributes,
    parse_strategies,
)
from runner.scheduler.placement import InstanceView, LaunchFailure, choose, host_view, task_needs
from runner.scheduler.stack import charge, place, schedule

__all__ = [
    "DEFAULT_SERVICE_STRATEGY",
    "DEFAULT_TASK_STRATEGY",
    "FARGATE_STRATEGY",
    "Constraint",
    "HostView",
    "InstanceView",
    "LaunchFailure",
    "NoHostFits",
    "Placed",
    "Placement",
    "Rejection",
    "Strategy",
    "TaskNeeds",
    "TaskView",
    "charge",
    "choose",
    "host_view",
    "needs_for",
    "parse_constraints",
    "parse_required_attributes",
    "parse_strategies",
    "place",
    "schedule",
    "task_needs",
]
