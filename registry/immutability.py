"""Tag mutability of a repository (pure): which tags may be moved to another image.

ECR's four settings: ``MUTABLE`` (every tag may move), ``IMMUTABLE`` (none may),
``IMMUTABLE_WITH_EXCLUSION`` (none but the tags matching an exclusion filter) and
``MUTABLE_WITH_EXCLUSION`` (all but the tags matching one). A filter is
``{"filterType": "WILDCARD", "filter": "release-*"}``: ``*`` matches any run of characters,
everything else itself. Re-pointing a tag at the image it already names is never a change,
and a manifest pushed by digest moves no tag, so both are always allowed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["MODES", "MUTABLE", "check_filters", "is_immutable", "refused_tags", "wildcard"]

MUTABLE = "MUTABLE"
IMMUTABLE = "IMMUTABLE"
IMMUTABLE_WITH_EXCLUSION = "IMMUTABLE_WITH_EXCLUSION"
MUTABLE_WITH_EXCLUSION = "MUTABLE_WITH_EXCLUSION"
MODES = (MUTABLE, IMMUTABLE, IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION)
_WITH_EXCLUSION = (IMMUTABLE_WITH_EXCLUSION, MUTABLE_WITH_EXCLUSION)
_FILTER = re.compile(r"^[0-9a-zA-Z._*-]{1,128}$")
MAX_FILTERS = 5


def wildcard(pattern: str) -> re.Pattern[str]:
    """The regular expression of an exclusion filter (``*`` any run, the rest literal)."""
    return re.compile("".join(".*" if c == "*" else re.escape(c) for c in pattern), re.DOTALL)


def check_filters(mode: str, filters: Sequence[dict] | None) -> str | None:
    """What is wrong with ``filters`` for ``mode`` (None: nothing). The ``*_WITH_EXCLUSION``
    modes need 1..5 WILDCARD filters of ``[0-9a-zA-Z._*-]``; the others take none."""
    filters = filters or []
    if mode not in MODES:
        return f"imageTagMutability must be one of {', '.join(MODES)}"
    if mode not in _WITH_EXCLUSION:
        if filters:
            return f"imageTagMutabilityExclusionFilters can only be given with {' or '.join(_WITH_EXCLUSION)}"
        return None
    if not filters:
        return f"{mode} needs at least one imageTagMutabilityExclusionFilters entry"
    if len(filters) > MAX_FILTERS:
        return f"at most {MAX_FILTERS} imageTagMutabilityExclusionFilters"
    for f in filters:
        if not isinstance(f, dict) or f.get("filterType") != "WILDCARD":
            return "each exclusion filter needs filterType WILDCARD"
        if not isinstance(f.get("filter"), str) or not _FILTER.match(f["filter"]):
            return (
                f"exclusion filter {str(f.get('filter'))[:140]!r} must be 1-128 characters of [0-9a-zA-Z._*-]"
            )
    return None


def is_immutable(mode: str, filters: Iterable[str], tag: str) -> bool:
    """Whether ``tag`` may not be moved once set, in a repository of ``mode`` with the
    exclusion ``filters`` (their patterns)."""
    if mode == MUTABLE:
        return False
    if mode == IMMUTABLE:
        return True
    matched = any(wildcard(f).fullmatch(tag) for f in filters)
    return not matched if mode == IMMUTABLE_WITH_EXCLUSION else matched


def refused_tags(
    mode: str, filters: Iterable[str], current: dict[str, str], tags: Iterable[str], digest: str
) -> list[str]:
    """The ``tags`` that pointing at ``digest`` would move although they are immutable:
    ``current`` maps each existing tag to the digest it names now."""
    patterns = list(filters)
    return [t for t in tags if t in current and current[t] != digest and is_immutable(mode, patterns, t)]
