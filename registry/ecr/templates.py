"""Repository creation templates (pure): which template a new repository takes, and the
settings it gives.

A template (ECR's ``RepositoryCreationTemplate``) names a ``prefix`` and what it is
``appliedFor`` (:data:`CREATE_ON_PUSH`, :data:`PULL_THROUGH_CACHE`, :data:`REPLICATION`).
A prefix ``prod`` (or ``prod/``) covers the repositories under ``prod/``; :data:`ROOT` covers
every repository no other template covers. :func:`choose` is the decision: the longest
covering prefix among the templates applied for that kind of creation. :func:`settings_for`
turns the chosen template into the new repository's settings (tag mutability and its
exclusion filters, encryption, repository policy, lifecycle policy, tags).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from registry.ecr import data

__all__ = [
    "APPLIED_FOR",
    "CREATE_ON_PUSH",
    "PREFIX",
    "PULL_THROUGH_CACHE",
    "REPLICATION",
    "ROOT",
    "Template",
    "choose",
    "covers",
    "settings_for",
]

ROOT = "ROOT"
CREATE_ON_PUSH = "CREATE_ON_PUSH"
PULL_THROUGH_CACHE = "PULL_THROUGH_CACHE"
REPLICATION = "REPLICATION"
APPLIED_FOR = (CREATE_ON_PUSH, PULL_THROUGH_CACHE, REPLICATION)
# ECR's model: the ``Prefix`` shape's pattern (the protocol layer checks lengths, not patterns)
PREFIX = re.compile(r"([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*/?|ROOT)")


@dataclass(frozen=True)
class Template:
    """One repository creation template, as ECR's API names its fields."""

    prefix: str
    applied_for: tuple[str, ...]
    description: str = ""
    image_tag_mutability: str = "MUTABLE"
    mutability_filters: tuple[dict[str, str], ...] = ()
    encryption: dict[str, str] = field(default_factory=lambda: {"encryptionType": "AES256"})
    repository_policy: str | None = None
    lifecycle_policy: str | None = None
    resource_tags: tuple[dict[str, str], ...] = ()
    custom_role_arn: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The template as ECR answers it (``RepositoryCreationTemplate``); also how it is stored."""
        out: dict[str, Any] = {
            "prefix": self.prefix,
            "description": self.description,
            "encryptionConfiguration": dict(self.encryption),
            "resourceTags": [dict(t) for t in self.resource_tags],
            "imageTagMutability": self.image_tag_mutability,
            "appliedFor": list(self.applied_for),
            "createdAt": self.created,
            "updatedAt": self.updated,
        }
        if self.mutability_filters:
            out["imageTagMutabilityExclusionFilters"] = [dict(f) for f in self.mutability_filters]
        if self.repository_policy is not None:
            out["repositoryPolicy"] = self.repository_policy
        if self.lifecycle_policy is not None:
            out["lifecyclePolicy"] = self.lifecycle_policy
        if self.custom_role_arn is not None:
            out["customRoleArn"] = self.custom_role_arn
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Template:
        return cls(
            raw["prefix"],
            tuple(raw.get("appliedFor", ())),
            raw.get("description", ""),
            raw.get("imageTagMutability", "MUTABLE"),
            tuple(raw.get("imageTagMutabilityExclusionFilters", ())),
            dict(raw.get("encryptionConfiguration") or {"encryptionType": "AES256"}),
            raw.get("repositoryPolicy"),
            raw.get("lifecyclePolicy"),
            tuple(raw.get("resourceTags", ())),
            raw.get("customRoleArn"),
            float(raw.get("createdAt", 0.0)),
            float(raw.get("updatedAt", 0.0)),
        )


def covers(prefix: str, repository: str) -> bool:
    """Whether a template of ``prefix`` covers ``repository`` (ROOT covers every one)."""
    if prefix == ROOT:
        return True
    return repository.startswith(prefix.rstrip("/") + "/")


def _length(prefix: str) -> int:
    return -1 if prefix == ROOT else len(prefix.rstrip("/"))


def choose(templates: Iterable[Template], repository: str, applied_for: str) -> Template | None:
    """The template a repository ``repository`` created by ``applied_for`` (CREATE_ON_PUSH,
    PULL_THROUGH_CACHE or REPLICATION) takes: among those applied for it, the one with the
    longest prefix covering the name, ROOT last; None when none covers it."""
    best: Template | None = None
    for t in templates:
        if applied_for not in t.applied_for or not covers(t.prefix, repository):
            continue
        if best is None or _length(t.prefix) > _length(best.prefix):
            best = t
    return best


def settings_for(template: Template | None, repository: str, created: float = 0.0) -> data.Settings:
    """The settings of a new repository ``repository`` made under ``template`` (None: the
    defaults, as a repository made without a template has)."""
    base = replace(data.DEFAULTS, name=repository, created=created)
    if template is None:
        return base
    return replace(
        base,
        tag_mutability=template.image_tag_mutability,
        mutability_filters=[dict(f) for f in template.mutability_filters],
        encryption=dict(template.encryption),
        policy=template.repository_policy,
        tags=[dict(t) for t in template.resource_tags],
        lifecycle=template.lifecycle_policy,
    )
