"""Pure checks of the distribution-spec's identifiers: repository names, tags and digests.

* A name is path components of ``[a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*`` joined by ``/``, at most
  255 characters (so ``..``, empty components and upper case are invalid).
* A tag is ``[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}``.
* A digest is ``algorithm:hex``; Dockyard accepts ``sha256`` (64 hex) and ``sha512`` (128 hex),
  lower-case hex only, the only two the OCI image spec registers.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

__all__ = ["ALGORITHMS", "Digest", "is_digest", "is_tag", "is_valid_name", "parse_digest"]

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}")
MAX_NAME = 255

ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_HEX = re.compile(r"[a-f0-9]+")


def is_valid_name(name: str) -> bool:
    """True if ``name`` is a repository name the spec allows."""
    return len(name) <= MAX_NAME and _NAME.fullmatch(name) is not None


def is_tag(reference: str) -> bool:
    return _TAG.fullmatch(reference) is not None


@dataclass(frozen=True)
class Digest:
    """A parsed, valid digest."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def hasher(self) -> hashlib._Hash:
        return hashlib.new(self.algorithm)


def parse_digest(value: str) -> Digest | None:
    """The digest ``value`` names, or None if it is malformed or of an unsupported algorithm."""
    algorithm, sep, hexpart = value.partition(":")
    length = ALGORITHMS.get(algorithm)
    if not sep or length is None or len(hexpart) != length or not _HEX.fullmatch(hexpart):
        return None
    return Digest(algorithm, hexpart)


def is_digest(value: str) -> bool:
    return parse_digest(value) is not None


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"
