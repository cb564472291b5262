"""The client of one upstream OCI registry (aiohttp), as a pull-through cache needs it.

Authentication follows what the upstream asks for in its ``401`` challenge: ``Basic`` with the
rule's credentials, or ``Bearer``, the Docker token flow (``GET <realm>?service=..&scope=
repository:<name>:pull`` with the credentials as Basic auth, or anonymously; the answer's
``token`` or ``access_token`` is kept per repository until its ``expires_in``). Every request
is bounded by ``timeout``: a manifest read as a whole, a blob by connect and by each read (a
big blob may take long, a silent upstream may not). A manifest is read up to
:data:`~registry.manifest.MAX_MANIFEST` bytes; a blob is handed on as an async iterator of
chunks, never held whole. Whatever goes wrong is an :class:`UpstreamError` naming the upstream.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp

from registry.manifest import MANIFEST_TYPES, MAX_MANIFEST, Manifest, ManifestError, parse_manifest
from registry.pullthrough.challenge import parse_challenge

__all__ = ["CHUNK", "Fetched", "Upstream", "UpstreamError"]

CHUNK = 1 << 16
ACCEPT = ", ".join(sorted(MANIFEST_TYPES))
TOKEN_TTL = 60.0  # a token's life when the token server gives no expires_in
MAX_TOKEN_ANSWER = 64 * 1024


class UpstreamError(Exception):
    """The upstream could not give what was asked: ``status`` is what the client is answered
    (502 a bad answer, 504 no answer in time, 404 ``missing`` upstream)."""

    def __init__(self, message: str, status: int = 502, missing: bool = False) -> None:
        super().__init__(message)
        self.message, self.status, self.missing = message, status, missing


@dataclass(frozen=True)
class Fetched:
    """A manifest read from upstream, its digest checked."""

    digest: str
    media_type: str
    body: bytes
    manifest: Manifest


class Upstream:
    """One upstream registry at ``url`` (``scheme://host[:port][/path]``), with optional
    ``(username, accessToken)`` credentials."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, credentials: tuple[str, str] | None, timeout: float
    ) -> None:
        self.session, self.url, self.credentials, self.timeout = (
            session,
            url.rstrip("/"),
            credentials,
            timeout,
        )
        self._tokens: dict[str, tuple[str, float]] = {}  # scope -> (Authorization value, expiry)

    # -- auth --------------------------------------------------------------------------
    def _basic(self) -> aiohttp.BasicAuth | None:
        return None if self.credentials is None else aiohttp.BasicAuth(*self.credentials)

    async def _authorize(self, header: str | None, repository: str) -> str | None:
        """The Authorization value that answers challenge ``header``; None: nothing to offer."""
        challenge = parse_challenge(header)
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            basic = self._basic()
            return None if basic is None else basic.encode()
        if challenge.scheme != "bearer" or not challenge.realm:
            return None
        params = {k: v for k, v in challenge.params.items() if k in ("service", "scope")}
        if repository:
            params["scope"] = f"repository:{repository}:pull"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self.session.get(
                challenge.realm, params=params, auth=self._basic(), timeout=timeout
            ) as resp:
                if resp.status in (401, 403):
                    raise UpstreamError(
                        f"upstream {self.url} refused the credentials ({resp.status} from its token service)"
                    )
                if resp.status != 200:
                    raise UpstreamError(f"upstream {self.url} token service answered {resp.status}")
                raw = await _read_bounded(resp, MAX_TOKEN_ANSWER + 1)
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.url} token service failed: {exc}") from None
        try:
            doc = json.loads(raw) if len(raw) <= MAX_TOKEN_ANSWER else None
        except ValueError:
            doc = None
        token = doc.get("token") or doc.get("access_token") if isinstance(doc, dict) else None
        if not isinstance(token, str) or not token:
            raise UpstreamError(f"upstream {self.url} token service gave no token")
        ttl = doc.get("expires_in")
        ttl = float(ttl) if isinstance(ttl, int | float) and ttl > 0 else TOKEN_TTL
        value = f"Bearer {token}"
        self._tokens[repository] = (value, time.monotonic() + max(ttl - 10, ttl / 2))
        return value

    def _cached(self, repository: str) -> dict[str, str]:
        found = self._tokens.get(repository)
        if found is not None and found[1] > time.monotonic():
            return {"Authorization": found[0]}
        return {}

    @asynccontextmanager
    async def _request(
        self, method: str, path: str, repository: str, headers: dict[str, str], timeout: aiohttp.ClientTimeout
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request, answering a 401 challenge once; the response is released on exit."""
        url = f"{self.url}{path}"
        try:
            resp = await self.session.request(
                method, url, headers={**headers, **self._cached(repository)}, timeout=timeout
            )
            if resp.status == 401:
                challenge = resp.headers.get("WWW-Authenticate")
                resp.release()
                auth = await self._authorize(challenge, repository)
                if auth is None:
                    raise UpstreamError(f"upstream {self.url} requires credentials the rule does not give")
                resp = await self.session.request(
                    method, url, headers={**headers, "Authorization": auth}, timeout=timeout
                )
                if resp.status == 401:
                    resp.release()
                    raise UpstreamError(f"upstream {self.url} refused the rule's credentials")
            try:
                yield resp
            finally:
                resp.release()
        except TimeoutError:
            raise UpstreamError(f"upstream {self.url} did not answer within {self.timeout:g}s", 504) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.url} failed: {exc or type(exc).__name__}") from None

    # -- the registry API --------------------------------------------------------------
    async def check(self) -> None:
        """``GET /v2/``, authenticated: raises UpstreamError unless the upstream answers 200."""
        async with self._request("GET", "/v2/", "", {}, aiohttp.ClientTimeout(total=self.timeout)) as resp:
            if resp.status != 200:
                raise UpstreamError(f"upstream {self.url} answered {resp.status} to /v2/")

    async def head_digest(self, repository: str, reference: str) -> str | None:
        """The digest ``reference`` names upstream now (HEAD; None when the upstream does not say)."""
        path = f"/v2/{repository}/manifests/{reference}"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with self._request("HEAD", path, repository, {"Accept": ACCEPT}, timeout) as resp:
            if resp.status == 404:
                raise UpstreamError(
                    f"upstream {self.url} has no manifest {repository}:{reference}", 404, True
                )
            if resp.status != 200:
                raise UpstreamError(f"upstream {self.url} answered {resp.status} for manifest {reference}")
            return resp.headers.get("Docker-Content-Digest")

    async def manifest(self, repository: str, reference: str) -> Fetched:
        """The manifest ``reference`` (tag or digest) names upstream, validated: its digest is
        the reference's (or the ``Docker-Content-Digest`` the upstream names), and it parses."""
        path = f"/v2/{repository}/manifests/{reference}"
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        try:
            async with self._request("GET", path, repository, {"Accept": ACCEPT}, timeout) as resp:
                if resp.status == 404:
                    raise UpstreamError(
                        f"upstream {self.url} has no manifest {repository}:{reference}", 404, True
                    )
                if resp.status != 200:
                    raise UpstreamError(
                        f"upstream {self.url} answered {resp.status} for manifest {reference}"
                    )
                if resp.content_length is not None and resp.content_length > MAX_MANIFEST:
                    raise UpstreamError(f"upstream {self.url} sent a manifest over {MAX_MANIFEST} bytes")
                body = await _read_bounded(resp, MAX_MANIFEST + 1)
                if len(body) > MAX_MANIFEST:
                    raise UpstreamError(f"upstream {self.url} sent a manifest over {MAX_MANIFEST} bytes")
                named = resp.headers.get("Docker-Content-Digest")
                content_type = resp.headers.get("Content-Type", "").split(";")[0].strip() or None
        except TimeoutError:  # a body that stalls after the headers
            raise UpstreamError(f"upstream {self.url} did not answer within {self.timeout:g}s", 504) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(f"upstream {self.url} failed: {exc or type(exc).__name__}") from None
        algorithm = reference.split(":", 1)[0] if ":" in reference else "sha256"
        if algorithm not in ("sha256", "sha512"):
            raise UpstreamError(f"unsupported digest algorithm {algorithm}", 400)
        digest = f"{algorithm}:{hashlib.new(algorithm, body).hexdigest()}"
        expected = reference if ":" in reference else named
        if expected is not None and expected.startswith(f"{algorithm}:") and expected != digest:
            raise UpstreamError(f"upstream {self.url} sent a manifest with digest {digest}, not {expected}")
        if content_type not in MANIFEST_TYPES:
            content_type = None  # let the body's mediaType say
        try:
            manifest = parse_manifest(body, content_type)
        except ManifestError as exc:
            raise UpstreamError(f"upstream {self.url} sent an invalid manifest: {exc}") from None
        return Fetched(digest, manifest.media_type, body, manifest)

    @asynccontextmanager
    async def blob(
        self, repository: str, digest: str
    ) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """``(Content-Length or None, chunks)`` of blob ``digest`` (redirects followed), while
        the block runs. Reads are bounded by the timeout each, not as a whole."""
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self.timeout, sock_connect=self.timeout, sock_read=self.timeout
        )
        async with self._request("GET", f"/v2/{repository}/blobs/{digest}", repository, {}, timeout) as resp:
            if resp.status == 404:
                raise UpstreamError(f"upstream {self.url} has no blob {digest}", 404, True)
            if resp.status != 200:
                raise UpstreamError(f"upstream {self.url} answered {resp.status} for blob {digest}")
            yield resp.content_length, self._chunks(resp)

    async def _chunks(self, resp: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in resp.content.iter_chunked(CHUNK):
                yield chunk
        except TimeoutError:
            raise UpstreamError(
                f"upstream {self.url} stalled for {self.timeout:g}s sending a blob", 504
            ) from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(
                f"upstream {self.url} broke off a blob: {exc or type(exc).__name__}"
            ) from None


async def _read_bounded(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, or its first ``limit`` bytes once it is longer (the caller refuses those)."""
    buf = bytearray()
    async for chunk in resp.content.iter_chunked(CHUNK):
        buf += chunk
        if len(buf) >= limit:
            return bytes(buf[:limit])
    return bytes(buf)
