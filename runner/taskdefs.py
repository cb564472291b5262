"""ECS task definition operations, stored per family and revision in the state store.

Operations: RegisterTaskDefinition, DescribeTaskDefinition, ListTaskDefinitions,
ListTaskDefinitionFamilies, DeregisterTaskDefinition, DeleteTaskDefinitions (AWS shapes; errors are
``ClientException``, as ECS answers them).

For the rest of the runner (agent, tasks, services):

* :func:`load` ``(store, config, ident) -> TaskDefinition``: ``ident`` is ``family`` (the latest
  ACTIVE revision), ``family:revision`` or a full ARN
  ``arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>`` (any status). The
  result is the frozen model of :mod:`runner.taskdef` with ``revision``, ``arn`` and ``status``
  set; per container it has image, cpu, memory, memory_reservation, essential, port_mappings,
  environment, environment_files, secrets (``secret_name`` is the key for
  :func:`runner.secrets.resolve`), command, entry_point, working_directory, user, health_check,
  depends_on, stop_timeout, log_configuration, mount_points, ulimits, docker_labels, extra;
  per task cpu/memory (ints, units and MiB; ``cpu_needed``/``memory_needed`` for placement),
  network_mode, volumes (``host.source_path`` or ``docker`` volume), requires_compatibilities,
  placement_constraints. Raises ``ClientException("Unable to describe task definition.")``
  when there is no such definition.
* :func:`definition` gives the model and its AWS shape from one read; :func:`usable` the same
  for an ACTIVE revision only (RunTask, StartTask, CreateService and UpdateService refuse the
  others with ``ClientException``).
* :func:`arn` builds the ARN; :func:`parse_ident` splits an identifier.
* Tags: :mod:`runner.tags` serves TagResource and friends.
* Changes are published on topic ``ecs/taskdef`` (key ``family:revision``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import data, query, taskdef
from runner.clusters import validate_tags
from runner.errors import ClientException, InvalidParameterException
from runner.taskdef import TaskDefinition

__all__ = ["arn", "definition", "load", "parse_ident", "usable"]

MIGRATIONS = [
    Migration(
        "runner_taskdefs",
        1,
        """
        CREATE TABLE task_definitions (
            family TEXT NOT NULL, revision INTEGER NOT NULL, status TEXT NOT NULL,
            spec TEXT NOT NULL, registered_at REAL NOT NULL, registered_by TEXT NOT NULL,
            deregistered_at REAL, tags TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (family, revision));
        CREATE INDEX task_definitions_status ON task_definitions (status, family, revision);
        """,
    )
]

TOPIC = data.TASKDEF_TOPIC
_ARN = re.compile(r"^arn:aws:ecs:[^:]*:[^:]*:task-definition/([A-Za-z0-9_-]{1,255}):(\d+)$")
_FAMILY_REV = re.compile(r"^([A-Za-z0-9_-]{1,255})(?::(\d+))?$")
NOT_FOUND = "Unable to describe task definition."


def arn(config: Config, family: str, revision: int) -> str:
    return f"arn:aws:ecs:{config.region}:{config.account_id}:task-definition/{family}:{revision}"


def parse_ident(ident: Any) -> tuple[str, int | None]:
    """``family``, ``family:revision`` or an ARN to ``(family, revision or None)``."""
    if not isinstance(ident, str) or not ident:
        raise ClientException("taskDefinition must be a family, family:revision or task definition ARN.")
    m = _ARN.match(ident) or _FAMILY_REV.match(ident)
    if not m:
        raise ClientException(
            f"The specified task definition identifier {ident!r} is invalid. Specify a valid name or ARN."
        )
    return m.group(1), (int(m.group(2)) if m.group(2) is not None else None)


def _row(reader: data.Reader, ident: Any) -> data.StoredDefinition:
    family, revision = parse_ident(ident)
    if revision is None:
        found = data.latest_active_definition(reader, family)
    else:
        found = data.definition(reader, family, revision)
    if found is None:
        raise ClientException(NOT_FOUND)
    return found


def _model(config: Config, stored: data.StoredDefinition) -> TaskDefinition:
    td = taskdef.parse(dict(stored.spec))
    return replace(td, revision=stored.revision, status=stored.status,
                   arn=arn(config, stored.family, stored.revision))


def load(store: Store, config: Config, ident: Any) -> TaskDefinition:
    """The stored definition for ``ident`` (see module docstring)."""
    return _model(config, _row(store, ident))


def definition(store: Store, config: Config, ident: Any) -> tuple[TaskDefinition, dict[str, Any]]:
    """The stored definition for ``ident`` as the validated model and as its AWS shape (what
    DescribeTaskDefinition answers; a task keeps it as its snapshot), from one read.
    Raises ClientException if there is none."""
    stored = _row(store, ident)
    return _model(config, stored), _shape(config, stored)


def usable(store: Store, config: Config, ident: Any) -> tuple[TaskDefinition, dict[str, Any]]:
    """:func:`definition` of an ACTIVE revision: what a new task or service may run. An INACTIVE
    or DELETE_IN_PROGRESS revision is a ClientException, as ECS refuses it; none named, an
    InvalidParameterException. RunTask, StartTask, CreateService and UpdateService read it."""
    if not isinstance(ident, str) or not ident:
        raise InvalidParameterException("taskDefinition is required.")
    td, shape = definition(store, config, ident)
    if td.status != "ACTIVE":
        raise ClientException(f"TaskDefinition is inactive ({ident}).")
    return td, shape


def _shape(config: Config, stored: data.StoredDefinition) -> dict[str, Any]:
    td = _model(config, stored)
    out: dict[str, Any] = {"taskDefinitionArn": td.arn}
    body = taskdef.render(td)
    out["containerDefinitions"] = body.pop("containerDefinitions")
    out["family"] = td.family
    out.update({k: body.pop(k) for k in ("taskRoleArn", "executionRoleArn") if k in body})
    out["networkMode"] = body.pop("networkMode")
    out["revision"] = td.revision
    out["volumes"] = body.pop("volumes")
    out["status"] = td.status
    out["requiresAttributes"] = taskdef.requires_attributes(td)
    out["placementConstraints"] = body.pop("placementConstraints")
    out["compatibilities"] = taskdef.compatibilities(td)
    out.update(body)
    out["registeredAt"] = stored.registered_at
    if stored.deregistered_at is not None:
        out["deregisteredAt"] = stored.deregistered_at
    out["registeredBy"] = stored.registered_by
    return out


async def register(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    tags = validate_tags(params.get("tags"))
    td = taskdef.parse(params, query.validate)
    spec = json.dumps(taskdef.render(td), separators=(",", ":"))
    by = f"arn:aws:iam::{config.account_id}:root"
    async with store.transaction() as tx:
        revision = data.add_definition(tx, td.family, spec, by, tags)
        stored = data.definition(tx, td.family, revision)
    assert stored is not None
    out: dict[str, Any] = {"taskDefinition": _shape(config, stored)}
    if tags:
        out["tags"] = tags
    return out


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    if "taskDefinition" not in params:
        raise ClientException("taskDefinition is required.")
    stored = _row(store, params["taskDefinition"])
    out: dict[str, Any] = {"taskDefinition": _shape(config, stored)}
    include = params.get("include") or []
    if not isinstance(include, list) or any(i != "TAGS" for i in include):
        raise InvalidParameterException("include may only contain TAGS.")
    if "TAGS" in include:
        out["tags"] = list(stored.tags)
    return out


def _status(params: dict[str, Any], allowed: tuple[str, ...]) -> str:
    status = params.get("status") or "ACTIVE"
    if status not in allowed:
        raise InvalidParameterException(f"status must be one of {', '.join(allowed)}.")
    return str(status)


async def list_(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    status = _status(params, ("ACTIVE", "INACTIVE", "DELETE_IN_PROGRESS"))
    sort = params.get("sort") or "ASC"
    if sort not in ("ASC", "DESC"):
        raise InvalidParameterException("sort must be ASC or DESC.")
    family = params.get("familyPrefix") or None
    if family is not None and not isinstance(family, str):
        raise InvalidParameterException("familyPrefix must be a string.")
    ids = data.definition_ids(store, status, family, sort == "DESC")
    arns = [arn(config, f, r) for f, r in ids]
    chunk, token = page(arns, params, InvalidParameterException)
    out: dict[str, Any] = {"taskDefinitionArns": chunk}
    if token:
        out["nextToken"] = token
    return out


async def list_families(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    status = _status(params, ("ACTIVE", "INACTIVE", "ALL"))
    prefix = params.get("familyPrefix") or ""
    if not isinstance(prefix, str):
        raise InvalidParameterException("familyPrefix must be a string.")
    families = [
        f.name for f in data.families(store, prefix) if status == "ALL" or (status == "ACTIVE") == f.active
    ]
    chunk, token = page(families, params, InvalidParameterException)
    out: dict[str, Any] = {"families": chunk}
    if token:
        out["nextToken"] = token
    return out


async def deregister(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    family, revision = parse_ident(params.get("taskDefinition"))
    if revision is None:
        raise ClientException(
            "The specified task definition identifier is invalid. Specify a valid name or ARN and revision."
        )
    async with store.transaction() as tx:
        stored = data.definition(tx, family, revision)
        if stored is None:
            raise ClientException("The specified task definition does not exist.")
        if stored.status == "ACTIVE":
            data.set_definition_status(tx, family, revision, "INACTIVE")
            stored = data.definition(tx, family, revision)
    assert stored is not None
    return {"taskDefinition": _shape(config, stored)}


async def delete(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    """DeleteTaskDefinitions: INACTIVE revisions move to DELETE_IN_PROGRESS (kept, so that their
    revision numbers are never reused and running tasks still describe them)."""
    idents = params.get("taskDefinitions")
    if not isinstance(idents, list) or not 1 <= len(idents) <= 10:
        raise InvalidParameterException("taskDefinitions must list 1 to 10 task definitions.")
    done, failures = [], []
    async with store.transaction() as tx:
        for ident in idents:
            family, revision = parse_ident(ident)
            stored = None if revision is None else data.definition(tx, family, revision)
            if stored is None or revision is None:
                failures.append({"arn": str(ident), "reason": "TASK_DEFINITION_NOT_FOUND",
                                 "detail": "The specified task definition does not exist."})
                continue
            if stored.status == "ACTIVE":
                failures.append({
                    "arn": arn(config, family, revision), "reason": "TASK_DEFINITION_NOT_INACTIVE",
                    "detail": "Deregister the task definition before deleting it.",
                })
                continue
            data.set_definition_status(tx, family, revision, "DELETE_IN_PROGRESS")
            done.append((family, revision))
    out = []
    for family, revision in done:
        stored = data.definition(store, family, revision)
        assert stored is not None
        out.append(_shape(config, stored))
    return {"taskDefinitions": out, "failures": failures}


OPERATIONS = {
    "RegisterTaskDefinition": register,
    "DescribeTaskDefinition": describe,
    "ListTaskDefinitions": list_,
    "ListTaskDefinitionFamilies": list_families,
    "DeregisterTaskDefinition": deregister,
    "DeleteTaskDefinitions": delete,
}
