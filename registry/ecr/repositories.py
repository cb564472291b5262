"""ECR repository operations: create, describe, delete, settings, policies, tags, scanning
configuration and the registry login token.

Scanning settings are stored and answered (``scanOnPush``, the registry's scanning rules);
:mod:`registry.ecr.scans` reads them to decide which pushes are scanned.
"""

from __future__ import annotations

import base64
import re
from typing import TYPE_CHECKING, Any

from dockyard.aws import paging
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from dockyard.iam.authorize import caller
from registry import immutability
from registry.ecr import data
from registry.ecr.errors import (
    InvalidTagParameterException,
    RepositoryAlreadyExistsException,
    RepositoryNotEmptyException,
    RepositoryPolicyNotFoundException,
    too_many_tags,
)
from registry.ecr.policy import PolicyError
from registry.ecr.policy import parse as parse_policy
from registry.metadata import RepositoryNotEmpty
from registry.reference import is_valid_name

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS", "check_policy_text", "encryption_of", "merge_tags", "mutability", "shape"]

MAX_TAGS = 50
SCANNING = "scanning"
_ARN = re.compile(r"^arn:aws:ecr:([a-z0-9-]+):(\d{12}):repository/(.+)$")


def shape(ecr: Ecr, s: data.Settings) -> dict[str, Any]:
    """A ``Repository`` as ECR answers it."""
    out: dict[str, Any] = {
        "repositoryArn": ecr.arn(s.name),
        "registryId": ecr.account,
        "repositoryName": s.name,
        "repositoryUri": ecr.uri(s.name),
        "createdAt": s.created,
        "imageTagMutability": s.tag_mutability,
        "imageScanningConfiguration": {"scanOnPush": s.scan_on_push},
        "encryptionConfiguration": s.encryption,
    }
    if s.mutability_filters:
        out["imageTagMutabilityExclusionFilters"] = s.mutability_filters
    return out


def mutability(params: dict[str, Any]) -> tuple[str, list[dict[str, str]]]:
    mode = params.get("imageTagMutability", immutability.MUTABLE)
    filters = params.get("imageTagMutabilityExclusionFilters") or []
    problem = immutability.check_filters(mode, filters)
    if problem is not None:
        raise InvalidParameterException(problem)
    return mode, [{"filterType": f["filterType"], "filter": f["filter"]} for f in filters]


def merge_tags(raw: Any, existing: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """``existing`` with the tags ``raw`` sets (a key once; at most 50 in all)."""
    merged = {t["Key"]: t["Value"] for t in existing or []}
    for t in raw or []:
        key, value = t.get("Key"), t.get("Value", "")
        if not isinstance(key, str) or not key or key.lower().startswith("aws:"):
            raise InvalidTagParameterException(
                f"Invalid tag key {str(key)[:128]!r}: keys are 1-128 characters, not starting with aws:"
            )
        merged[key] = value if isinstance(value, str) else ""
    if len(merged) > MAX_TAGS:
        raise too_many_tags(f"A repository can have at most {MAX_TAGS} tags")
    return [{"Key": k, "Value": v} for k, v in merged.items()]


def encryption_of(params: dict[str, Any]) -> dict[str, str]:
    """The request's ``encryptionConfiguration`` (default AES256), checked."""
    encryption = dict(params.get("encryptionConfiguration") or {"encryptionType": "AES256"})
    if encryption.get("encryptionType") == "AES256" and encryption.get("kmsKey"):
        raise InvalidParameterException("kmsKey can only be given with encryptionType KMS or KMS_DSSE")
    return encryption


def check_policy_text(text: str, member: str = "PolicyText") -> None:
    """Refuse (InvalidParameterException naming what is wrong) a bad repository policy."""
    try:
        parse_policy(text)
    except PolicyError as e:
        raise InvalidParameterException(
            f"Invalid parameter at '{member}' failed to satisfy constraint: 'Invalid repository policy"
            f" provided: {e}'"
        ) from None


async def create_repository(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    name = ecr.name(params)
    mode, filters = mutability(params)
    encryption = encryption_of(params)
    scanning = params.get("imageScanningConfiguration") or {}
    settings = data.Settings(
        name,
        0.0,
        mode,
        filters,
        bool(scanning.get("scanOnPush", False)),
        encryption,
        None,
        merge_tags(params.get("tags")),
    )
    created = await data.create(ecr.store, settings)
    if created is None:
        raise RepositoryAlreadyExistsException(
            f"The repository with name '{name}' already exists in the registry with id '{ecr.account}'"
        )
    return {"repository": shape(ecr, created)}


async def describe_repositories(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    names = params.get("repositoryNames")
    if names:
        found = []
        for name in names:
            found.append(ecr.repository(call, {**params, "repositoryName": name}))
    else:
        found = data.all_settings(ecr.store)
    page, token = paging.page(found, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {"repositories": [shape(ecr, s) for s in page]}
    if token:
        out["nextToken"] = token
    return out


async def delete_repository(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    try:
        removed = await ecr.registry.meta.delete_repository(repo.name, force=bool(params.get("force")))
    except RepositoryNotEmpty:
        raise RepositoryNotEmptyException(
            f"The repository with name '{repo.name}' in registry with id '{ecr.account}' cannot be deleted"
            " because it still contains images"
        ) from None
    if removed is None:
        raise ecr.not_found(repo.name)
    return {"repository": shape(ecr, repo)}


async def put_image_tag_mutability(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    mode, filters = mutability(params)
    await data.update(ecr.store, repo.name, tag_mutability=mode, mutability_filters=filters)
    out: dict[str, Any] = {"registryId": ecr.account, "repositoryName": repo.name, "imageTagMutability": mode}
    if filters:
        out["imageTagMutabilityExclusionFilters"] = filters
    return out


async def put_image_scanning_configuration(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    scan = bool((params.get("imageScanningConfiguration") or {}).get("scanOnPush", False))
    await data.update(ecr.store, repo.name, scan_on_push=scan)
    return {
        "registryId": ecr.account,
        "repositoryName": repo.name,
        "imageScanningConfiguration": {"scanOnPush": scan},
    }


# -- repository policies ------------------------------------------------------------------
async def set_repository_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    text = params.get("policyText", "")
    check_policy_text(text)
    await data.update(ecr.store, repo.name, policy=text)
    return {"registryId": ecr.account, "repositoryName": repo.name, "policyText": text}


def _policy_of(ecr: Ecr, repo: data.Settings) -> str:
    if repo.policy is None:
        raise RepositoryPolicyNotFoundException(
            f"Repository policy does not exist for the repository with name '{repo.name}' in the registry"
            f" with id '{ecr.account}'"
        )
    return repo.policy


async def get_repository_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    return {"registryId": ecr.account, "repositoryName": repo.name, "policyText": _policy_of(ecr, repo)}


async def delete_repository_policy(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = ecr.repository(call, params)
    text = _policy_of(ecr, repo)
    await data.update(ecr.store, repo.name, policy=None)
    return {"registryId": ecr.account, "repositoryName": repo.name, "policyText": text}


# -- tags -----------------------------------------------------------------------------------
def _by_arn(ecr: Ecr, call: Call, params: dict[str, Any]) -> data.Settings:
    arn = params.get("resourceArn", "")
    m = _ARN.match(arn)
    if m is None or not is_valid_name(m.group(3)):
        raise InvalidParameterException(
            f"Invalid parameter at 'resourceArn' failed to satisfy constraint: '{arn[:300]}' is not a"
            " repository ARN (arn:aws:ecr:REGION:ACCOUNT:repository/NAME)"
        )
    if m.group(2) != ecr.account:
        raise ecr.not_found(m.group(3))
    return ecr.repository(call, {"repositoryName": m.group(3)})


async def tag_resource(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = _by_arn(ecr, call, params)
    await data.update(ecr.store, repo.name, tags=merge_tags(params.get("tags"), repo.tags))
    return {}


async def untag_resource(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    repo = _by_arn(ecr, call, params)
    drop = set(params.get("tagKeys") or [])
    await data.update(ecr.store, repo.name, tags=[t for t in repo.tags if t["Key"] not in drop])
    return {}


async def list_tags_for_resource(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"tags": _by_arn(ecr, call, params).tags}


# -- registry login -------------------------------------------------------------------------
async def get_authorization_token(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    key_id = call.credential.access_key if call.credential is not None else ""
    who = caller(call)
    role = ""
    if who is not None and who[0].kind == "AssumedRole":
        role = who[0].arn.split(":assumed-role/", 1)[1].split("/", 1)[0]
    password, expires = ecr.signer.login_password(key_id, role)
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    return {
        "authorizationData": [
            {
                "authorizationToken": token,
                "expiresAt": expires,
                "proxyEndpoint": f"{ecr.scheme}://{ecr.registry_address}",
            }
        ]
    }


# -- scanning configuration (registry.ecr.api.wants_scan reads it) ---------------------------
def _registry_scanning(ecr: Ecr) -> dict[str, Any]:
    return data.registry_setting(ecr.store, SCANNING) or {"scanType": "BASIC", "rules": []}


async def put_registry_scanning_configuration(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    rules = params.get("rules") or []
    for rule in rules:
        for f in rule.get("repositoryFilters") or []:
            if not re.fullmatch(r"[a-z0-9*](?:[._\-/a-z0-9*]?[a-z0-9*]+)*", f.get("filter", "")):
                raise InvalidParameterException(
                    f"repository filter {f.get('filter', '')[:256]!r} is not valid"
                )
    config = {"scanType": params.get("scanType", "BASIC"), "rules": rules}
    await data.put_registry_setting(ecr.store, SCANNING, config)
    return {"registryScanningConfiguration": config}


async def get_registry_scanning_configuration(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    return {"registryId": ecr.account, "scanningConfiguration": _registry_scanning(ecr)}


def scan_frequency(registry_config: dict[str, Any], repo: data.Settings) -> tuple[str, list[dict]]:
    """How ``repo`` is scanned: the first registry rule whose filter matches it (continuous
    before on-push), else ``SCAN_ON_PUSH`` when the repository asks, else ``MANUAL``."""
    from registry.immutability import wildcard

    for frequency in ("CONTINUOUS_SCAN", "SCAN_ON_PUSH"):
        for rule in registry_config.get("rules", []):
            if rule.get("scanFrequency") != frequency:
                continue
            matched = [
                f for f in rule.get("repositoryFilters", []) if wildcard(f["filter"]).fullmatch(repo.name)
            ]
            if matched:
                return frequency, matched
    return ("SCAN_ON_PUSH" if repo.scan_on_push else "MANUAL"), []


async def batch_get_repository_scanning_configuration(
    ecr: Ecr, call: Call, params: dict[str, Any]
) -> dict[str, Any]:
    config = _registry_scanning(ecr)
    found, failures = [], []
    for name in params.get("repositoryNames") or []:
        repo = data.settings(ecr.store, ecr.name({"repositoryName": name}))
        if repo is None:
            failures.append(
                {
                    "repositoryName": name,
                    "failureCode": "REPOSITORY_NOT_FOUND",
                    "failureReason": "REPOSITORY_NOT_FOUND",
                }
            )
            continue
        frequency, filters = scan_frequency(config, repo)
        found.append(
            {
                "repositoryArn": ecr.arn(name),
                "repositoryName": name,
                "scanOnPush": repo.scan_on_push or frequency != "MANUAL",
                "scanFrequency": frequency,
                "appliedScanFilters": filters,
            }
        )
    return {"scanningConfigurations": found, "failures": failures}


OPERATIONS = {
    "CreateRepository": (create_repository, False),
    "DescribeRepositories": (describe_repositories, True),
    "DeleteRepository": (delete_repository, False),
    "PutImageTagMutability": (put_image_tag_mutability, False),
    "PutImageScanningConfiguration": (put_image_scanning_configuration, False),
    "SetRepositoryPolicy": (set_repository_policy, False),
    "GetRepositoryPolicy": (get_repository_policy, True),
    "DeleteRepositoryPolicy": (delete_repository_policy, False),
    "TagResource": (tag_resource, False),
    "UntagResource": (untag_resource, False),
    "ListTagsForResource": (list_tags_for_resource, True),
    "GetAuthorizationToken": (get_authorization_token, True),
    "PutRegistryScanningConfiguration": (put_registry_scanning_configuration, False),
    "GetRegistryScanningConfiguration": (get_registry_scanning_configuration, True),
    "BatchGetRepositoryScanningConfiguration": (batch_get_repository_scanning_configuration, True),
}
