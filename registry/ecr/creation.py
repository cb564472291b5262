"""Repository creation templates: Create/Describe/Update/DeleteRepositoryCreationTemplate,
and the hook that applies a ``CREATE_ON_PUSH`` template to a repository a push creates.

Templates are one registry setting (``creation-templates``: prefix -> ECR's JSON of the
template), changed in one transaction each. :func:`on_create` runs inside the transaction of
the push that makes the repository (``Metadata.on_create``), so the first manifest of a
repository whose template says ``IMMUTABLE`` is already under it. The choice itself is
:func:`registry.ecr.templates.choose` (pure); :func:`templates_in` reads them for another
caller (the pull-through cache: ``choose(templates_in(store), name, PULL_THROUGH_CACHE)``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from dockyard.aws import paging
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from dockyard.store import Store, Tx
from registry.ecr import data
from registry.ecr.errors import TemplateAlreadyExistsException, TemplateNotFoundException
from registry.ecr.lifecycles import checked_rules
from registry.ecr.repositories import check_policy_text, encryption_of, merge_tags, mutability
from registry.ecr.templates import CREATE_ON_PUSH, PREFIX, Template, choose, settings_for

if TYPE_CHECKING:
    from registry.ecr.api import Ecr

__all__ = ["OPERATIONS", "SETTING", "on_create", "templates_in"]

SETTING = "creation-templates"
MAX_TEMPLATES = 100


def templates_in(store: Store | Tx) -> list[Template]:
    """Every stored template, by prefix (``store`` may be a transaction)."""
    raw = data.registry_setting(store, SETTING) or {}
    return [Template.from_json(raw[p]) for p in sorted(raw)]


def on_create(tx: Tx, name: str, now: float) -> None:
    """``Metadata.on_create``: give repository ``name``, just made by a push, the settings of
    the CREATE_ON_PUSH template that covers it (none: the defaults, nothing written)."""
    chosen = choose(templates_in(tx), name, CREATE_ON_PUSH)
    if chosen is not None:
        data.put_settings(tx, settings_for(chosen, name, now), now)


def _prefix(prefix: str) -> str:
    if not PREFIX.fullmatch(prefix):
        raise InvalidParameterException(
            f"Invalid parameter at 'prefix' failed to satisfy constraint: '{prefix[:256]}' must be ROOT or"
            " a repository namespace (lower-case letters, digits, '.', '_', '-', separated by '/')"
        )
    return prefix


def _template(params: dict[str, Any], current: Template | None, now: float) -> Template:
    """The template a Create (``current`` None) or Update request describes, checked."""
    prefix = _prefix(params["prefix"])
    applied = params.get("appliedFor", list(current.applied_for) if current else None)
    if not applied:
        raise InvalidParameterException(
            "Invalid parameter at 'appliedFor' failed to satisfy constraint: 'must name at least one of"
            " CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION'"
        )
    mode, filters = (
        mutability(params)
        if "imageTagMutability" in params or current is None
        else (current.image_tag_mutability, list(current.mutability_filters))
    )
    policy = params.get("repositoryPolicy", current.repository_policy if current else None)
    if policy:
        check_policy_text(policy, "repositoryPolicy")
    lifecycle = params.get("lifecyclePolicy", current.lifecycle_policy if current else None)
    if lifecycle:
        checked_rules(lifecycle)
    given = "encryptionConfiguration" in params or current is None
    encryption = encryption_of(params) if given or current is None else current.encryption
    return Template(
        prefix,
        tuple(dict.fromkeys(applied)),
        params.get("description", current.description if current else ""),
        mode,
        tuple(filters),
        encryption,
        policy or None,
        lifecycle or None,
        tuple(merge_tags(params["resourceTags"])) if "resourceTags" in params
        else (current.resource_tags if current else ()),
        params.get("customRoleArn", current.custom_role_arn if current else None) or None,
        current.created if current else now,
        now,
    )


def _not_found(ecr: Ecr, prefix: str) -> TemplateNotFoundException:
    return TemplateNotFoundException(
        f"The repository creation template with prefix '{prefix}' does not exist in the registry with id"
        f" '{ecr.account}'"
    )


async def create_repository_creation_template(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    template = _template(params, None, time.time())

    def add(current: dict[str, Any] | None) -> dict[str, Any]:
        current = dict(current or {})
        if template.prefix in current:
            raise TemplateAlreadyExistsException(
                f"The repository creation template with prefix '{template.prefix}' already exists in the"
                f" registry with id '{ecr.account}'"
            )
        if len(current) >= MAX_TEMPLATES:
            raise InvalidParameterException(f"a registry has at most {MAX_TEMPLATES} creation templates")
        current[template.prefix] = template.to_json()
        return current

    await data.change_registry_setting(ecr.store, SETTING, add)
    return {"registryId": ecr.account, "repositoryCreationTemplate": template.to_json()}


async def describe_repository_creation_templates(
    ecr: Ecr, call: Call, params: dict[str, Any]
) -> dict[str, Any]:
    found = templates_in(ecr.store)
    wanted = {_prefix(p) for p in params.get("prefixes") or []}
    if wanted:
        found = [t for t in found if t.prefix in wanted]
    page, token = paging.page(found, params, InvalidParameterException, default=100, maximum=1000)
    out: dict[str, Any] = {
        "registryId": ecr.account,
        "repositoryCreationTemplates": [t.to_json() for t in page],
    }
    if token:
        out["nextToken"] = token
    return out


async def update_repository_creation_template(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    updated: list[Template] = []

    def change(current: dict[str, Any] | None) -> dict[str, Any]:
        current = dict(current or {})
        if params["prefix"] not in current:
            raise _not_found(ecr, params["prefix"])
        template = _template(params, Template.from_json(current[params["prefix"]]), time.time())
        current[template.prefix] = template.to_json()
        updated.append(template)
        return current

    await data.change_registry_setting(ecr.store, SETTING, change)
    return {"registryId": ecr.account, "repositoryCreationTemplate": updated[0].to_json()}


async def delete_repository_creation_template(ecr: Ecr, call: Call, params: dict[str, Any]) -> dict[str, Any]:
    removed: list[dict[str, Any]] = []

    def drop(current: dict[str, Any] | None) -> dict[str, Any]:
        current = dict(current or {})
        if params["prefix"] not in current:
            raise _not_found(ecr, params["prefix"])
        removed.append(current.pop(params["prefix"]))
        return current

    await data.change_registry_setting(ecr.store, SETTING, drop)
    return {"registryId": ecr.account, "repositoryCreationTemplate": removed[0]}


OPERATIONS = {
    "CreateRepositoryCreationTemplate": (create_repository_creation_template, False),
    "DescribeRepositoryCreationTemplates": (describe_repository_creation_templates, True),
    "UpdateRepositoryCreationTemplate": (update_repository_creation_template, False),
    "DeleteRepositoryCreationTemplate": (delete_repository_creation_template, False),
}
