"""Checks App Mesh makes beyond its model, shared by the spec checks of nodes and routes: pure
functions that return nothing or raise BadRequestException naming the member at fault.

The model check (:mod:`dockyard.aws.model`) has already run: types, required members, enums,
lengths and ranges hold. What is left is what the model cannot say: a union given exactly one
member, a duration with both its unit and value, a name that is not blank, and a regular
expression Envoy will accept.

Envoy compiles route regexes with RE2, which has no backtracking features. :func:`check_regex`
compiles with Python's ``re`` (a syntax error is refused) and refuses, by a simple scan of the
pattern outside character classes, what RE2 rejects and Python accepts: backreferences (``\\1``,
``(?P=name)``), Python's escapes ``\\u``, ``\\U`` and ``\\N{...}`` (also in a class),
lookahead and lookbehind (``(?=``, ``(?!``, ``(?<=``, ``(?<!``), atomic groups
``(?>``, conditionals ``(?(``, comments ``(?#``, possessive quantifiers (``a*+``), ``\\Z``, flags
other than ``i``, ``m`` and ``s`` (``(?x)``), and counted repetitions above 1000 (``a{1001}``).
It does not prove RE2 accepts the rest.
"""

from __future__ import annotations

import re
from typing import Any

from mesh.appmesh_errors import BadRequestException

__all__ = ["check_duration", "check_regex", "not_blank", "one_of"]

_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
# \\u, \\U, \\N not itself escaped, inside a character class or not
_PYTHON_ESCAPE = re.compile(r"(?<!\\)(?:\\\\)*(\\[uUN])")
_FLAGS = re.compile(r"([a-zA-Z-]+)[:)]")
_GROUP_REFUSED = {"=": "lookahead", "!": "lookahead", ">": "atomic group", "(": "conditional",
                  "#": "comment", "P=": "backreference"}


def one_of(value: Any, members: tuple[str, ...], where: str) -> str:
    """The one member of union ``value`` that is set; BadRequestException unless exactly one is."""
    given = [m for m in members if isinstance(value, dict) and value.get(m) is not None]
    if len(given) != 1:
        raise BadRequestException(f"{where} must have exactly one of {', '.join(members)}"
                                  f"{'; got ' + ', '.join(given) if given else ''}.")
    return given[0]


def not_blank(value: Any, where: str) -> str:
    """``value`` if it is a string with more than white space in it."""
    if not isinstance(value, str) or not value.strip():
        raise BadRequestException(f"{where} must not be empty.")
    return value


def check_duration(value: Any, where: str) -> None:
    """A ``Duration``: ``unit`` ``s`` or ``ms`` and a ``value`` from 0 (the model allows either
    to be left out; App Mesh needs both)."""
    if not isinstance(value, dict) or value.get("unit") not in ("s", "ms") or value.get("value") is None:
        raise BadRequestException(f"{where} must have a unit (s or ms) and a value.")
    v = value["value"]
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise BadRequestException(f"{where}.value must be a whole number from 0.")


def check_regex(pattern: Any, where: str) -> None:
    """BadRequestException unless ``pattern`` compiles and uses nothing RE2 refuses (see the
    module docstring for what is detected)."""
    if not isinstance(pattern, str) or not pattern:
        raise BadRequestException(f"{where} must be a non-empty regular expression.")
    try:
        re.compile(pattern)
    except re.error as e:
        raise BadRequestException(f"{where} is not a valid regular expression: {e}.") from None
    problem = _re2_problem(pattern)
    if problem:
        raise BadRequestException(f"{where} uses {problem}, which Envoy's regex engine (RE2) does not "
                                  "support.")


def _re2_problem(pattern: str) -> str | None:
    escape = _PYTHON_ESCAPE.search(pattern)
    if escape:
        return f"the escape {escape.group(1)} (RE2 writes a code point \\x{{41}})"
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            if nxt in "123456789":
                return "a backreference"
            if nxt == "Z":
                return "\\Z (use \\z)"
            i += 2
            continue
        if c == "[":
            i = _class_end(pattern, i)
            continue
        if c == "(" and pattern.startswith("?", i + 1):
            rest = pattern[i + 2:]
            for lead, what in _GROUP_REFUSED.items():
                if rest.startswith(lead):
                    return f"a {what}"
            if rest.startswith(("<=", "<!")):
                return "a lookbehind"
            flags = _FLAGS.match(rest)
            if flags and set(flags.group(1)) - set("ims-"):
                return f"the flags {flags.group(1)} (RE2 knows i, m and s)"
        if c in "*+?" and pattern.startswith("+", i + 1):
            return "a possessive quantifier"
        m = _REPEAT.match(pattern, i) if c == "{" else None
        if m:
            if any(g and int(g) > 1000 for g in m.groups()):
                return "a repetition count above 1000"
            if pattern.startswith("+", m.end()):
                return "a possessive quantifier"
            i = m.end()
            continue
        i += 1
    return None


def _class_end(pattern: str, start: int) -> int:
    """The index just past the character class opened at ``start``."""
    i = start + 1
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1
    while i < len(pattern) and pattern[i] != "]":
        i += 2 if pattern[i] == "\\" else 1
    return i + 1
