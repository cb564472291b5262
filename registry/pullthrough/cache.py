"""The pull-through cache the manifest and blob handlers consult (see the package docstring).

:meth:`PullThrough.manifest` is asked on every manifest GET/HEAD: for a repository no rule
covers it returns what the registry holds. For a covered one it fetches a manifest the registry
lacks, and re-checks a cached tag upstream once ``refresh`` seconds have passed since its last
check (``pull_through_refresh``; the cached copy is served when the upstream cannot be reached
or errs, and then checked again only after :data:`RETRY_AFTER_FAILURE`). An image manifest is
stored only once every blob it names is stored (fetched, or linked when another repository
holds it already); an index is stored alone, and each child is fetched when a client asks for
it by digest. :meth:`PullThrough.blob` fills a blob a covered repository lacks. The repository
is created by the first store, as ECR does.

Fetches are single-flight: concurrent asks for the same manifest or blob share one upstream
request, run as a task of their own (a client going away does not cancel what others wait
for). A blob streams from the upstream through an upload session (``Uploads``: hashed while
written, renamed into place only when its digest and size check), so nothing partial is ever
stored, and memory stays bounded whatever the blob's size. Errors reach the client as OCI
errors naming the upstream: 502 for a bad answer, 504 for none within ``timeout``, 404 for
something the upstream does not have.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from typing import TypeVar

import aiohttp

from registry.ecr import data
from registry.errors import BLOB_UNKNOWN, MANIFEST_UNKNOWN, RegistryError
from registry.manifest import IMAGE_TYPES
from registry.metadata import BlobsMissing, Metadata, StoredManifest
from registry.pullthrough.rules import (
    CredentialsInvalid,
    Rule,
    RuleError,
    credentials,
    match,
    needs_refresh,
    normalize_url,
)
from registry.pullthrough.upstream import Upstream, UpstreamError
from registry.reference import is_tag, parse_digest
from registry.seams import SecretLookup
from registry.storage.blobs import BlobStore
from registry.storage.errors import DigestMismatch, SizeMismatch, UploadUnknown

__all__ = ["PARALLEL_BLOBS", "RETRY_AFTER_FAILURE", "PullThrough"]

log = logging.getLogger("dockyard.registry.pullthrough")
PARALLEL_BLOBS = 4  # blobs of one manifest fetched at once
RETRY_AFTER_FAILURE = 60.0  # seconds a cached tag is served unchecked after a failed check
T = TypeVar("T")


class PullThrough:
    """The pull-through cache over the registry's metadata and blob store."""

    def __init__(
        self,
        meta: Metadata,
        blobs: BlobStore,
        secrets: SecretLookup | None = None,
        refresh: float = 86400.0,
        timeout: float = 30.0,
    ) -> None:
        self.meta, self.blobs, self.secrets = meta, blobs, secrets
        self.refresh, self.timeout = refresh, timeout
        self._session: aiohttp.ClientSession | None = None
        self._upstreams: dict[tuple[str, tuple[str, str] | None], Upstream] = {}
        self._flights: dict[tuple[str, ...], asyncio.Task] = {}

    # -- rules and upstreams -------------------------------------------------------------
    def rule_for(self, repository: str) -> tuple[Rule, str] | None:
        """The rule covering ``repository`` and its upstream name (one small query)."""
        return match(data.rules(self.meta.store), repository)

    def resolve_credentials(self, rule: Rule) -> tuple[str, str] | None:
        """The rule's ``(username, accessToken)`` (None: anonymous). Raises LookupError when
        its secret is missing or unreachable, CredentialsInvalid when it is malformed."""
        if rule.credential_arn is None:
            return None
        if self.secrets is None:
            raise LookupError("no secret store is connected to the registry")
        value = self.secrets(rule.credential_arn)
        if value is None:
            raise LookupError(f"secret {rule.credential_arn} is not in Dockyard's secret store")
        return credentials(value)

    def upstream(self, rule: Rule) -> Upstream:
        """The client of the rule's upstream (kept per URL and credentials, with its tokens)."""
        try:
            creds = self.resolve_credentials(rule)
        except (LookupError, CredentialsInvalid) as exc:
            raise UpstreamError(f"credentials for upstream {rule.upstream_url}: {exc}") from None
        try:
            url = normalize_url(rule.upstream_url)
        except RuleError as exc:
            raise UpstreamError(str(exc)) from None
        key = (url, creds)
        found = self._upstreams.get(key)
        if found is None:
            if self._session is None or self._session.closed:
                self._session = aiohttp.ClientSession(auto_decompress=False)
            if len(self._upstreams) > 256:
                self._upstreams.clear()
            found = self._upstreams[key] = Upstream(self._session, url, creds, self.timeout)
        return found

    async def validate(self, rule: Rule) -> str | None:
        """Contact the rule's upstream (``/v2/``, authenticated): None when it answers, else
        why not."""
        try:
            await self.upstream(rule).check()
        except UpstreamError as exc:
            return exc.message
        return None

    async def close(self) -> None:
        for task in list(self._flights.values()):
            task.cancel()
        if self._session is not None:
            await self._session.close()

    # -- single flight -------------------------------------------------------------------
    async def _single(self, key: tuple[str, ...], start: Callable[[], Awaitable[T]]) -> T:
        task = self._flights.get(key)
        if task is None:
            task = asyncio.ensure_future(start())
            self._flights[key] = task

            def done(t: asyncio.Task) -> None:
                if self._flights.get(key) is t:
                    del self._flights[key]
                if not t.cancelled():
                    t.exception()  # retrieved: a flight nobody waits for any more logs nothing

            task.add_done_callback(done)
        return await asyncio.shield(task)

    # -- manifests -----------------------------------------------------------------------
    async def manifest(
        self, repository: str, reference: str, cached: StoredManifest | None
    ) -> StoredManifest | None:
        """What a manifest GET/HEAD of ``repository:reference`` serves (``cached``: what the
        registry holds now). Raises RegistryError when a manifest it must fetch cannot be."""
        if cached is not None and ":" in reference:
            return cached  # a digest names the same bytes for ever
        if ":" not in reference and not is_tag(reference):
            return cached
        covered = self.rule_for(repository)
        if covered is None:
            return cached
        if cached is not None and not needs_refresh(
            data.tag_checked(self.meta.store, repository, reference), time.time(), self.refresh
        ):
            return cached
        rule, name = covered
        try:
            return await self._single(
                ("manifest", repository, reference),
                lambda: self._fetch_manifest(rule, name, repository, reference, cached),
            )
        except UpstreamError as exc:
            if cached is not None:
                log.info(
                    "upstream unavailable, serving the cached tag",
                    extra={"repository": repository, "tag": reference, "error": exc.message},
                )
                # not asked again before RETRY_AFTER_FAILURE (or the refresh interval, if shorter)
                checked = time.time() - max(0.0, self.refresh - RETRY_AFTER_FAILURE)
                await data.mark_checked(self.meta.store, repository, reference, checked)
                return cached
            raise _wire(exc, MANIFEST_UNKNOWN, reference) from None

    async def _fetch_manifest(
        self, rule: Rule, name: str, repository: str, reference: str, cached: StoredManifest | None
    ) -> StoredManifest:
        upstream = self.upstream(rule)
        tag = None if ":" in reference else reference
        if cached is not None and tag is not None:
            current = await upstream.head_digest(name, tag)
            if current == cached.digest:
                await data.mark_checked(self.meta.store, repository, tag, time.time())
                return cached
        fetched = await upstream.manifest(name, reference)
        if fetched.media_type in IMAGE_TYPES:
            limit = asyncio.Semaphore(PARALLEL_BLOBS)

            async def one(digest: str, size: int) -> None:
                async with limit:
                    await self._blob(rule, name, repository, digest, size)

            await asyncio.gather(*(one(b.digest, b.size) for b in fetched.manifest.blobs))
        try:
            await self.meta.put_manifest(repository, fetched.digest, fetched.body, fetched.manifest, tag)
        except BlobsMissing:
            raise UpstreamError("a blob of the manifest was garbage collected while it was fetched") from None
        if tag is not None:
            await data.mark_checked(self.meta.store, repository, tag, time.time())
        log.info(
            "pulled through",
            extra={
                "repository": repository,
                "reference": reference,
                "digest": fetched.digest,
                "upstream": rule.upstream_url,
            },
        )
        return StoredManifest(fetched.digest, fetched.media_type, fetched.body)

    # -- blobs ---------------------------------------------------------------------------
    async def blob(self, repository: str, digest: str) -> bool:
        """Make ``digest`` readable in ``repository`` if a rule covers it (fetched or linked);
        False when no rule does. Raises RegistryError when it cannot be fetched."""
        covered = self.rule_for(repository)
        if covered is None:
            return False
        rule, name = covered
        try:
            await self._blob(rule, name, repository, digest, None)
        except UpstreamError as exc:
            raise _wire(exc, BLOB_UNKNOWN, digest) from None
        return True

    async def _blob(self, rule: Rule, name: str, repository: str, digest: str, size: int | None) -> None:
        if self.blobs.linked_size(repository, digest) is not None:
            return
        for _ in range(2):  # a fetch by another repository: link what it stored
            if self.meta.blob_size(digest) is not None and await self.blobs.mount(repository, digest):
                return
            await self._single(
                ("blob", digest), lambda: self._fetch_blob(rule, name, repository, digest, size)
            )
            if self.blobs.linked_size(repository, digest) is not None:
                return
        raise UpstreamError(f"blob {digest} from upstream {rule.upstream_url} could not be stored")

    async def _fetch_blob(
        self, rule: Rule, name: str, repository: str, digest: str, size: int | None
    ) -> None:
        parsed = parse_digest(digest)
        if parsed is None:
            raise UpstreamError(f"invalid digest {digest}", 400)
        upstream = self.upstream(rule)
        session = await self.blobs.uploads.start(repository, persistent=False)
        try:
            async with upstream.blob(name, digest) as (length, chunks):
                if size is not None and length is not None and length != size:
                    raise UpstreamError(
                        f"upstream {rule.upstream_url} sent blob {digest} with length {length},"
                        f" not the manifest's {size}"
                    )
                expected = length if length is not None else size
                await self.blobs.uploads.append(
                    session, _bounded(chunks, expected, upstream.url, digest), length=expected
                )
            await self.blobs.uploads.finish(session, parsed)
        except SizeMismatch as exc:
            raise UpstreamError(
                f"upstream {rule.upstream_url} sent blob {digest} of the wrong length: {exc}"
            ) from None
        except DigestMismatch as exc:
            raise UpstreamError(
                f"upstream {rule.upstream_url} sent wrong content for {digest}: {exc}"
            ) from None
        except UploadUnknown:
            raise UpstreamError(
                f"blob {digest} from upstream {rule.upstream_url} was collected meanwhile"
            ) from None
        finally:
            with suppress(Exception):
                await self.blobs.uploads.cancel(session)  # nothing left after a finish


async def _bounded(
    chunks: AsyncIterator[bytes], limit: int | None, url: str, digest: str
) -> AsyncIterator[bytes]:
    """``chunks``, refused as soon as they pass ``limit`` bytes (a lying upstream fills no disk)."""
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if limit is not None and total > limit:
            raise UpstreamError(f"upstream {url} sent more than {limit} bytes for blob {digest}")
        yield chunk


def _wire(exc: UpstreamError, code: Callable[..., RegistryError], detail: str) -> RegistryError:
    """The OCI error a client gets: ``code`` (MANIFEST_UNKNOWN / BLOB_UNKNOWN) with the
    upstream's status (404 missing, 502 bad answer, 504 none in time) and its message."""
    return code(detail=detail, message=exc.message, status=404 if exc.missing else exc.status)
