"""ECR's pull-through cache rule operations: Create, Describe, Update, Delete and Validate.

Rules live in ``registry_pull_through_rules`` (:mod:`registry.ecr.data`); what they do at pull
time is :mod:`registry.pullthrough`. The model's patterns (prefix, ``credentialArn``), which the
protocol layer does not check, are checked by :mod:`registry.pullthrough.rules`. A
``credentialArn`` must name a secret in Dockyard's secret store (``SecretNotFoundException``)
holding ``{"username", "accessToken"}`` (``UnableToAccessSecretException`` otherwise, and when
no secret store is connected). ``ValidatePullThroughCacheRule`` really contacts the upstream
(``/v2/``, authenticated as a pull would be) and answers ``isValid`` with the ``failure``.
``customRoleArn`` is accepted and echoed (it names an IAM role for ECR upstreams; unused here).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dockyard.aws import paging
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from registry.ecr import data
from registry.ecr.errors import (
    PullThroughCacheRuleAlreadyExistsException,
    PullThroughCacheRuleNotFoundException,
    SecretNotFoundException,
    UnableToAccessSecretException,
    UnsupportedUpstreamRegistryException,
)
from registry.pullthrough.rules import (
    ROOT,
    CredentialsInvalid,
    Rule,
    RuleError,
    UnsupportedUpstream,
    check_credential_arn,
    check_prefix,
    credentials,
    normalize_url,
)

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS", "shape"]


def shape(ecr: Ecr, rule: Rule) -> dict[str, Any]:
    """A ``PullThroughCacheRule`` as ECR answers it."""
    out: dict[str, Any] = {
        "ecrRepositoryPrefix": rule.prefix,
        "upstreamRegistryUrl": rule.upstream_url,
        "createdAt": rule.created,
        "registryId": ecr.account,
        "upstreamRepositoryPrefix": rule.upstream_prefix,
    }
    for key, value in (
        ("credentialArn", rule.credential_arn),
        ("customRoleArn", rule.custom_role_arn),
        ("upstreamRegistry", rule.upstream_registry),
        ("updatedAt", rule.updated),
    ):
        if value is not None:
            out[key] = value
    return out


def _checked(fn: Any, *args: Any) -> Any:
    try:
        return fn(*args)
    except UnsupportedUpstream as exc:
        raise UnsupportedUpstreamRegistryException(str(exc)) from None
    except RuleError as exc:
        raise InvalidParameterException(str(exc)) from None


def _not_found(ecr: Ecr, prefix: str) -> PullThroughCacheRuleNotFoundException:
    return PullThroughCacheRuleNotFoundException(
        f"The pull through cache rule with prefix '{prefix}' does not exist in the registry with id"
        f" '{ecr.account}'"
    )


def _found(ecr: Ecr, prefix: str) -> Rule:
    rule = data.rule(ecr.store, prefix)
    if rule is None:
        raise _not_found(ecr, prefix)
    return rule


def _check_secret(ecr: Ecr, arn: str) -> None:
    """The secret ``arn`` names exists and holds the credentials ECR expects."""
    _checked(check_credential_arn, arn)
    lookup = ecr.registry.pull_through.secrets if ecr.registry.pull_through is not None else None
    if lookup is None:
        raise UnableToAccessSecretException(
            f"The secret '{arn}' cannot be accessed: no secret store is connected"
        )
    value = lookup(arn)
    if value is None:
        raise SecretNotFoundException(f"The secret '{arn}' does not exist in Dockyard's secret store")
    try:
        credentials(value)
    except CredentialsInvalid as exc:
        raise UnableToAccessSecretException(f"The secret '{arn}' cannot be used: {exc}") from None


async def create_rule(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ecr.check_registry(params)
    prefix = _checked(check_prefix, params.get("ecrRepositoryPrefix"))
    url = params.get("upstreamRegistryUrl", "")
    _checked(normalize_url, url)
    upstream_prefix = params.get("upstreamRepositoryPrefix")
    if upstream_prefix is not None:
        upstream_prefix = _checked(check_prefix, upstream_prefix, "upstreamRepositoryPrefix")
    arn = params.get("credentialArn")
    if arn is not None:
        _check_secret(ecr, arn)
    rule = Rule(
        prefix,
        url.strip().rstrip("/"),
        time.time(),
        params.get("upstreamRegistry"),
        arn,
        params.get("customRoleArn"),
        upstream_prefix or ROOT,
    )
    if not await data.create_rule(ecr.store, rule):
        raise PullThroughCacheRuleAlreadyExistsException(
            f"A pull through cache rule with prefix '{prefix}' already exists in the registry with id"
            f" '{ecr.account}'"
        )
    out = shape(ecr, rule)
    out.pop("updatedAt", None)
    return out


async def describe_rules(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ecr.check_registry(params)
    prefixes = params.get("ecrRepositoryPrefixes")
    if prefixes:
        found = [_found(ecr, _checked(check_prefix, p, "ecrRepositoryPrefixes")) for p in prefixes]
    else:
        found = data.rules(ecr.store)
    page, token = paging.page(found, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {"pullThroughCacheRules": [shape(ecr, r) for r in page]}
    if token:
        out["nextToken"] = token
    return out


async def update_rule(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ecr.check_registry(params)
    prefix = _checked(check_prefix, params.get("ecrRepositoryPrefix"))
    _found(ecr, prefix)
    changes: dict[str, Any] = {}
    if "credentialArn" in params:
        _check_secret(ecr, params["credentialArn"])
        changes["credential_arn"] = params["credentialArn"]
    if "customRoleArn" in params:
        changes["custom_role_arn"] = params["customRoleArn"] or None
    rule = await data.update_rule(ecr.store, prefix, **changes)
    if rule is None:
        raise _not_found(ecr, prefix)
    out = shape(ecr, rule)
    for key in ("upstreamRegistryUrl", "createdAt", "upstreamRegistry"):
        out.pop(key, None)
    return out


async def delete_rule(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ecr.check_registry(params)
    prefix = _checked(check_prefix, params.get("ecrRepositoryPrefix"))
    rule = await data.delete_rule(ecr.store, prefix)
    if rule is None:
        raise _not_found(ecr, prefix)
    out = shape(ecr, rule)
    for key in ("upstreamRegistry", "updatedAt"):
        out.pop(key, None)
    return out


async def validate_rule(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    ecr.check_registry(params)
    rule = _found(ecr, _checked(check_prefix, params.get("ecrRepositoryPrefix")))
    cache = ecr.registry.pull_through
    failure = (
        "the registry is read-only: nothing is pulled through"
        if cache is None
        else await cache.validate(rule)
    )
    out = shape(ecr, rule)
    for key in ("upstreamRegistry", "updatedAt", "createdAt"):
        out.pop(key, None)
    out["isValid"] = failure is None
    if failure is not None:
        out["failure"] = failure
    return out


OPERATIONS = {
    "CreatePullThroughCacheRule": (create_rule, False),
    "DescribePullThroughCacheRules": (describe_rules, True),
    "UpdatePullThroughCacheRule": (update_rule, False),
    "DeletePullThroughCacheRule": (delete_rule, False),
    "ValidatePullThroughCacheRule": (validate_rule, False),
}
