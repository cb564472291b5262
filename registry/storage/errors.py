"""Domain errors of the blob layer; handlers map them to OCI wire errors."""

from __future__ import annotations

__all__ = ["ChunkOutOfOrder", "DigestMismatch", "SizeMismatch", "UploadUnknown"]


class UploadUnknown(LookupError):
    """No such upload session (never started, finished, cancelled or lost)."""


class ChunkOutOfOrder(ValueError):
    """A chunk does not start at the upload's current offset (``offset`` is where it is)."""

    def __init__(self, offset: int) -> None:
        super().__init__(f"chunk must start at offset {offset}")
        self.offset = offset


class SizeMismatch(ValueError):
    """The body was shorter or longer than its declared length; nothing of it was kept."""


class DigestMismatch(ValueError):
    """The uploaded bytes do not hash to the digest given; the upload was discarded."""
