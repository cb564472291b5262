"""The whole storage layout, relative to the driver's root (``<data_dir>/registry``)::

    blobs/
      sha256/
        ab/
          abcdef0123...            one blob's bytes, written once (renamed into place after
                                   its digest checked), shared by every repository
      sha512/...
    uploads/
      <upload id>/
        data                       the bytes received so far (offset and repository are in the
                                   state store, the hash state in memory: after a restart the
                                   upload is re-hashed from here)

Which repositories may read a blob (links), manifests, tags and referrers live in the state
store (``registry.metadata``), not here.
"""

from __future__ import annotations

from registry.reference import Digest

__all__ = ["BLOBS_ROOT", "blob_path", "upload_data_path", "upload_dir", "uploads_root"]


BLOBS_ROOT = "blobs"


def blob_path(digest: Digest) -> str:
    return f"{BLOBS_ROOT}/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


def uploads_root() -> str:
    return "uploads"


def upload_dir(upload_id: str) -> str:
    return f"uploads/{upload_id}"


def upload_data_path(upload_id: str) -> str:
    return f"uploads/{upload_id}/data"
