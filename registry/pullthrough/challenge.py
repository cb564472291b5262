"""``WWW-Authenticate`` challenges (pure), as registries send them: ``Bearer realm="...",
service="...",scope="..."`` (the Docker token flow) or ``Basic realm="..."``.

Parsed with the standard library's RFC 2068 list helpers (``urllib.request.parse_http_list``
and ``parse_keqv_list``), which honour quoted commas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.request import parse_http_list, parse_keqv_list

__all__ = ["Challenge", "parse_challenge"]


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower case: "bearer", "basic", ...
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str | None:
        return self.params.get("realm")


def parse_challenge(header: str | None) -> Challenge | None:
    """The first challenge of ``header``, or None when there is none."""
    text = (header or "").strip()
    if not text:
        return None
    scheme, _, rest = text.partition(" ")
    params: dict[str, str] = {}
    items = [p for p in parse_http_list(rest) if "=" in p]
    if items:
        try:
            params = {k.strip().lower(): v for k, v in parse_keqv_list(items).items()}
        except ValueError:
            params = {}
    return Challenge(scheme.strip().lower(), params)
