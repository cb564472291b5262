"""Pure routing of ``/v2/...`` paths: which resource, which repository, which reference.

Repository names contain slashes, so a path is read from its end: ``/v2/shop/web/blobs/<d>``
is the blob ``<d>`` of ``shop/web``. One function does it so that the handlers and the auth
middleware agree on what a path names (``route(path).name`` is the repository to authorise).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "BASE",
    "BLOB",
    "CATALOG",
    "MANIFEST",
    "REFERRERS",
    "TAGS",
    "UPLOAD",
    "UPLOADS",
    "Route",
    "route",
]

BASE = "base"
CATALOG = "catalog"
TAGS = "tags"
MANIFEST = "manifest"
BLOB = "blob"
UPLOADS = "uploads"  # POST: start an upload (or mount, or monolithic)
UPLOAD = "upload"  # one upload session
REFERRERS = "referrers"


@dataclass(frozen=True)
class Route:
    kind: str
    name: str = ""
    reference: str = ""


def route(path: str) -> Route | None:
    """The resource ``path`` names, or None if it names none (name not yet validated)."""
    if not path.startswith("/v2/"):
        return None
    rest = path[4:]
    if rest == "":
        return Route(BASE)
    if rest in ("_catalog", "_catalog/"):
        return Route(CATALOG)
    segs = rest.split("/")
    n = len(segs)
    if n >= 3 and segs[-2:] == ["tags", "list"]:
        return Route(TAGS, "/".join(segs[:-2]))
    if n >= 4 and segs[-3:] == ["blobs", "uploads", ""]:
        return Route(UPLOADS, "/".join(segs[:-3]))
    if n >= 3 and segs[-2:] == ["blobs", "uploads"]:
        return Route(UPLOADS, "/".join(segs[:-2]))
    if n >= 4 and segs[-3:-1] == ["blobs", "uploads"] and segs[-1]:
        return Route(UPLOAD, "/".join(segs[:-3]), segs[-1])
    if n >= 3 and segs[-2] in ("manifests", "blobs", "referrers") and segs[-1]:
        kind = {"manifests": MANIFEST, "blobs": BLOB, "referrers": REFERRERS}[segs[-2]]
        return Route(kind, "/".join(segs[:-2]), segs[-1])
    return None
