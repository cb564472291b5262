"""The trust check where a task definition meets a cluster.

At ``RunTask``, ``StartTask``, ``CreateService`` and ``UpdateService`` (with a
``taskDefinition``), the definition's host access (:func:`runner.taskdef.trust.host_access`:
``privileged``, host network, PID or IPC mode, host paths outside ``host_paths``, the Docker
socket) is refused with a ``ClientException`` naming the first such field, unless

1. the operator allows host access on the cluster: its name matches the config's
   ``host_access_clusters`` (comma-separated names or patterns: ``infra,gpu-*``; ``*``: every
   cluster), and
2. the caller may do ``dockyard:RunPrivilegedTask`` on the cluster's ARN (an administrator
   key may; a key with a policy needs it granted, else ``AccessDeniedException``).

A definition with a ``taskRoleArn`` also needs ``iam:PassRole`` on that role's ARN, as on AWS:
its containers get the role's credentials (:mod:`runner.taskcreds`), so a key may only start
tasks with roles it may hand out.

The check is made here, not at RegisterTaskDefinition: a definition is a document anyone may
write, and what it may do depends on where it runs. The revision checked is the one that
runs: the call goes on with ``taskDefinition`` pinned to that revision's ARN, so a revision
registered meanwhile cannot slip in. Services already created keep launching what was
checked when they were created or updated, even if the setting changes later.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from dockyard.aws.errors import AwsError, ClientException
from dockyard.aws.protocol import Call
from dockyard.config import Config
from dockyard.iam.authorize import require
from dockyard.store import Store
from runner import clusters, taskdefs
from runner.taskdef import trust

__all__ = ["ACTION", "OPERATIONS", "PASS_ROLE", "check", "cluster_allows", "host_paths"]

ACTION = "dockyard:RunPrivilegedTask"
PASS_ROLE = "iam:PassRole"
OPERATIONS = ("RunTask", "StartTask", "CreateService", "UpdateService")


def _items(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def cluster_allows(config: Config, cluster: str) -> bool:
    """Whether the operator allows host access on ``cluster``: its name matches one of
    ``host_access_clusters`` (names, or patterns with ``*`` and ``?``: ``infra-*``, ``*``)."""
    return any(fnmatch.fnmatchcase(cluster, p) for p in _items(config.host_access_clusters))


def host_paths(config: Config) -> list[str]:
    """The host directories every task may mount (``host_paths``)."""
    return _items(config.host_paths)


def _sockets(config: Config) -> tuple[str, ...]:
    extra = config.docker_host[len("unix://"):] if config.docker_host.startswith("unix://") else ""
    return (*trust.DOCKER_SOCKETS, *([extra] if extra else []))


def check(store: Store, config: Config, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    """``params`` with the task definition pinned to the revision checked; raises when its
    host access is refused (see the module docstring). A request whose cluster or task
    definition cannot be read is passed on unchanged, for the operation to answer."""
    ident = params.get("taskDefinition")
    if ident is None:
        return params
    try:
        cluster = clusters.cluster_name(params.get("cluster"))
        _, defn = taskdefs.definition(store, config, ident)
    except AwsError:
        return params
    pinned = {**params, "taskDefinition": defn["taskDefinitionArn"]}
    role = defn.get("taskRoleArn")
    if isinstance(role, str) and role:
        require(call, PASS_ROLE, [role])  # the task's containers will act as the role
    found = trust.host_access(defn, host_paths(config), _sockets(config))
    if not found:
        return pinned
    first = found[0]
    if not cluster_allows(config, cluster):
        raise ClientException(
            f"{first.field} is refused: it gives a task {first.gives}. Host access is not allowed on "
            f"cluster {cluster} (the operator allows it with the host_access_clusters setting; "
            "see docs/security.md)."
        )
    require(call, ACTION, [clusters.cluster_arn(config, cluster)])
    return pinned
