"""EventBridge event patterns, pure: :func:`check` validates a pattern as PutRule and
TestEventPattern do (``InvalidEventPatternException``'s messages), :func:`matches` says whether
an event matches it.

A pattern is a JSON object whose keys name the event's fields; a leaf is a list of matchers,
any of which may match (an event field that is a list matches when any of its elements does).
Matchers: a literal (string, number, ``null``, ``true``/``false``); ``{"prefix": s}`` (or
``{"prefix": {"equals-ignore-case": s}}``), ``{"suffix": s}`` (likewise),
``{"equals-ignore-case": s}``, ``{"wildcard": "a*b"}``; ``{"anything-but": v}`` with a literal,
a list of literals, or a ``prefix``/``suffix``/``wildcard``/``equals-ignore-case`` object;
``{"numeric": [">", 0, "<=", 5]}`` (``=`` too); ``{"exists": true|false}``; ``{"cidr":
"10.0.0.0/24"}``. ``"$or": [pattern, ...]`` matches when any of its patterns does, at any level.
Numbers compare by value (``5`` matches ``5.0``).
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["PatternError", "check", "matches", "parse"]

_OPS = {"<", "<=", "=", ">", ">="}
_BUT = ("prefix", "suffix", "wildcard", "equals-ignore-case")
_MISSING = object()


class PatternError(ValueError):
    """A pattern EventBridge would refuse (InvalidEventPatternException)."""


def parse(text: str) -> dict[str, Any]:
    """The checked pattern of a JSON text."""
    try:
        pattern = json.loads(text)
    except (ValueError, TypeError) as e:
        raise PatternError(f"Event pattern is not valid JSON: {e}") from None
    check(pattern)
    return pattern


def check(pattern: Any, path: str = "") -> None:
    if not isinstance(pattern, dict) or not pattern:
        raise PatternError(f"Event pattern{' at ' + path if path else ''} must be a non-empty JSON object.")
    for key, value in pattern.items():
        where = f"{path}.{key}" if path else key
        if key == "$or":
            if not isinstance(value, list) or len(value) < 2:
                raise PatternError(f"{where} must be a list of at least 2 patterns.")
            for i, sub in enumerate(value):
                check(sub, f"{where}[{i}]")
        elif isinstance(value, dict):
            check(value, where)
        elif isinstance(value, list):
            if not value:
                raise PatternError(f"Empty arrays are not allowed, at {where}.")
            for m in value:
                _check_matcher(m, where)
        else:
            raise PatternError(f"Match value must be String, number, true, false, or null, inside an array, "
                               f"at {where}.")


def _check_text(value: Any, where: str, what: str) -> None:
    if isinstance(value, dict) and set(value) == {"equals-ignore-case"}:
        if isinstance(value["equals-ignore-case"], str):
            return
    if not isinstance(value, str):
        raise PatternError(f"{what} match pattern must be a string, at {where}.")


def _literal(v: Any) -> bool:
    return isinstance(v, (str, int, float)) and not isinstance(v, bool)


def _check_matcher(m: Any, where: str) -> None:
    if m is None or isinstance(m, (str, bool, int, float)):
        return
    if not isinstance(m, dict) or len(m) != 1:
        raise PatternError(f"Each match must be a literal or an object of one matcher, at {where}.")
    (kind, value), = m.items()
    if kind in ("prefix", "suffix"):
        _check_text(value, where, kind.capitalize())
    elif kind in ("equals-ignore-case", "wildcard"):
        if not isinstance(value, str):
            raise PatternError(f"{kind} match pattern must be a string, at {where}.")
    elif kind == "anything-but":
        if isinstance(value, list):
            if not value or not all(_literal(v) for v in value):
                raise PatternError(
                    f"Inside anything-but list, only strings and numbers are allowed, at {where}."
                )
        elif isinstance(value, dict):
            if len(value) != 1 or next(iter(value)) not in _BUT:
                raise PatternError(f"Unsupported anything-but pattern, at {where}.")
        elif not _literal(value):
            raise PatternError(
                f"Inside anything-but, only strings, numbers and lists of them are allowed, at {where}."
            )
    elif kind == "numeric":
        if not isinstance(value, list) or len(value) not in (2, 4):
            raise PatternError(f"Value of numeric must be an array of one or two comparisons, at {where}.")
        for op, num in zip(value[::2], value[1::2], strict=True):
            if op not in _OPS or not isinstance(num, (int, float)) or isinstance(num, bool):
                raise PatternError(
                    f"Unrecognized numeric range operator or value: {op!r} {num!r}, at {where}."
                )
    elif kind == "exists":
        if not isinstance(value, bool):
            raise PatternError(f"exists match pattern must be either true or false, at {where}.")
    elif kind == "cidr":
        try:
            ipaddress.ip_network(value, strict=False)
        except (ValueError, TypeError):
            raise PatternError(f"Malformed CIDR, at {where}: {value!r}.") from None
    else:
        raise PatternError(f"Unrecognized match type {kind}, at {where}.")


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _wild(pattern: str, text: str) -> bool:
    return re.fullmatch(".*".join(re.escape(p) for p in pattern.split("*")), text, re.S) is not None


def _text_match(kind: str, spec: Any, v: Any) -> bool:
    if not isinstance(v, str):
        return False
    fold = isinstance(spec, dict)
    want = spec["equals-ignore-case"] if fold else spec
    text, want = (v.lower(), want.lower()) if fold else (v, want)
    return text.startswith(want) if kind == "prefix" else text.endswith(want)


def _one(m: Any, v: Any) -> bool:
    """Whether the single (present) value ``v`` matches matcher ``m``."""
    if not isinstance(m, dict):
        if _number(m) is not None and _number(v) is not None:
            return _number(m) == _number(v)
        return type(m) is type(v) and m == v if isinstance(m, bool) or isinstance(v, bool) else m == v
    (kind, spec), = m.items()
    if kind in ("prefix", "suffix"):
        return _text_match(kind, spec, v)
    if kind == "equals-ignore-case":
        return isinstance(v, str) and v.lower() == spec.lower()
    if kind == "wildcard":
        return isinstance(v, str) and _wild(spec, v)
    if kind == "anything-but":
        if isinstance(spec, dict):
            (sub, s), = spec.items()
            return isinstance(v, str) and not _one({sub: s}, v)
        values = spec if isinstance(spec, list) else [spec]
        return v is not None and not any(_one(x, v) for x in values)
    if kind == "numeric":
        n = _number(v)
        if n is None:
            return False
        ops = {"<": n.__lt__, "<=": n.__le__, "=": n.__eq__, ">": n.__gt__, ">=": n.__ge__}
        return all(ops[op](float(num)) for op, num in zip(spec[::2], spec[1::2], strict=True))
    if kind == "cidr":
        try:
            return isinstance(v, str) and ipaddress.ip_address(v) in ipaddress.ip_network(spec, strict=False)
        except ValueError:
            return False
    return False


def _leaf(matchers: list[Any], value: Any) -> bool:
    for m in matchers:
        if isinstance(m, dict) and "exists" in m:
            if (value is not _MISSING) == m["exists"]:
                return True
            continue
        if value is _MISSING:
            continue
        values = value if isinstance(value, list) else [value]
        if any(_one(m, v) for v in values):
            return True
    return False


def matches(pattern: Mapping[str, Any], event: Any) -> bool:
    """Whether ``event`` (a JSON object) matches ``pattern`` (a checked pattern)."""
    for key, want in pattern.items():
        if key == "$or":
            if not any(matches(sub, event) for sub in want):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(want, dict):
            items = value if isinstance(value, list) else [value]
            if not any(isinstance(v, dict) and matches(want, v) for v in items):
                if not (value is _MISSING and _only_absent(want)):
                    return False
        elif not _leaf(want, value):
            return False
    return True


def _only_absent(pattern: Mapping[str, Any]) -> bool:
    """A nested pattern an absent object still matches (every leaf ``exists: false``)."""
    for key, want in pattern.items():
        if key == "$or":
            if not any(_only_absent(sub) for sub in want):
                return False
        elif isinstance(want, dict):
            if not _only_absent(want):
                return False
        elif not any(isinstance(m, dict) and m.get("exists") is False for m in want):
            return False
    return True
