"""One version comparator per ecosystem (pure). ``key(ecosystem, version)`` returns an
orderable value, or None when the version is not valid for that ecosystem (then nothing is
matched on it: a wrong answer is worse than none).

PyPI: ``packaging`` (PEP 440). Debian: ``python-debian``. Alpine, rpm, Maven, npm and Go/SEMVER:
``univers`` (Go's ``v`` prefix and ``+incompatible`` are dropped; Go toolchain versions
``go1.21.3`` become ``1.21.3``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["compare", "key"]


def _pypi(v: str) -> Any:
    from packaging.version import InvalidVersion, Version

    try:
        return Version(v)
    except InvalidVersion:
        return None


def _debian(v: str) -> Any:
    from debian.debian_support import Version

    try:
        return Version(v)
    except ValueError:
        return None


def _semver(v: str) -> Any:
    from univers.versions import InvalidVersion, SemverVersion

    v = v.strip()
    if v.startswith("go"):
        v = v[2:]
    if v.startswith("v"):
        v = v[1:]
    v = v.removesuffix("+incompatible")
    if v.count(".") == 1 and "-" not in v:
        v += ".0"  # go1.21 is 1.21.0
    try:
        return SemverVersion(v)
    except (InvalidVersion, ValueError, TypeError):
        return None


def _univers(cls_name: str) -> Any:
    def parse(v: str) -> Any:
        import univers.versions as uv

        try:
            return getattr(uv, cls_name)(v)
        except (uv.InvalidVersion, ValueError, TypeError, AttributeError):
            return None

    return parse


_PARSERS = {
    "pypi": _pypi,
    "debian": _debian,
    "deb": _debian,
    "alpine": _univers("AlpineLinuxVersion"),
    "apk": _univers("AlpineLinuxVersion"),
    "rpm": _univers("RpmVersion"),
    "maven": _univers("MavenVersion"),
    "npm": _semver,
    "go": _semver,
    "golang": _semver,
    "semver": _semver,
}


def _family(ecosystem: str) -> str:
    return ecosystem.split(":", 1)[0].lower()


@lru_cache(maxsize=65536)
def key(ecosystem: str, version: str) -> Any:
    """An orderable value for ``version`` in ``ecosystem`` (``PyPI``, ``Debian:bookworm``,
    ``Alpine:v3.20``, ``npm``, ``Go``, ``Maven``, ``SEMVER``...), or None."""
    parse = _PARSERS.get(_family(ecosystem))
    if parse is None or not version:
        return None
    return parse(version)


def compare(ecosystem: str, a: str, b: str) -> int | None:
    """-1, 0 or 1, or None when either version is invalid."""
    ka, kb = key(ecosystem, a), key(ecosystem, b)
    if ka is None or kb is None:
        return None
    return -1 if ka < kb else (1 if ka > kb else 0)
