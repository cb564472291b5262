"""Pure parsing of the byte ranges a registry sees.

* ``parse_range(header, size)``: a blob GET's ``Range: bytes=...`` header, one range only
  (what clients send); returns ``(start, end)`` inclusive, None when there is no header, or
  raises :class:`RangeError` when it is malformed or unsatisfiable (the handler answers 416).
* ``parse_content_range(header)``: a chunk PATCH's ``Content-Range: <start>-<end>``
  (the spec's form, no unit; ``bytes`` and ``bytes=`` prefixes are tolerated).
"""

from __future__ import annotations

import re

__all__ = ["RangeError", "parse_content_range", "parse_range"]

_BYTES = re.compile(r"bytes=(\d*)-(\d*)")
_CONTENT = re.compile(r"(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?")
_MAX_DIGITS = 19  # fits in a signed 64-bit offset


class RangeError(ValueError):
    """A malformed or unsatisfiable range."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Resolve a ``Range`` header against a blob of ``size`` bytes (see module docstring)."""
    if header is None:
        return None
    m = _BYTES.fullmatch(header.strip())
    if m is None:
        raise RangeError(f"malformed range {header!r}")
    first, last = m.group(1), m.group(2)
    if len(first) > _MAX_DIGITS or len(last) > _MAX_DIGITS or not (first or last):
        raise RangeError(f"malformed range {header!r}")
    if not first:  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            raise RangeError("unsatisfiable suffix range")
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        raise RangeError(f"malformed range {header!r}")
    if start >= size:
        raise RangeError("range starts beyond the end of the blob")
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


def parse_content_range(header: str) -> tuple[int, int]:
    """``(start, end)`` inclusive of a chunk's ``Content-Range``; raises RangeError if malformed."""
    m = _CONTENT.fullmatch(header.strip())
    if m is None or len(m.group(1)) > _MAX_DIGITS or len(m.group(2)) > _MAX_DIGITS:
        raise RangeError(f"malformed content range {header!r}")
    start, end = int(m.group(1)), int(m.group(2))
    if end < start:
        raise RangeError(f"malformed content range {header!r}")
    return start, end
