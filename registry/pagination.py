"""Pure ``n``/``last`` pagination shared by ``tags/list`` and ``_catalog``."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

__all__ = ["PageError", "next_link", "page", "parse_n"]

MAX_N = 10_000


class PageError(ValueError):
    """``n`` is not a non-negative integer."""


def parse_n(value: str | None) -> int | None:
    """The page size asked for (capped at MAX_N), None for all; raises PageError if malformed."""
    if value is None or value == "":
        return None
    if not (value.isascii() and value.isdigit()) or len(value) > 9:  # "²".isdigit() is True
        raise PageError(f"invalid n {value!r}")
    return min(int(value), MAX_N)


def page(items: Sequence[str], n: int | None, last: str | None) -> tuple[list[str], bool]:
    """The items strictly after ``last`` (lexical order), at most ``n``; and whether more follow.

    ``items`` must be sorted.
    """
    import bisect

    start = bisect.bisect_right(items, last) if last else 0
    rest = items[start:]
    if n is None:
        return list(rest), False
    return list(rest[:n]), len(rest) > n


def next_link(path: str, n: int, last: str) -> str:
    """The ``Link`` header value pointing at the next page."""
    return f'<{path}?{urlencode({"n": n, "last": last})}>; rel="next"'
