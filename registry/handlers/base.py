"""What every handler shares: the registry's parts, the base route, and small checks."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from registry import users
from registry.errors import DIGEST_INVALID, NAME_UNKNOWN
from registry.metadata import Metadata
from registry.reference import Digest, parse_digest
from registry.routes import Route
from registry.storage.blobs import BlobStore
from registry.storage.uploads import Uploads

if TYPE_CHECKING:
    from registry.pullthrough.cache import PullThrough

__all__ = ["API_VERSION", "AUTH", "REGISTRY", "Registry", "base", "may_read", "require_digest"]

API_VERSION = "registry/2.0"
PULL_RECORD_INTERVAL = 60.0

log = logging.getLogger("dockyard.registry")

# Where the auth middleware leaves the caller's access (``registry.auth.Access``); without it
# (no auth installed) every repository is readable.
AUTH = "auth"


@dataclass
class Registry:
    """The registry's layers, reachable from every handler as ``request.app[REGISTRY]``."""

    meta: Metadata
    blobs: BlobStore
    read_only: bool = False
    create_on_push: bool = True  # a push to a repository that does not exist creates it
    pulls: dict[tuple[str, str], float] = field(default_factory=dict)  # last pull time recorded
    # called with (repository, digest) once a manifest push is stored (the scanner's hook); it
    # must not block: it may only schedule work
    on_push: Callable[[str, str], None] | None = None
    # ECR's events (``ECR Image Action`` on a push and a delete, registry.seams.EventSink), with
    # the repository ARN's prefix (``arn:aws:ecr:REGION:ACCOUNT:repository/``); None: not sent
    events: Callable[[str, list[str], dict[str, Any]], None] | None = None
    repository_arn_prefix: str = ""
    # the pull-through cache (registry.pullthrough): asked on every manifest read and on a
    # blob read that misses; None: no pull-through (a read-only registry)
    pull_through: PullThrough | None = None

    def pushed(self, repository: str, digest: str, tag: str | None = None) -> None:
        """Tell the push hook that ``digest`` was stored in ``repository`` (errors logged),
        and send ECR's ``PUSH`` image action."""
        self.image_action("PUSH", repository, digest, tag)
        if self.on_push is None:
            return
        try:
            self.on_push(repository, digest)
        except Exception as exc:  # a hook is never worth failing the push
            log.warning("push hook failed", extra={"repository": repository, "error": str(exc)})

    def image_scan(self, repository: str, digest: str, status: str, counts: dict[str, int], tags: list[str]
                   ) -> None:
        """Send ECR's ``ECR Image Scan`` event for a scan that ended (``COMPLETE`` or ``FAILED``)."""
        if self.events is None:
            return
        detail = {"scan-status": status, "repository-name": repository, "finding-severity-counts": counts,
                  "image-digest": digest, "image-tags": tags}
        try:
            self.events("ECR Image Scan", [self.repository_arn_prefix + repository], detail)
        except Exception as exc:  # an event is never worth failing the scan
            log.warning("scan event not sent", extra={"repository": repository, "error": str(exc)})

    def image_action(self, action: str, repository: str, digest: str, tag: str | None = None) -> None:
        """Send ECR's ``ECR Image Action`` event (``PUSH`` or ``DELETE``), as ECR shapes it."""
        if self.events is None:
            return
        detail: dict[str, Any] = {"result": "SUCCESS", "repository-name": repository, "image-digest": digest,
                                  "action-type": action}
        if tag:
            detail["image-tag"] = tag
        try:
            self.events("ECR Image Action", [self.repository_arn_prefix + repository], detail)
        except Exception as exc:  # an event is never worth failing the push
            log.warning("image event not sent", extra={"repository": repository, "error": str(exc)})

    async def pulled(self, repository: str, digest: str) -> None:
        """Record a pull of ``digest`` (ECR's ``lastRecordedPullTime``), at most once a
        minute per image and process: one dict lookup on the hot path."""
        now = time.time()
        key = (repository, digest)
        if now - self.pulls.get(key, 0.0) < PULL_RECORD_INTERVAL:
            return
        if len(self.pulls) > 100_000:
            self.pulls.clear()
        self.pulls[key] = now
        try:
            await self.meta.record_pull(repository, digest, now)
        except Exception as exc:  # a pull time is never worth failing the pull
            log.warning("pull time not recorded", extra={"repository": repository, "error": str(exc)})

    def check_create(self, repository: str) -> None:
        """Refuse (404 NAME_UNKNOWN) a push to a repository that does not exist when
        repositories are not created on push (``registry_create_on_push = false``)."""
        if not self.create_on_push and not self.meta.repository_exists(repository):
            raise NAME_UNKNOWN(
                detail=repository, message="repository does not exist and create-on-push is off"
            )

    @property
    def uploads(self) -> Uploads:
        return self.blobs.uploads


REGISTRY = web.AppKey("registry", Registry)


def may_read(request: web.Request, registry: Registry, repository: str) -> bool:
    """Whether the caller may pull from ``repository`` (for cross-repository mounts).

    A token carries only the scopes asked for, so for a repository outside it this asks what
    the token's user (or an anonymous caller) is granted now.
    """
    access = request.get(AUTH)
    if access is None or access.can("repository", repository, "pull"):
        return True
    store = registry.meta.store
    if not access.subject:
        return any(users.prefix_covers(p, repository) for p in users.anonymous_prefixes(store))
    user = users.get_user(store, access.subject)
    return user is not None and (user.admin or "pull" in users.allowed_actions(user.grants, repository))


def require_digest(value: str | None) -> Digest:
    """The digest ``value`` names; raises 400 DIGEST_INVALID when missing or malformed."""
    digest = parse_digest(value) if value else None
    if digest is None:
        raise DIGEST_INVALID(detail=value, message="invalid digest")
    return digest


def location(*parts: str) -> str:
    return "/v2/" + "/".join(parts)


async def base(request: web.Request, registry: Registry, target: Route) -> web.Response:
    return web.json_response({})
