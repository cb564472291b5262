"""Checks App Mesh makes beyond its model, shared by the spec checks of nodes and routes: pure
functions that return nothing or raise BadRequestException naming the member at fault.

The model check (:mod:`dockyard.aws.model`) has already run: types, required members, enums,
lengths and ranges hold. What is left is what the model cannot say: a union given exactly one
member, a duration with both its unit and value, a name that is not blank, and a regular
expression Envoy will accept.

Envoy compiles route regexes with RE2, which has no backtracking features, and refuses (NACKs)
one whose compiled program is larger than 100 (its default ``re2.max_program_size.error_level``).
:func:`check_regex` compiles the pattern with RE2 itself (PyPI ``google-re2``, the library Envoy
links), so whatever RE2 refuses is refused here with RE2's own words: backreferences,
lookaround, atomic groups, possessive quantifiers, Python's escapes ``\\u``/``\\U``/``\\N``,
``\\Z``, flags other than ``i``, ``m``, ``s`` and ``U``, counts above 1000. It then measures the
program as Envoy does and refuses one over :data:`MAX_PROGRAM_SIZE`. Envoy 1.40 counts a ``.``
as two instructions (``.{49}`` is 102, ``.{98}`` 200, ``(abc|def|ghi){30}`` 334), which is
RE2's Latin-1 count of the pattern's bytes (its UTF-8 count of ``.{98}`` is 788): that is the
count used.
"""

from __future__ import annotations

from typing import Any

import re2
from re2 import _re2

from mesh.appmesh_errors import BadRequestException

__all__ = ["MAX_PROGRAM_SIZE", "check_duration", "check_regex", "not_blank", "one_of", "program_size"]

MAX_PROGRAM_SIZE = 100  # Envoy's default re2.max_program_size.error_level


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


def _options(encoding: int) -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.encoding = encoding
    return options


_UTF8 = _options(re2.Options.Encoding.UTF8)
_LATIN1 = _options(re2.Options.Encoding.LATIN1)


def program_size(pattern: str) -> int:
    """The size of ``pattern``'s RE2 program as Envoy counts it (module docstring)."""
    return _re2.RE2(pattern.encode(), _LATIN1).ProgramSize()


def check_regex(pattern: Any, where: str) -> None:
    """BadRequestException unless RE2 compiles ``pattern`` (UTF-8, as Envoy matches) into a
    program Envoy accepts (at most :data:`MAX_PROGRAM_SIZE`)."""
    if not isinstance(pattern, str) or not pattern:
        raise BadRequestException(f"{where} must be a non-empty regular expression.")
    compiled = _re2.RE2(pattern.encode(), _UTF8)
    if not compiled.ok():
        error = compiled.error().decode(errors="replace")
        raise BadRequestException(f"{where} is not a regular expression Envoy's RE2 accepts: {error}.")
    size = program_size(pattern)
    if size > MAX_PROGRAM_SIZE:
        raise BadRequestException(f"{where} compiles to an RE2 program of size {size}, over Envoy's limit of "
                                  f"{MAX_PROGRAM_SIZE}; simplify it (fewer or smaller repetitions).")
