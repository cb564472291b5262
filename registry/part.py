"""The registry part: the OCI Distribution API on the registry port.

``install`` builds the layers (filesystem storage under ``<data_dir>/registry``, metadata in
the state store, upload sessions), puts them on the registry app under ``REGISTRY``, and
routes every ``/v2/...`` path through one dispatcher. The OCI error middleware is added here;
an auth middleware added after it runs inside it, so its ``RegistryError``\\ s become OCI JSON.
It returns a :class:`RegistryPart` with what other parts use (the pull credential).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from registry import auth, gc, pull, users
from registry.errors import error_middleware
from registry.handlers import REGISTRY, Registry, add_version_header, dispatch
from registry.metadata import MIGRATIONS as METADATA_MIGRATIONS
from registry.metadata import Metadata
from registry.storage.driver import FilesystemDriver
from registry.storage.uploads import Uploads

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "RegistryPart", "install"]

MIGRATIONS = [*users.MIGRATIONS, *METADATA_MIGRATIONS, *pull.MIGRATIONS]


@dataclass(frozen=True)
class RegistryPart:
    """What the registry offers other parts: ``pull_auth`` is the runner's ``PullAuth``."""

    pull_auth: pull.PullCredentials


def install(platform: Platform) -> RegistryPart:
    app = platform.registry
    driver = FilesystemDriver(platform.config.data_path / "registry")
    meta = Metadata(platform.store)
    app[REGISTRY] = Registry(meta, driver, Uploads(driver, meta))
    app.middlewares.append(error_middleware)
    auth.install(platform)
    gc.install(platform)
    app.on_response_prepare.append(add_version_header)
    app.router.add_route("*", "/v2", dispatch)
    app.router.add_route("*", "/v2/{tail:.*}", dispatch)
    return RegistryPart(pull.PullCredentials(platform.store))
