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
* :func:`arn` builds the ARN; :func:`parse_ident` splits an identifier.
* Tags: :mod:`runner.tags` serves TagResource and friends.
* Changes are published on topic ``ecs/taskdef`` (key ``family:revision``).
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from typing import Any

from dockyard.aws.paging import page
from dockyard.config import Config
from dockyard.store import Migration, Store
from runner import query, taskdef
from runner.clusters import validate_tags
from runner.errors import ClientException, InvalidParameterException
from runner.taskdef import TaskDefinition

__all__ = ["arn", "load", "parse_ident"]

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

TOPIC = "ecs/taskdef"
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


def _row(store: Store, ident: Any) -> Any:
    family, revision = parse_ident(ident)
    if revision is None:
        row = store.query_one(
            "SELECT * FROM task_definitions WHERE family = ? AND status = 'ACTIVE'"
            " ORDER BY revision DESC LIMIT 1",
            (family,),
        )
    else:
        row = store.query_one(
            "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
        )
    if row is None:
        raise ClientException(NOT_FOUND)
    return row


def _model(config: Config, row: Any) -> TaskDefinition:
    td = taskdef.parse(json.loads(row["spec"]))
    return replace(td, revision=row["revision"], status=row["status"],
                   arn=arn(config, row["family"], row["revision"]))


def load(store: Store, config: Config, ident: Any) -> TaskDefinition:
    """The stored definition for ``ident`` (see module docstring)."""
    return _model(config, _row(store, ident))


def definition(store: Store, config: Config, ident: Any) -> tuple[TaskDefinition, dict[str, Any]]:
    """The stored definition for ``ident`` as the validated model and as its AWS shape (what
    DescribeTaskDefinition answers; a task keeps it as its snapshot), from one read.
    Raises ClientException if there is none."""
    row = _row(store, ident)
    return _model(config, row), _shape(config, row)


def _shape(config: Config, row: Any) -> dict[str, Any]:
    td = _model(config, row)
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
    out["registeredAt"] = row["registered_at"]
    if row["deregistered_at"] is not None:
        out["deregisteredAt"] = row["deregistered_at"]
    out["registeredBy"] = row["registered_by"]
    return out


async def register(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    tags = validate_tags(params.get("tags"))
    td = taskdef.parse(params, query.validate)
    spec = json.dumps(taskdef.render(td), separators=(",", ":"))
    by = f"arn:aws:iam::{config.account_id}:root"
    async with store.transaction() as tx:
        last = tx.query_one("SELECT MAX(revision) FROM task_definitions WHERE family = ?", (td.family,))
        revision = (last[0] or 0) + 1
        tx.execute(
            "INSERT INTO task_definitions"
            " (family, revision, status, spec, registered_at, registered_by, tags)"
            " VALUES (?, ?, 'ACTIVE', ?, ?, ?, ?)",
            (td.family, revision, spec, time.time(), by, json.dumps(tags)),
        )
        tx.changed(TOPIC, f"{td.family}:{revision}")
        row = tx.query_one(
            "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (td.family, revision)
        )
    out: dict[str, Any] = {"taskDefinition": _shape(config, row)}
    if tags:
        out["tags"] = tags
    return out


async def describe(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
    if "taskDefinition" not in params:
        raise ClientException("taskDefinition is required.")
    row = _row(store, params["taskDefinition"])
    out: dict[str, Any] = {"taskDefinition": _shape(config, row)}
    include = params.get("include") or []
    if not isinstance(include, list) or any(i != "TAGS" for i in include):
        raise InvalidParameterException("include may only contain TAGS.")
    if "TAGS" in include:
        out["tags"] = json.loads(row["tags"])
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
    sql = "SELECT family, revision FROM task_definitions WHERE status = ?"
    args: list[Any] = [status]
    family = params.get("familyPrefix")
    if family:
        if not isinstance(family, str):
            raise InvalidParameterException("familyPrefix must be a string.")
        sql += " AND family = ?"
        args.append(family)
    sql += f" ORDER BY family {sort}, revision {sort}"
    arns = [arn(config, r["family"], r["revision"]) for r in store.query(sql, args)]
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
    rows = store.query(
        "SELECT family, SUM(status = 'ACTIVE') AS active FROM task_definitions"
        " WHERE substr(family, 1, ?) = ? GROUP BY family ORDER BY family",
        (len(prefix), prefix),
    )
    families = [
        r["family"] for r in rows
        if status == "ALL" or (status == "ACTIVE") == bool(r["active"])
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
        row = tx.query_one(
            "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
        )
        if row is None:
            raise ClientException("The specified task definition does not exist.")
        if row["status"] == "ACTIVE":
            tx.execute(
                "UPDATE task_definitions SET status = 'INACTIVE', deregistered_at = ?"
                " WHERE family = ? AND revision = ?",
                (time.time(), family, revision),
            )
            tx.changed(TOPIC, f"{family}:{revision}")
            row = tx.query_one(
                "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
            )
    return {"taskDefinition": _shape(config, row)}


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
            row = None if revision is None else tx.query_one(
                "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
            )
            if row is None:
                failures.append({"arn": str(ident), "reason": "TASK_DEFINITION_NOT_FOUND",
                                 "detail": "The specified task definition does not exist."})
                continue
            if row["status"] == "ACTIVE":
                failures.append({
                    "arn": arn(config, family, revision), "reason": "TASK_DEFINITION_NOT_INACTIVE",
                    "detail": "Deregister the task definition before deleting it.",
                })
                continue
            tx.execute(
                "UPDATE task_definitions SET status = 'DELETE_IN_PROGRESS' WHERE family = ? AND revision = ?",
                (family, revision),
            )
            tx.changed(TOPIC, f"{family}:{revision}")
            done.append((family, revision))
    out = []
    for family, revision in done:
        row = store.query_one(
            "SELECT * FROM task_definitions WHERE family = ? AND revision = ?", (family, revision)
        )
        out.append(_shape(config, row))
    return {"taskDefinitions": out, "failures": failures}


OPERATIONS = {
    "RegisterTaskDefinition": register,
    "DescribeTaskDefinition": describe,
    "ListTaskDefinitions": list_,
    "ListTaskDefinitionFamilies": list_families,
    "DeregisterTaskDefinition": deregister,
    "DeleteTaskDefinitions": delete,
}
