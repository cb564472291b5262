"""The registry part: the OCI Distribution API on the registry port.

``install`` builds the layers (filesystem storage under ``<data_dir>/registry``, metadata in
the state store, upload sessions), puts them on the registry app under ``REGISTRY``, and
routes every ``/v2/...`` path through one dispatcher (with ``registry_read_only``, over a table
without write methods, and without garbage collection). The OCI error middleware is added here;
an auth middleware added after it runs inside it, so its ``RegistryError``\\ s become OCI JSON.
It returns a :class:`RegistryPart` with what other parts use (the pull credential).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry import auth, gc, pull, users
from registry.ecr import api as ecr
from registry.ecr import data as ecr_data
from registry.ecr import scans
from registry.handlers import Registry, mount
from registry.metadata import MIGRATIONS as METADATA_MIGRATIONS
from registry.metadata import Metadata
from registry.pullthrough.cache import PullThrough
from registry.seams import EventSink, SecretLookup
from registry.storage.blobs import BlobStore
from registry.storage.driver import FilesystemDriver

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "RegistryPart", "install"]

MIGRATIONS = [
    *users.MIGRATIONS, *METADATA_MIGRATIONS, *scans.MIGRATIONS, *pull.MIGRATIONS, *ecr_data.MIGRATIONS,
]


@dataclass(frozen=True)
class RegistryPart:
    """What the registry offers other parts: ``pull_auth`` is the runner's ``PullAuth``;
    ``send_events_to`` hands it the sink of ECR's events (``registry.seams.EventSink``)."""

    pull_auth: pull.PullCredentials
    registry: Registry | None = None

    def send_events_to(self, sink: EventSink) -> None:
        """Send ``ECR Image Action`` events (pushes and deletes in this process) to ``sink``."""
        if self.registry is not None:
            self.registry.events = sink

def install(platform: Platform, secrets: SecretLookup | None = None) -> RegistryPart:
    """Install the registry; ``secrets`` resolves the ``credentialArn`` of pull-through cache
    rules (``registry.seams``; without it rules reach their upstreams anonymously only)."""
    config = platform.config
    driver = FilesystemDriver(config.data_path / "registry")
    meta = Metadata(platform.store)
    read_only = config.registry_read_only
    blobs = BlobStore(driver, meta)
    registry = Registry(meta, blobs, read_only, config.registry_create_on_push)
    if not read_only:
        registry.pull_through = PullThrough(
            meta, blobs, secrets, config.pull_through_refresh, config.pull_through_timeout
        )
        platform.contexts.append(_closing(registry.pull_through))
    mount(platform.registry, registry)
    ecr.install(platform, registry, auth.install(platform))
    gc.install(platform)
    registry.repository_arn_prefix = f"arn:aws:ecr:{config.region}:{config.account_id}:repository/"
    return RegistryPart(pull.PullCredentials(platform.store), registry)


def _closing(cache: PullThrough) -> Callable[[Platform], AsyncIterator[None]]:
    """A start/stop hook: at shutdown, the upstream fetches still running are cancelled and
    the upstream client closed."""

    async def context(platform: Platform) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await cache.close()

    return context
