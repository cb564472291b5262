"""``nextToken``/``maxResults`` pagination as AWS list operations do it."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

from dockyard import jsonbound
from dockyard.aws.errors import AwsError

__all__ = ["page"]

T = TypeVar("T")


def page(
    items: Sequence[T],
    params: dict[str, Any],
    error: type[AwsError],
    default: int = 100,
    maximum: int = 100,
    token_key: str = "nextToken",
    max_key: str = "maxResults",
) -> tuple[list[T], str | None]:
    """Slice ``items`` by the request's token and max; return the page and the next token.

    The token is an opaque offset; a malformed one raises ``error`` (the service's own
    invalid-parameter exception).
    """
    limit = params.get(max_key, default)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= maximum:
        raise error(f"{max_key} must be an integer between 1 and {maximum}.")
    start = 0
    token = params.get(token_key)
    if token is not None:
        try:
            start = int(jsonbound.loads(base64.urlsafe_b64decode(str(token).encode()), max_bytes=1024)["o"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise error(f"The {token_key} is not valid.") from None
        if start < 0:
            raise error(f"The {token_key} is not valid.")
    chunk = list(items[start : start + limit])
    nxt = None
    if start + limit < len(items):
        nxt = base64.urlsafe_b64encode(json.dumps({"o": start + limit}).encode()).decode()
    return chunk, nxt
