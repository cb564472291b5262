"""Lifecycle policies (pure): ECR's JSON format, validated, and which images it expires.

A policy is ``{"rules": [rule, ...]}``; a rule is ``{"rulePriority": N, "description": "...",
"selection": {...}, "action": {"type": "expire"}}``. A selection has ``tagStatus``
(``tagged``, ``untagged`` or ``any``), for ``tagged`` one of ``tagPrefixList`` and
``tagPatternList`` (``*`` wildcards, at most 4 per pattern), ``countType``
(``imageCountMoreThan``, or ``sinceImagePushed`` with ``countUnit`` ``days``) and
``countNumber`` (>= 1). :func:`parse` refuses anything else with a :class:`LifecycleError`
naming the rule and what is wrong.

:func:`evaluate` applies ECR's evaluation rules
(https://docs.aws.amazon.com/AmazonECR/latest/userguide/LifecyclePolicies.html):

* rules run in ``rulePriority`` order (unique; a rule with ``tagStatus: any`` must have the
  highest, and only one rule may select ``untagged`` images);
* a rule selects the images whose tags match: ``tagged`` with every prefix (or pattern)
  matching some tag of the image, ``untagged`` with no tag, ``any`` every image;
* among its selection, newest push first, ``imageCountMoreThan N`` marks all but the first N,
  ``sinceImagePushed N days`` those pushed more than N days before ``now``;
* an image is expired by at most one rule, and an image a rule of higher priority selected
  is never expired by a later rule, though later rules still count it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Candidate", "LifecycleError", "Rule", "evaluate", "parse"]

DAY = 86400.0
MAX_SIZE = 30720
_RULE_KEYS = {"rulePriority", "description", "selection", "action"}
_SELECTION_KEYS = {"tagStatus", "tagPrefixList", "tagPatternList", "countType", "countUnit", "countNumber"}


class LifecycleError(ValueError):
    """A lifecycle policy that is not valid (the message says where)."""


@dataclass(frozen=True)
class Rule:
    priority: int
    tag_status: str  # tagged, untagged, any
    prefixes: tuple[str, ...]
    patterns: tuple[re.Pattern[str], ...]
    count_type: str  # imageCountMoreThan, sinceImagePushed
    count: int

    def selects(self, tags: Sequence[str]) -> bool:
        if self.tag_status == "any":
            return True
        if self.tag_status == "untagged":
            return not tags
        if not tags:
            return False
        if self.prefixes:
            return all(any(t.startswith(p) for t in tags) for p in self.prefixes)
        return all(any(p.fullmatch(t) for t in tags) for p in self.patterns)


@dataclass(frozen=True)
class Candidate:
    """An image as a lifecycle policy sees it."""

    digest: str
    tags: tuple[str, ...]
    pushed: float


def _pattern(text: str) -> re.Pattern[str]:
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in text), re.DOTALL)


def _strings(where: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise LifecycleError(f"{where} must be a non-empty list of non-empty strings")
    return tuple(value)


def _rule(i: int, raw: object) -> Rule:
    where = f"rules[{i}]"
    if not isinstance(raw, dict):
        raise LifecycleError(f"{where} must be an object")
    unknown = sorted(set(raw) - _RULE_KEYS)
    if unknown:
        raise LifecycleError(f"{where}: unknown field {unknown[0]!r}")
    priority = raw.get("rulePriority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 999:
        raise LifecycleError(f"{where}: rulePriority must be an integer from 1 to 999")
    if "description" in raw and not isinstance(raw["description"], str):
        raise LifecycleError(f"{where}: description must be a string")
    action = raw.get("action")
    if not isinstance(action, dict) or action.get("type") != "expire" or set(action) != {"type"}:
        raise LifecycleError(f"{where}: action must be {{\"type\": \"expire\"}}")
    sel = raw.get("selection")
    if not isinstance(sel, dict):
        raise LifecycleError(f"{where}: selection is required")
    unknown = sorted(set(sel) - _SELECTION_KEYS)
    if unknown:
        raise LifecycleError(f"{where}.selection: unknown field {unknown[0]!r}")
    status = sel.get("tagStatus")
    if status not in ("tagged", "untagged", "any"):
        raise LifecycleError(f"{where}.selection: tagStatus must be tagged, untagged or any")
    prefixes: tuple[str, ...] = ()
    patterns: tuple[re.Pattern[str], ...] = ()
    if status == "tagged":
        if ("tagPrefixList" in sel) == ("tagPatternList" in sel):
            raise LifecycleError(f"{where}.selection: tagStatus tagged needs exactly one of tagPrefixList"
                                 " and tagPatternList")
        if "tagPrefixList" in sel:
            prefixes = _strings(f"{where}.selection.tagPrefixList", sel["tagPrefixList"])
        else:
            texts = _strings(f"{where}.selection.tagPatternList", sel["tagPatternList"])
            for t in texts:
                if t.count("*") > 4:
                    raise LifecycleError(f"{where}.selection.tagPatternList: {t!r} has more than 4 wildcards")
            patterns = tuple(_pattern(t) for t in texts)
    elif "tagPrefixList" in sel or "tagPatternList" in sel:
        raise LifecycleError(f"{where}.selection: tagPrefixList and tagPatternList need tagStatus tagged")
    count_type = sel.get("countType")
    if count_type not in ("imageCountMoreThan", "sinceImagePushed"):
        raise LifecycleError(f"{where}.selection: countType must be imageCountMoreThan or sinceImagePushed")
    if count_type == "sinceImagePushed" and sel.get("countUnit") != "days":
        raise LifecycleError(f"{where}.selection: sinceImagePushed needs countUnit days")
    if count_type == "imageCountMoreThan" and "countUnit" in sel:
        raise LifecycleError(f"{where}.selection: countUnit cannot be given with imageCountMoreThan")
    count = sel.get("countNumber")
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise LifecycleError(f"{where}.selection: countNumber must be an integer >= 1")
    return Rule(priority, status, prefixes, patterns, count_type, count)


def parse(text: str) -> list[Rule]:
    """The rules of policy ``text`` in priority order; :class:`LifecycleError` otherwise."""
    if len(text.encode()) > MAX_SIZE:
        raise LifecycleError(f"a lifecycle policy is at most {MAX_SIZE} bytes")
    try:
        raw = json.loads(text)
    except ValueError as e:
        raise LifecycleError(f"not valid JSON: {e}") from None
    if not isinstance(raw, dict) or set(raw) != {"rules"}:
        raise LifecycleError("a lifecycle policy is an object with one field, rules")
    if not isinstance(raw["rules"], list) or not raw["rules"]:
        raise LifecycleError("rules must be a non-empty list")
    rules = sorted((_rule(i, r) for i, r in enumerate(raw["rules"])), key=lambda r: r.priority)
    priorities = [r.priority for r in rules]
    if len(set(priorities)) != len(priorities):
        raise LifecycleError("rulePriority values must be unique")
    anys = [r for r in rules if r.tag_status == "any"]
    if anys and (len(anys) > 1 or rules[-1].tag_status != "any"):
        raise LifecycleError("a rule with tagStatus any must have the highest rulePriority (and only one)")
    if sum(r.tag_status == "untagged" for r in rules) > 1:
        raise LifecycleError("only one rule may select untagged images")
    return rules


def evaluate(rules: Sequence[Rule], images: Sequence[Candidate], now: float) -> dict[str, int]:
    """The digests ``rules`` expire at ``now``, each with the priority of the rule that does."""
    expired: dict[str, int] = {}
    selected_before: set[str] = set()
    newest_first = sorted(images, key=lambda i: (-i.pushed, i.digest))
    for rule in rules:
        chosen = [i for i in newest_first if rule.selects(i.tags)]
        if rule.count_type == "imageCountMoreThan":
            marked = chosen[rule.count:]
        else:
            marked = [i for i in chosen if now - i.pushed > rule.count * DAY]
        for image in marked:
            if image.digest not in expired and image.digest not in selected_before:
                expired[image.digest] = rule.priority
        selected_before.update(i.digest for i in chosen)
    return expired
