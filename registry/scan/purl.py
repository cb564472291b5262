"""Package URLs (purl-spec): ``pkg:<type>/<namespace>/<name>@<version>?<qualifiers>``."""

from __future__ import annotations

from urllib.parse import quote

__all__ = ["purl"]


def _q(text: str) -> str:
    return quote(text, safe="")


def purl(type_: str, name: str, version: str, namespace: str = "", **qualifiers: str) -> str:
    """A purl; ``name`` may carry its namespace with ``/`` (``@scope/pkg``, ``group/artifact``,
    Go module paths), each segment percent-encoded."""
    segments = [s for s in (namespace.split("/") if namespace else []) + name.split("/") if s]
    path = "/".join(_q(s) for s in segments)
    out = f"pkg:{type_}/{path}"
    if version:
        out += "@" + _q(version)
    quals = "&".join(f"{k}={_q(v)}" for k, v in sorted(qualifiers.items()) if v)
    return out + ("?" + quals if quals else "")
