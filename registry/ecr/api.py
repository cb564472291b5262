"""ECR's operations on the control port, over the registry's own layers.

``install(platform, registry, auth)`` registers every operation below with the ``ecr``
model's validation on (``InvalidParameterException`` for a request the model refuses), the
reads ``readonly`` (a control worker may answer them), and the download route of
``GetDownloadUrlForLayer`` on the registry port. :class:`Ecr` is what the handlers share:
names, ARNs, the repository lookup that answers ``RepositoryNotFoundException``, and the
repository policies the control API's Authorizer judges a limited key's ``ecr:`` call by
(with its identity policy, AWS's same-account rule: see :mod:`registry.ecr.policy` and
``docs/registry.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from dockyard.aws import model
from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import ECR, Call
from dockyard.iam.authorize import Authorizer
from dockyard.iam.policy import Policy
from dockyard.store import Store
from registry import jwt
from registry.ecr import creation, data, images, layers, lifecycles, pullthrough, repositories, sboms
from registry.ecr.errors import RepositoryNotFoundException
from registry.ecr.policy import PolicyError, applicable
from registry.ecr.policy import parse as parse_policy
from registry.ecr.scans import Scanner
from registry.ecr.tokens import LAYER_ROUTE, Logins, Signer
from registry.errors import BLOB_UNKNOWN, UNAUTHORIZED
from registry.handlers import blobs
from registry.handlers.base import Registry
from registry.reference import is_valid_name
from registry.routes import BLOB, Route

if TYPE_CHECKING:
    from dockyard.platform import Platform
    from registry.auth import Auth

__all__ = ["LAYER_ROUTE", "Ecr", "install"]

Handler = Callable[["Ecr", Call, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Ecr:
    """What every ECR handler shares (see the module docstring)."""

    registry: Registry
    signer: Signer
    account: str
    region: str
    registry_address: str  # host:port of the registry port, as repositoryUri names it
    scheme: str  # of the registry port: http, or https with TLS
    scanner: Scanner | None = None  # None: scans are not run (StartImageScan refuses)

    @property
    def store(self) -> Store:
        return self.registry.meta.store

    def arn(self, name: str) -> str:
        return f"arn:aws:ecr:{self.region}:{self.account}:repository/{name}"

    def uri(self, name: str) -> str:
        return f"{self.registry_address}/{name}"

    def check_registry(self, params: dict[str, Any]) -> None:
        """Refuse (InvalidParameterException) a ``registryId`` other than this registry's."""
        registry_id = params.get("registryId")
        if registry_id is not None and registry_id != self.account:
            raise InvalidParameterException(
                f"Invalid parameter at 'registryId' failed to satisfy constraint: '{registry_id}' is not"
                f" this registry ({self.account})"
            )

    def name(self, params: dict[str, Any], key: str = "repositoryName") -> str:
        """The repository name of the request (checked: ECR's grammar, this registry's id)."""
        self.check_registry(params)
        name = params.get(key)
        if not isinstance(name, str) or not is_valid_name(name):
            raise InvalidParameterException(
                f"Invalid parameter at '{key}' failed to satisfy constraint: 'must satisfy regular expression"
                " '(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*''"
            )
        return name

    def not_found(self, name: str) -> RepositoryNotFoundException:
        return RepositoryNotFoundException(
            f"The repository with name '{name}' does not exist in the registry with id '{self.account}'"
        )

    def repository(self, call: Call, params: dict[str, Any]) -> data.Settings:
        """The settings of the repository the request names (RepositoryNotFoundException)."""
        name = self.name(params)
        found = data.settings(self.store, name)
        if found is None:
            raise self.not_found(name)
        return found

    def repository_for_write(self, params: dict[str, Any]) -> str:
        """The name of the repository a push names: one that exists, or any while pushes
        create repositories (RepositoryNotFoundException otherwise)."""
        name = self.name(params)
        if not self.registry.create_on_push and data.settings(self.store, name) is None:
            raise self.not_found(name)
        return name

    def policy_statements(self, resource: str, principal_arn: str) -> list[Policy]:
        """The statements of the policy of repository ARN ``resource`` naming ``principal_arn``
        (the Authorizer's resource-based policies for ``ecr:``; none for another ARN)."""
        prefix = f"arn:aws:ecr:{self.region}:{self.account}:repository/"
        if not resource.startswith(prefix):
            return []
        found = data.settings(self.store, resource[len(prefix):])
        if found is None or found.policy is None:
            return []
        try:
            return applicable(parse_policy(found.policy), principal_arn, self.account)
        except PolicyError:
            return []


# name -> (handler, readonly)
OPERATIONS: dict[str, tuple[Handler, bool]] = {
    **repositories.OPERATIONS,
    **images.OPERATIONS,
    **layers.OPERATIONS,
    **lifecycles.OPERATIONS,
    **pullthrough.OPERATIONS,
    **creation.OPERATIONS,
    **sboms.OPERATIONS,
}


def _bind(ecr: Ecr, handler: Handler) -> Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]:
    async def operation(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await handler(ecr, call, params)

    return operation


def install(platform: Platform, registry: Registry, auth: Auth) -> Ecr:
    """Register the ECR operations and the layer download route; let user ``AWS`` log in to
    the registry with a ``GetAuthorizationToken`` password."""
    config = platform.config
    key = jwt.load_or_create_key(Path(config.data_dir) / "registry-token-key.pem")
    signer = Signer(key)
    scheme = "https" if (config.tls_cert or config.tls_self_signed) else "http"
    ecr = Ecr(
        registry, signer, config.account_id, config.region, config.address(config.registry_port), scheme
    )
    if not config.registry_read_only:
        ecr.scanner = scanner(platform, registry)
    if isinstance(platform.ops.authorize, Authorizer):
        platform.ops.authorize.resource_policies["ecr"] = ecr.policy_statements
    modelled = model.service(ECR).operation_names  # GetImageSbom is Dockyard's own
    for name, (handler, readonly) in OPERATIONS.items():
        platform.ops.add(
            ECR, name, _bind(ecr, handler), readonly=readonly,
            validate=InvalidParameterException if name in modelled else None,
        )
    if config.registry_create_on_push and not config.registry_read_only:
        registry.meta.on_create = creation.on_create
    auth.ecr = Logins(platform.store, signer, config.account_id, config.region)

    async def download(request: web.Request) -> web.StreamResponse:
        found = signer.layer_of(request.query.get("token", ""))
        if found is None:
            raise UNAUTHORIZED(message="the download URL is not valid or has expired")
        repository, digest = found
        if registry.blobs.linked_size(repository, digest) is None:
            raise BLOB_UNKNOWN(detail=digest)
        return await blobs.get_blob(request, registry, Route(BLOB, repository, digest))

    platform.registry.router.add_get(LAYER_ROUTE, download)
    if ecr.scanner is not None:
        platform.contexts.append(_closing(ecr.scanner))
    if config.lifecycle_interval > 0 and not config.registry_read_only:
        platform.contexts.append(lifecycles.periodic(registry.meta))
    return ecr


def wants_scan(store: Store, repository: str) -> bool:
    """Whether a push to ``repository`` is scanned: its ``scanOnPush``, or a registry scanning
    rule (scan on push or continuous) whose filter matches it."""
    repo = data.settings(store, repository)
    if repo is None:
        return False
    config = data.registry_setting(store, repositories.SCANNING) or {"rules": []}
    frequency, _ = repositories.scan_frequency(config, repo)
    return repo.scan_on_push or frequency != "MANUAL"


def continuous(store: Store) -> list[str]:
    """The repositories a CONTINUOUS_SCAN rule of the registry scanning configuration matches."""
    config = data.registry_setting(store, repositories.SCANNING) or {"rules": []}
    return [
        repo.name
        for repo in data.all_settings(store)
        if repositories.scan_frequency(config, repo)[0] == "CONTINUOUS_SCAN"
    ]


def scanner(platform: Platform, registry: Registry) -> Scanner:
    """The scanner over ``registry``'s blobs and ``<data-dir>/vulndb.sqlite``, hooked to pushes."""
    from registry.scan import blob_store_opener
    from registry.scan.vulndb import default_path

    found = Scanner(registry.meta, blob_store_opener(registry.blobs), default_path(platform.config.data_path))
    found.wants_scan = wants_scan
    found.continuous = continuous
    registry.on_push = found.pushed

    def completed(repository: str, digest: str, status: str, counts: dict[str, int]) -> None:
        tags = [t for image in data.image_rows(registry.meta.store, repository) if image.digest == digest
                for t in image.tags]
        registry.image_scan(repository, digest, status, counts, tags)

    found.on_complete = completed
    return found


def _closing(found: Scanner) -> Callable[[Platform], AsyncIterator[None]]:
    """A start/stop hook: the continuous-scanning watch, and at shutdown the scans still
    running cancelled."""

    async def context(platform: Platform) -> AsyncIterator[None]:
        watch = asyncio.create_task(found.watch(), name="registry-scan-watch")
        try:
            yield
        finally:
            watch.cancel()
            try:
                await watch
            except asyncio.CancelledError:
                pass
            await found.close()

    return context
