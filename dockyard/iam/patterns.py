"""IAM's wildcards and policy variables (pure).

``*`` matches any run of characters and ``?`` one character. In a policy of version
``2012-10-17``, ``${aws:username}`` is replaced by the request's value of that key (the
statement or condition value then matches nothing if the key is absent; ``${key, 'default'}``
gives a default), and ``${*}``, ``${?}`` and ``${$}`` stand for the literal characters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["arn_matches", "glob", "substitute"]

_TOKEN = re.compile(r"\$\{([^}]*)\}|\*|\?|[^$*?]+|\$")
_DEFAULT = re.compile(r"^\s*([^,\s]+)\s*,\s*'([^']*)'\s*$")
VARIABLES = "${"


def _variable(body: str, ctx: Mapping[str, Any] | None) -> str | None:
    if body in ("*", "?", "$"):
        return body
    m = _DEFAULT.match(body)
    key, default = (m.group(1), m.group(2)) if m else (body.strip(), None)
    value = None if ctx is None else ctx.get(key.lower())
    if isinstance(value, list | tuple) or value is None:
        return default
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def substitute(text: str, ctx: Mapping[str, Any] | None) -> str | None:
    """``text`` with its policy variables replaced (None when one has no value)."""
    if VARIABLES not in text or ctx is None:
        return text
    out = []
    for m in _TOKEN.finditer(text):
        if m.group(1) is not None:
            value = _variable(m.group(1), ctx)
            if value is None:
                return None
            out.append(value)
        else:
            out.append(m.group(0))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _compiled(text: str, ignore_case: bool) -> re.Pattern[str]:
    parts = []
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        parts.append(".*" if tok == "*" else "." if tok == "?" else re.escape(tok))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def glob(
    pattern: str, ctx: Mapping[str, Any] | None = None, ignore_case: bool = False
) -> re.Pattern[str] | None:
    """The regular expression of an IAM wildcard pattern (variables from ``ctx`` are taken
    literally); None when a variable has no value, so the pattern matches nothing."""
    if VARIABLES not in pattern or ctx is None:
        return _compiled(pattern, ignore_case)
    parts = []
    for m in _TOKEN.finditer(pattern):
        tok = m.group(0)
        if m.group(1) is not None:
            value = _variable(m.group(1), ctx)
            if value is None:
                return None
            parts.append(re.escape(value))
        else:
            parts.append(".*" if tok == "*" else "." if tok == "?" else re.escape(tok))
    return re.compile("".join(parts), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def arn_matches(pattern: str, arn: str, ctx: Mapping[str, Any] | None = None) -> bool:
    """Whether ``arn`` matches the policy's ARN ``pattern``: ``*`` alone matches anything;
    otherwise segment by segment (``arn:partition:service:region:account:resource``, wildcards
    staying inside their segment except in the resource, which may itself hold colons)."""
    if pattern == "*":
        return True
    want, have = pattern.split(":", 5), arn.split(":", 5)
    if len(want) != 6:
        rx = glob(pattern, ctx)
        return rx is not None and rx.fullmatch(arn) is not None
    if len(have) != 6:
        return False
    for w, h in zip(want, have, strict=True):
        rx = glob(w, ctx)
        if rx is None or rx.fullmatch(h) is None:
            return False
    return True
