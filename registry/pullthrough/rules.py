"""Pull-through cache rules (pure): validation, matching a repository to its rule, the
refresh decision and the credential secret's format.

A rule maps the repositories under ``ecr_prefix`` (``ROOT``: every repository no other rule
takes) to an upstream registry URL: repository ``<prefix>/<rest>`` is ``<rest>`` upstream, or
``<upstream_prefix>/<rest>`` when the rule names an upstream prefix. The longest matching
prefix wins. Docker Hub's official images live under ``library/``, so for a rule whose
``upstreamRegistry`` is ``docker-hub`` a one-part ``<rest>`` becomes ``library/<rest>``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

from yarl import URL

__all__ = [
    "ROOT",
    "CredentialsInvalid",
    "Rule",
    "RuleError",
    "UnsupportedUpstream",
    "check_credential_arn",
    "check_prefix",
    "credentials",
    "match",
    "needs_refresh",
    "normalize_url",
]

ROOT = "ROOT"
# The model's pattern (botocore's ecr model; the protocol layer checks no patterns).
_PREFIX = re.compile(r"^([a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*/?|ROOT)$")
_CREDENTIAL_ARN = re.compile(
    r"^arn:aws(-\w+)*:secretsmanager:[a-zA-Z0-9-:]+:secret:ecr-pullthroughcache/[a-zA-Z0-9/_+=.@-]+$"
)


class RuleError(ValueError):
    """A rule parameter is invalid; ``str()`` says which and why."""


class UnsupportedUpstream(RuleError):
    """The upstream registry URL is not one this registry can pull from (http or https)."""


class CredentialsInvalid(ValueError):
    """The credential secret does not hold ``{"username": ..., "accessToken": ...}``."""


@dataclass(frozen=True)
class Rule:
    """One pull-through cache rule as stored."""

    prefix: str  # without a trailing slash; ROOT for the registry's root
    upstream_url: str  # normalized: scheme://host[:port][/path], no trailing slash
    created: float
    upstream_registry: str | None = None
    credential_arn: str | None = None
    custom_role_arn: str | None = None
    upstream_prefix: str = ROOT
    updated: float | None = None


def check_prefix(value: str, field: str = "ecrRepositoryPrefix") -> str:
    """``value`` as stored (trailing ``/`` dropped); RuleError if the model's pattern or
    length (2 to 30) refuses it."""
    if not isinstance(value, str) or not 2 <= len(value) <= 30 or not _PREFIX.match(value):
        raise RuleError(
            f"Invalid parameter at '{field}' failed to satisfy constraint: 'must satisfy regular expression"
            f" '{_PREFIX.pattern}' and have length between 2 and 30'"
        )
    return value.rstrip("/")


def check_credential_arn(value: str) -> str:
    """``value`` if it is a Secrets Manager ARN whose name starts ``ecr-pullthroughcache/``."""
    if not isinstance(value, str) or not 50 <= len(value) <= 612 or not _CREDENTIAL_ARN.match(value):
        raise RuleError(
            "Invalid parameter at 'credentialArn' failed to satisfy constraint: 'must be a Secrets Manager"
            " secret ARN whose name starts with ecr-pullthroughcache/'"
        )
    return value


def normalize_url(value: str) -> str:
    """The upstream URL as stored: ``https://`` when no scheme is given (ECR's form is a bare
    host such as ``registry-1.docker.io``), no trailing slash, no query or fragment.
    Raises UnsupportedUpstream for another scheme or no host."""
    text = value.strip() if isinstance(value, str) else ""
    if text and "://" not in text:
        text = f"https://{text}"
    try:
        url = URL(text)
    except (ValueError, TypeError):
        url = None
    if (
        url is None
        or url.scheme not in ("http", "https")
        or not url.host
        or url.query_string
        or url.fragment
        or url.user is not None
    ):
        raise UnsupportedUpstream(
            f"The upstream registry URL '{value}' is not supported: use https://host[:port] (or http://)"
        )
    return str(url).rstrip("/")


def upstream_name(rule: Rule, rest: str) -> str:
    """The upstream repository of ``rest`` (what follows the rule's prefix)."""
    if rule.upstream_registry == "docker-hub" and "/" not in rest:
        rest = f"library/{rest}"
    return rest if rule.upstream_prefix in ("", ROOT) else f"{rule.upstream_prefix.rstrip('/')}/{rest}"


def match(rules: Iterable[Rule], repository: str) -> tuple[Rule, str] | None:
    """The rule that caches ``repository`` and the repository's upstream name, or None.
    The longest prefix wins; ROOT takes what no prefix does."""
    best: Rule | None = None
    root: Rule | None = None
    for rule in rules:
        if rule.prefix == ROOT:
            root = rule
        elif repository.startswith(rule.prefix + "/") and len(repository) > len(rule.prefix) + 1:
            if best is None or len(rule.prefix) > len(best.prefix):
                best = rule
    if best is not None:
        return best, upstream_name(best, repository[len(best.prefix) + 1 :])
    if root is not None:
        return root, upstream_name(root, repository)
    return None


def needs_refresh(checked: float | None, now: float, interval: float) -> bool:
    """Whether a cached tag is re-checked upstream: never checked, or last checked at least
    ``interval`` seconds ago (0: at every pull)."""
    return checked is None or now - checked >= interval


def credentials(secret: str) -> tuple[str, str]:
    """``(username, accessToken)`` from the secret's JSON, as ECR reads its secrets."""
    try:
        doc = json.loads(secret)
    except ValueError:
        raise CredentialsInvalid("the secret is not JSON") from None
    if not isinstance(doc, dict):
        raise CredentialsInvalid("the secret is not a JSON object")
    user, token = doc.get("username"), doc.get("accessToken")
    if not isinstance(user, str) or not isinstance(token, str) or not user or not token:
        raise CredentialsInvalid('the secret must hold {"username": "...", "accessToken": "..."}')
    return user, token
