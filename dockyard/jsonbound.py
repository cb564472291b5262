"""JSON from the network, parsed with bounds: the one place every listener parses JSON.

:func:`loads` parses a request body (a manifest, an AWS JSON request, a JWT's header and
claims, a pagination token) and refuses, with :class:`JsonError` (a ``ValueError``), what
would otherwise fail later and far from the cause:

- more than ``max_bytes`` bytes (default :data:`MAX_BYTES`);
- nesting deeper than ``max_depth`` arrays and objects (default :data:`MAX_DEPTH`): Python's
  own parser raises ``RecursionError`` near 1,000, and code that walks the result recursively
  (validators, serialisers) would fail on far less;
- bytes that are not UTF-8, and what is not JSON (``NaN``, ``Infinity``, an integer of more
  than 4,300 digits, trailing data);
- unless ``surrogates`` is true, a string (value or key) holding a lone surrogate, such as
  the escape ``"\\ud800"``: it has no UTF-8 form, so the store and any encoder would fail on it.

:func:`check` applies the depth and surrogate bounds to a value decoded some other way (CBOR).

Cost: a body with no more ``[`` and ``{`` than ``max_depth`` and no ``\\u`` escape of a
surrogate (nearly every request) costs one parse and two byte counts; otherwise one walk of
the result, without recursion.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_BYTES", "MAX_DEPTH", "JsonError", "check", "loads"]

MAX_BYTES = 10 * 1024 * 1024
MAX_DEPTH = 64

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE_ESCAPE_TEXT = re.compile(r"\\u[dD][89a-fA-F]")


class JsonError(ValueError):
    """The data is not JSON within the bounds; ``str()`` says why, in one line."""


def _constant(name: str) -> Any:
    raise JsonError(f"{name} is not JSON")


def loads(
    data: bytes | bytearray | str, *, max_bytes: int = MAX_BYTES, max_depth: int = MAX_DEPTH,
    surrogates: bool = False,
) -> Any:
    """The value of the JSON document ``data`` (see the module docstring); raises JsonError."""
    if len(data) > max_bytes:
        raise JsonError(f"JSON document of {len(data)} bytes exceeds the {max_bytes} byte limit")
    if isinstance(data, str):
        text = data
        escapes = _SURROGATE_ESCAPE_TEXT.search(text) is not None
        opens = text.count("[") + text.count("{")
    else:
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonError(f"JSON document is not UTF-8 (byte {e.start})") from None
        escapes = _SURROGATE_ESCAPE.search(data) is not None
        opens = data.count(b"[") + data.count(b"{")
    try:
        value = json.loads(text, parse_constant=_constant)
    except RecursionError:
        raise JsonError(f"JSON document nests deeper than {max_depth}") from None
    except JsonError:
        raise
    except ValueError as e:  # json.JSONDecodeError, and an integer of too many digits
        raise JsonError(f"invalid JSON: {_one_line(str(e))}") from None
    if opens > max_depth or (escapes and not surrogates):
        check(value, max_depth=max_depth, surrogates=surrogates or not escapes)
    return value


def check(value: Any, *, max_depth: int = MAX_DEPTH, surrogates: bool = False) -> None:
    """Raise JsonError if ``value`` (dicts, lists, scalars) nests deeper than ``max_depth`` or,
    unless ``surrogates``, holds a string with a lone surrogate."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            if not surrogates:
                for key in item:
                    if isinstance(key, str):
                        _text(key)
        elif isinstance(item, list | tuple):
            children = item
        else:
            if not surrogates and isinstance(item, str):
                _text(item)
            continue
        if depth >= max_depth:
            raise JsonError(f"JSON document nests deeper than {max_depth}")
        for child in children:
            if isinstance(child, dict | list | tuple) or (not surrogates and isinstance(child, str)):
                stack.append((child, depth + 1))


def _text(s: str) -> None:
    if s.isascii():
        return
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonError("a JSON string holds a lone surrogate (no UTF-8 form)") from None


def _one_line(message: str) -> str:
    return message.splitlines()[0][:200] if message else "malformed"
