"""IAM JSON policies: parse a document, evaluate a request against it (pure).

A policy is ``{"Version": "2012-10-17", "Statement": [...]}`` (``Statement`` may be one
object). Each statement has ``Effect`` (``Allow`` or ``Deny``), exactly one of ``Action`` and
``NotAction`` (``ecs:Describe*``; matched without regard to case), exactly one of ``Resource``
and ``NotResource`` (ARNs with ``*`` and ``?``, see :func:`dockyard.iam.patterns.arn_matches`)
and an optional ``Condition`` (:mod:`dockyard.iam.conditions`); ``Sid`` is kept, ``Principal``
is refused (this is an identity policy).

:func:`evaluate` follows AWS's evaluation logic for identity-based policies: a request is
allowed only if some ``Allow`` statement matches it and no ``Deny`` statement does (an explicit
deny wins; nothing matching is an implicit deny). A request on several resources is allowed
only if every one of them is.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard import jsonbound
from dockyard.iam import conditions
from dockyard.iam.conditions import Condition
from dockyard.iam.patterns import arn_matches, glob

__all__ = ["MAX_SIZE", "READ_ONLY", "Decision", "Policy", "PolicyError", "Request", "Statement",
           "combine", "evaluate", "parse"]

VERSIONS = ("2012-10-17", "2008-10-17")
MAX_SIZE = 10 * 1024
_STATEMENT_KEYS = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Condition"}

READ_ONLY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DockyardReadOnly",
            "Effect": "Allow",
            "Action": [
                f"{service}:{verb}*"
                for service in ("ecs", "servicediscovery", "ecr", "dockyard", "logs")
                for verb in ("Describe", "List", "Get", "Discover")
            ] + ["logs:FilterLogEvents"],
            "Resource": "*",
        }
    ],
}
"""The ``--read-only`` preset: every Describe*, List*, Get* and Discover* action (and CloudWatch
Logs' FilterLogEvents, a read)."""


class PolicyError(ValueError):
    """A policy document that is not valid (the message says where)."""


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: tuple[Condition, ...] = ()
    not_action: bool = False
    not_resource: bool = False
    sid: str = ""


@dataclass(frozen=True)
class Policy:
    version: str
    statements: tuple[Statement, ...]
    document: str  # the JSON it was parsed from, normalised

    @property
    def variables(self) -> bool:
        """Whether policy variables (``${aws:username}``) are replaced (version 2012-10-17)."""
        return self.version == "2012-10-17"


@dataclass(frozen=True)
class Request:
    """What is asked: one action on one or more resources, with the request's condition keys
    (names lower-cased)."""

    action: str
    resources: tuple[str, ...] = ("*",)
    context: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    explicit_deny: bool = False
    resource: str = ""  # the first resource refused
    by_resource_policy: bool = False  # the explicit deny came from a resource-based policy


def _strings(where: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) and v for v in items):
        raise PolicyError(f"{where} must be a non-empty string or list of non-empty strings")
    return tuple(items)


def _condition_values(where: str, value: Any) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    out = []
    for v in items:
        if isinstance(v, bool):
            out.append("true" if v else "false")
        elif isinstance(v, str | int | float):
            out.append(str(v))
        else:
            raise PolicyError(f"{where}: condition values must be strings, numbers or booleans")
    if not out:
        raise PolicyError(f"{where}: a condition needs at least one value")
    return tuple(out)


def _conditions(where: str, raw: Any) -> tuple[Condition, ...]:
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: Condition must be an object of operators")
    out = []
    for op_name, block in raw.items():
        try:
            qualifier, op, if_exists = conditions.parse_operator(op_name)
        except ValueError as e:
            raise PolicyError(f"{where}: {e}") from None
        if not isinstance(block, dict) or not block:
            raise PolicyError(f"{where}: Condition {op_name} must map condition keys to values")
        for key, values in block.items():
            if not isinstance(key, str) or not key:
                raise PolicyError(f"{where}: Condition {op_name} has an empty key")
            vals = _condition_values(f"{where} {op_name} {key}", values)
            if op == "Null" and any(v.lower() not in ("true", "false") for v in vals):
                raise PolicyError(f"{where}: Null takes true or false")
            out.append(Condition(op, key.lower(), vals, if_exists, qualifier))
    return tuple(out)


def _statement(i: int, raw: Any) -> Statement:
    where = f"Statement[{i}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object")
    if "Principal" in raw or "NotPrincipal" in raw:
        raise PolicyError(f"{where}: Principal is not allowed in an identity policy")
    unknown = sorted(set(raw) - _STATEMENT_KEYS)
    if unknown:
        raise PolicyError(f"{where}: unknown element {unknown[0]!r}")
    effect = raw.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"{where}: Effect must be Allow or Deny")
    if ("Action" in raw) == ("NotAction" in raw):
        raise PolicyError(f"{where}: exactly one of Action and NotAction is required")
    if ("Resource" in raw) == ("NotResource" in raw):
        raise PolicyError(f"{where}: exactly one of Resource and NotResource is required")
    action_key = "Action" if "Action" in raw else "NotAction"
    resource_key = "Resource" if "Resource" in raw else "NotResource"
    actions = _strings(f"{where}: {action_key}", raw[action_key])
    for a in actions:
        if a != "*" and ":" not in a:
            raise PolicyError(f"{where}: action {a!r} must be service:Action (or *)")
    sid = raw.get("Sid", "")
    if not isinstance(sid, str):
        raise PolicyError(f"{where}: Sid must be a string")
    return Statement(
        effect=effect,
        actions=actions,
        resources=_strings(f"{where}: {resource_key}", raw[resource_key]),
        conditions=_conditions(where, raw["Condition"]) if "Condition" in raw else (),
        not_action=action_key == "NotAction",
        not_resource=resource_key == "NotResource",
        sid=sid,
    )


def parse(document: str | bytes | Mapping[str, Any]) -> Policy:
    """The policy of a JSON document (text or already decoded); :class:`PolicyError` saying
    what is wrong otherwise."""
    if isinstance(document, str | bytes):
        if len(document) > MAX_SIZE:
            raise PolicyError(f"a policy is at most {MAX_SIZE} bytes")
        try:
            raw = jsonbound.loads(document, max_bytes=MAX_SIZE)
        except ValueError as e:
            raise PolicyError(f"not valid JSON: {e}") from None
    else:
        raw = document
    if not isinstance(raw, dict):
        raise PolicyError("a policy must be a JSON object")
    unknown = sorted(set(raw) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"unknown policy element {unknown[0]!r}")
    version = raw.get("Version", "2008-10-17")
    if version not in VERSIONS:
        raise PolicyError(f"Version must be one of {', '.join(VERSIONS)}")
    stmts = raw.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise PolicyError("Statement must be an object or a non-empty list")
    statements = tuple(_statement(i, s) for i, s in enumerate(stmts))
    return Policy(str(version), statements, json.dumps(raw, separators=(",", ":"), sort_keys=True))


def _action_matches(patterns: Iterable[str], action: str) -> bool:
    for p in patterns:
        rx = glob(p, None, ignore_case=True)
        if rx is not None and rx.fullmatch(action):
            return True
    return False


def _matches(stmt: Statement, action: str, resource: str, ctx: Mapping[str, Any], variables: bool) -> bool:
    if _action_matches(stmt.actions, action) == stmt.not_action:
        return False
    subst = ctx if variables else None
    if any(arn_matches(p, resource, subst) for p in stmt.resources) == stmt.not_resource:
        return False
    return all(conditions.holds(c, ctx, variables) for c in stmt.conditions)


def evaluate(policies: Sequence[Policy], request: Request) -> Decision:
    """AWS's decision for ``request`` under ``policies`` (all of them apply): explicit deny
    wins, then an allow, else an implicit deny. Every resource must be allowed."""
    ctx = request.context or {}
    resources = request.resources or ("*",)
    refused = ""
    for resource in resources:
        allowed = False
        for policy in policies:
            for stmt in policy.statements:
                if not _matches(stmt, request.action, resource, ctx, policy.variables):
                    continue
                if stmt.effect == "Deny":
                    return Decision(False, True, resource)
                allowed = True
        if not allowed and not refused:
            refused = resource
    return Decision(False, False, refused) if refused else Decision(True)


def combine(
    identity: Sequence[Policy],
    resource_policies: Callable[[str], Sequence[Policy]],
    request: Request,
) -> Decision:
    """AWS's decision for a caller of the resource's own account under its identity policies
    and each resource's resource-based policy (``resource_policies(arn)``: the statements of
    that resource's policy naming the caller, as identity-style policies): for each resource,
    an explicit ``Deny`` in either wins, otherwise an ``Allow`` in either is enough."""
    refused = ""
    for resource in request.resources or ("*",):
        one = Request(request.action, (resource,), request.context)
        mine = evaluate(identity, one)
        if mine.explicit_deny:
            return mine
        theirs = evaluate(resource_policies(resource), one) if resource != "*" else Decision(False)
        if theirs.explicit_deny:
            return Decision(False, True, resource, by_resource_policy=True)
        if not (mine.allowed or theirs.allowed) and not refused:
            refused = resource
    return Decision(False, False, refused) if refused else Decision(True)
