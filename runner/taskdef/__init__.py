"""Task definitions: ECS's JSON in, a validated frozen model out (pure: no I/O).

* :func:`parse` takes a RegisterTaskDefinition request body (or a stored definition) and
  returns a :class:`TaskDefinition`, or raises ``ClientException`` whose message names the
  wrong field: ``Invalid setting for container 'web': memory must be an integer >= 6`` or
  ``Invalid setting for task definition: cpu ...``.
* :func:`render` turns a model back into ECS's ``TaskDefinition`` JSON (defaults filled in:
  ``essential``, ``cpu`` 0, port ``protocol`` tcp, healthCheck interval 30 / timeout 5 /
  retries 3). ``parse(render(td)) == td``, so the store keeps the rendered JSON.
* :func:`requires_attributes` and :func:`compatibilities` compute what DescribeTaskDefinition
  reports besides the definition.

Units: container ``cpu`` in CPU units (1024 = one vCPU), memory in MiB. Task-level cpu and
memory arrive as strings ("256", "1 vCPU", "0.5GB", "512") and are held as ints
(:attr:`TaskDefinition.cpu` units, :attr:`TaskDefinition.memory` MiB); :attr:`TaskDefinition.
cpu_needed` / :attr:`TaskDefinition.memory_needed` are what the scheduler reserves on a host.

Port mappings: in ``awsvpc`` and ``host`` mode ``hostPort`` must equal ``containerPort`` (or be
omitted, then it does); in ``bridge`` mode an omitted or 0 ``hostPort`` means a dynamic port;
in ``none`` mode there are none. Fields that only mean something on AWS (roles, linux
parameters, firelens, ...) are accepted and echoed unchanged through ``extra``.

Split into :mod:`runner.taskdef.model` (the dataclasses), :mod:`runner.taskdef.parse` and
:mod:`runner.taskdef.render`; import from this package.
"""

from __future__ import annotations

from runner.taskdef.model import (
    NETWORK_MODES,
    Container,
    Dependency,
    DockerVolume,
    EnvironmentFile,
    HealthCheck,
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
from runner.taskdef.parse import (
    parse,
)
from runner.taskdef.render import (
    compatibilities,
    image_candidates,
    render,
    requires_attributes,
)
from runner.taskdef.sizes import parse_task_cpu, parse_task_memory

__all__ = [
    "NETWORK_MODES",
    "Container",
    "Dependency",
    "DockerVolume",
    "EnvironmentFile",
    "HealthCheck",
    "LogConfiguration",
    "MountPoint",
    "PlacementConstraint",
    "PortMapping",
    "Secret",
    "TaskDefinition",
    "Ulimit",
    "Volume",
    "VolumeFrom",
    "compatibilities",
    "image_candidates",
    "parse",
    "parse_task_cpu",
    "parse_task_memory",
    "render",
    "requires_attributes",
]
