"""Repository policies (pure): ECR's resource policies, validated and evaluated.

A repository policy is an IAM policy whose statements name a ``Principal`` (``"*"``,
``{"AWS": "*"}``, ``{"AWS": ARN or [ARNs]}`` where an ARN is a user, a role, or the account
``arn:aws:iam::ACCOUNT:root``, or a bare 12-digit account id) and the ``ecr:`` actions it
allows or denies; ``Resource`` may be left out (it is the repository). Everything else is
:mod:`dockyard.iam.policy`'s grammar (``Effect``, ``Action``/``NotAction``, ``Condition``).
:func:`parse` refuses a bad document with a :class:`PolicyError` naming what is wrong.

:func:`decide` combines a caller's identity policies with a repository policy as AWS does
for a caller of the same account: an explicit ``Deny`` in either wins, otherwise an ``Allow``
in either is enough.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard import jsonbound
from dockyard.iam import policy as iam
from dockyard.iam.policy import PolicyError

__all__ = ["PolicyError", "RepositoryPolicy", "applicable", "decide", "parse", "user_actions"]

MAX_SIZE = 10240
_ARN = re.compile(r"^(\d{12}|\*|arn:aws:(iam|sts)::(\d{12}):[\w+=,.@/*-]+)$")


@dataclass(frozen=True)
class RepositoryPolicy:
    """A parsed repository policy: for each statement, who it names and the identity-style
    statement it is (``Resource: *``)."""

    text: str
    statements: tuple[tuple[tuple[str, ...], iam.Policy], ...]


def _principals(where: str, raw: Any) -> tuple[str, ...]:
    if raw == "*":
        return ("*",)
    if not isinstance(raw, dict) or set(raw) != {"AWS"}:
        raise PolicyError(f'{where}: Principal must be "*" or {{"AWS": ARN or list of ARNs}}')
    values = raw["AWS"] if isinstance(raw["AWS"], list) else [raw["AWS"]]
    if not values:
        raise PolicyError(f"{where}: Principal AWS must name at least one principal")
    for v in values:
        if not isinstance(v, str) or not _ARN.match(v):
            raise PolicyError(f"{where}: Principal {str(v)[:200]!r} is not an account id or IAM ARN")
    return tuple(values)


def parse(text: str) -> RepositoryPolicy:
    """The policy ``text`` holds; :class:`PolicyError` saying what is wrong otherwise."""
    if len(text.encode()) > MAX_SIZE:
        raise PolicyError(f"a repository policy is at most {MAX_SIZE} bytes")
    try:
        raw = jsonbound.loads(text, max_bytes=MAX_SIZE)
    except ValueError as e:
        raise PolicyError(f"not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise PolicyError("a policy must be a JSON object")
    unknown = sorted(set(raw) - {"Version", "Id", "Statement"})
    if unknown:
        raise PolicyError(f"unknown policy element {unknown[0]!r}")
    version = raw.get("Version", "2008-10-17")
    stmts = raw.get("Statement")
    if isinstance(stmts, dict):
        stmts = [stmts]
    if not isinstance(stmts, list) or not stmts:
        raise PolicyError("Statement must be an object or a non-empty list")
    out = []
    for i, stmt in enumerate(stmts):
        where = f"Statement[{i}]"
        if not isinstance(stmt, dict):
            raise PolicyError(f"{where} must be an object")
        if "NotPrincipal" in stmt:
            raise PolicyError(f"{where}: NotPrincipal is not supported in a repository policy")
        if "Principal" not in stmt:
            raise PolicyError(f"{where}: Principal is required in a repository policy")
        who = _principals(where, stmt["Principal"])
        body = {k: v for k, v in stmt.items() if k != "Principal"}
        if "Resource" not in body and "NotResource" not in body:
            body["Resource"] = "*"
        try:
            single = iam.parse({"Version": version, "Statement": [body]})
        except PolicyError as e:
            raise PolicyError(str(e).replace("Statement[0]", where, 1)) from None
        for a in single.statements[0].actions:
            if a != "*" and not a.lower().startswith("ecr:"):
                raise PolicyError(f"{where}: action {a!r} is not an ecr: action")
        out.append((who, single))
    return RepositoryPolicy(json.dumps(raw, indent=2), tuple(out))


def _names(who: Sequence[str], principal_arn: str, account: str) -> bool:
    for p in who:
        if p in ("*", account, f"arn:aws:iam::{account}:root") or p == principal_arn:
            return True
        if p.endswith("*") and principal_arn.startswith(p[:-1]):
            return True
    return False


def applicable(repo: RepositoryPolicy | None, principal_arn: str, account: str) -> list[iam.Policy]:
    """The statements of ``repo`` that name ``principal_arn``, as identity policies."""
    if repo is None:
        return []
    return [p for who, p in repo.statements if _names(who, principal_arn, account)]


def decide(
    identity: Sequence[iam.Policy] | None,
    repo: RepositoryPolicy | None,
    principal_arn: str,
    account: str,
    action: str,
    resource: str,
    context: dict[str, Any] | None = None,
) -> bool:
    """Whether ``action`` on ``resource`` is allowed. ``identity`` None is an administrator
    key: always allowed (repository policies bind limited keys only)."""
    if identity is None:
        return True
    statements = applicable(repo, principal_arn, account)
    request = iam.Request(action, (resource,), context or {})
    return iam.combine(identity, lambda _: statements, request).allowed


def user_actions(
    repo: RepositoryPolicy,
    principal_arn: str,
    account: str,
    resource: str,
    context: dict[str, Any],
    needs: Mapping[str, Sequence[str]],
    wanted: Iterable[str],
    granted: Iterable[str],
) -> tuple[str, ...]:
    """The registry actions (``pull``, ``push``, ``delete``; ``needs`` maps each to the ECR
    actions it needs) of ``wanted`` a registry user gets on repository ``resource`` when its
    own grants give ``granted``: an explicit ``Deny`` in ``repo`` of any needed action takes
    one away, an ``Allow`` of every needed action adds it (AWS's same-account rule)."""
    statements = applicable(repo, principal_arn, account)
    wanted, granted = set(wanted), set(granted)
    out = []
    for action, ecr_actions in needs.items():
        if action not in wanted:
            continue
        decisions = [iam.evaluate(statements, iam.Request(n, (resource,), context)) for n in ecr_actions]
        if any(d.explicit_deny for d in decisions):
            continue
        if action in granted or all(d.allowed for d in decisions):
            out.append(action)
    return tuple(out)
