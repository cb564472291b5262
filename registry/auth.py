"""Registry authentication: the Docker registry token flow, on the registry port.

How a client gets in (docker/distribution ``docs/spec/auth/token.md``):

1. It calls the API without a token and gets ``401`` with OCI error code ``UNAUTHORIZED`` and
   ``WWW-Authenticate: Bearer realm="<registry>/token",service="dockyard",scope="..."``
   (no ``scope`` for ``/v2/`` itself).
2. It asks ``GET /token?service=dockyard&scope=repository:shop/web:pull,push`` with HTTP Basic
   credentials of a Dockyard user, or none (anonymous); or ``POST /token`` with a form
   ``grant_type=password&username=..&password=..&scope=..`` (OAuth2 password grant). A wrong
   password answers 401; otherwise the answer is ``{"token", "access_token", "expires_in",
   "issued_at"}`` where the ES256 JWT carries only the granted actions (:mod:`registry.scopes`).
3. It repeats the call with ``Authorization: Bearer <token>``. The :class:`Auth` middleware
   verifies the token (signature, audience, expiry) and that it holds every scope the request
   needs; a valid token without them gets ``401`` ``DENIED`` with the needed scope in the
   challenge, so that the client can fetch a better token.

Anonymous pull: a pull from a repository under an anonymous-pull prefix is let through even
without a token (docker fetches an anonymous token anyway). ``/v2/`` always needs a token, or
``docker login`` could not tell whether credentials are good.

Password checks cannot be used as a lever (:meth:`Auth.authenticate`): failures are limited
per client address and per user (:mod:`registry.throttle`; over the limit, ``429``
``TOOMANYREQUESTS`` with ``Retry-After``, before any hashing), at most :data:`HASH_WORKERS`
scrypt checks run at once, in threads, and one at a time per client address (more than
:data:`HASH_QUEUE` waiting is refused the same way), an unknown user costs the same scrypt as a
known one (against a dummy hash with the same parameters), and a refused login is logged at
info with the user, the client address and the reason, never the password (a rate-limited
refusal once per address and Retry-After period).

Verification is cheap on the hot path: the public key is loaded once and a verified token is
kept (by its string, until it expires) in a bounded cache, so a repeated token costs a dict
lookup. Handlers can read the caller's :class:`Access` from ``request["auth"]`` (for example
to decide whether an automatic cross-repository mount may read a blob).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from prometheus_client import Counter

from dockyard.store import Store
from registry import jwt, throttle, users
from registry.scopes import REPOSITORY, Need, Scope, challenge_scope, grant, parse_scope, required_scopes

if TYPE_CHECKING:
    from aiohttp.web_request import FileField
    from multidict import MultiDictProxy

    from dockyard.platform import Platform

__all__ = ["ISSUER", "KEY_FILE", "SERVICE", "TOKEN_TTL", "Access", "Auth", "TokenService", "install"]

SERVICE = "dockyard"
ISSUER = "dockyard"
TOKEN_TTL = 300
KEY_FILE = "registry-token-key.pem"

# At most this many scopes per token request, verified tokens and remembered passwords.
MAX_SCOPES = 64
TOKEN_CACHE = 4096
PASSWORD_CACHE = 1024
PASSWORD_CACHE_TTL = 300.0

# scrypt work at once (each uses 16 MiB and a core for ~50-250 ms) and logins waiting for it
HASH_WORKERS = 2
HASH_QUEUE = 32

log = logging.getLogger(__name__)

API_VERSION = {"Docker-Distribution-API-Version": "registry/2.0"}

TOKENS = Counter(
    "dockyard_registry_token_requests_total", "Token endpoint requests by outcome", ["outcome"]
)
REFUSED = Counter(
    "dockyard_registry_auth_refused_total", "Registry requests refused by the auth check", ["code"]
)


ECR_USER = "AWS"


class EcrLogins(Protocol):
    """Logins by ECR password (``registry.ecr.tokens.Logins``)."""

    def identify(self, password: str) -> Any: ...
    def grant(self, identity: Any, requested: Iterable[Scope]) -> list[Scope]: ...
    def for_user(self, name: str, requested: Iterable[Scope], granted: list[Scope]) -> list[Scope]: ...


@dataclass(frozen=True)
class Access:
    """What a verified token (or an anonymous, tokenless caller) may do, until ``expires``."""

    subject: str
    granted: frozenset[tuple[str, str, str]]
    expires: float

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> Access:
        granted: set[tuple[str, str, str]] = set()
        entries = claims.get("access")
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            t, n, acts = entry.get("type"), entry.get("name"), entry.get("actions")
            if isinstance(t, str) and isinstance(n, str) and isinstance(acts, list):
                granted.update((t, n, a) for a in acts if isinstance(a, str))
        sub = claims.get("sub")
        return cls(sub if isinstance(sub, str) else "", frozenset(granted), float(claims["exp"]))

    def can(self, type_: str, name: str, action: str) -> bool:
        return (type_, name, action) in self.granted

    def allows(self, scope: Scope) -> bool:
        return all(self.can(scope.type, scope.name, a) for a in scope.actions)


FORM_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})


async def _read_form(request: web.Request) -> MultiDictProxy[str | bytes | FileField] | None:
    """The ``POST /token`` form, or None when it cannot be read: a charset other than UTF-8 (or
    ASCII), a multipart body without a boundary or broken, any body aiohttp cannot parse."""
    ctype = request.content_type
    charset = (request.charset or "utf-8").lower()
    if ctype == "application/x-www-form-urlencoded" and charset not in FORM_CHARSETS:
        return None
    if ctype == "multipart/form-data" and "boundary=" not in request.headers.get("Content-Type", "").lower():
        return None
    try:
        return await request.post()
    except (ValueError, LookupError, UnicodeDecodeError, AssertionError):
        return None


class TokenService:
    """Issues and verifies ES256 tokens with one P-256 key (see module docstring)."""

    def __init__(
        self,
        key: ec.EllipticCurvePrivateKey,
        *,
        service: str = SERVICE,
        issuer: str = ISSUER,
        ttl: int = TOKEN_TTL,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.public_key = key.public_key()
        self.kid = jwt.key_id(self.public_key)
        self.service, self.issuer, self.ttl, self.clock = service, issuer, ttl, clock
        self._verified: dict[str, Access] = {}

    def issue(self, subject: str, scopes: Iterable[Scope]) -> dict[str, Any]:
        """The token endpoint's answer for ``subject`` holding exactly ``scopes``."""
        now = int(self.clock())
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": [s.access() for s in scopes],
        }
        token = jwt.encode(claims, self.key, self.kid)
        issued = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"token": token, "access_token": token, "expires_in": self.ttl, "issued_at": issued}

    def verify(self, token: str) -> Access:
        """The Access of a valid token; raises :class:`jwt.InvalidToken` otherwise."""
        now = self.clock()
        hit = self._verified.get(token)
        if hit is not None:
            if now < hit.expires + jwt.LEEWAY:
                return hit
            del self._verified[token]
        claims = jwt.decode(token, self.public_key, self.kid, self.service, now)
        if claims.get("iss") != self.issuer:
            raise jwt.InvalidToken("unknown issuer")
        access = Access.from_claims(claims)
        if len(self._verified) >= TOKEN_CACHE:
            self._verified = {t: a for t, a in self._verified.items() if now < a.expires}
            if len(self._verified) >= TOKEN_CACHE:
                self._verified.clear()
        self._verified[token] = access
        return access


class BadCredentials(Exception):
    """Unknown user or wrong password."""


class TooManyAttempts(Exception):
    """Too many failed logins (or checks waiting): try again in ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


class Auth:
    """The token endpoint and the request middleware over one store and token service."""

    def __init__(
        self, store: Store, tokens: TokenService, limiter: throttle.FailureLimiter | None = None
    ) -> None:
        self.store = store
        self.tokens = tokens
        self.ecr: EcrLogins | None = None
        """User ``AWS`` logs in with an ECR password (``registry.ecr.tokens.Logins``); set by
        ``registry.ecr.api.install``."""
        self.limiter = limiter or throttle.FailureLimiter()
        # HMAC(secret, user, password, stored hash) -> expiry: skips scrypt for a repeated
        # login without keeping anything that reveals the password.
        self._secret = secrets.token_bytes(32)
        self._recent: dict[bytes, float] = {}
        self._hashing: asyncio.Semaphore | None = None
        self._waiting = 0
        self._address_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        self._quiet_until: dict[str, float] = {}  # address -> end of its rate-limited log silence
        _dummy_hash()  # made now, not on the first unknown user's time

    # -- credentials ---------------------------------------------------------------------
    async def authenticate(self, name: str, password: str, address: str = "") -> users.User:
        """The user ``name`` if ``password`` is right; raises BadCredentials, or
        TooManyAttempts while ``name`` or ``address`` (the client's) has failed too often or
        too many checks are waiting (module docstring)."""
        ticket = self.limiter.attempt(name, address, time.monotonic())
        if ticket.retry_after:
            self._refused_rate_limited(name, address, ticket.retry_after)
            raise TooManyAttempts(ticket.retry_after)
        user = users.get_user(self.store, name)
        if user is None:
            # Spend the same time as a real check so that user names cannot be probed.
            await self._verify(password, _dummy_hash(), address)
            self._refused(name, address, "unknown user")
            raise BadCredentials
        mark = hmac.new(
            self._secret, b"\0".join(s.encode() for s in (name, password, user.password_hash)), hashlib.sha256
        ).digest()
        now = time.monotonic()
        if self._recent.get(mark, 0.0) <= now:
            if not await self._verify(password, user.password_hash, address):
                self._refused(name, address, "wrong password")
                raise BadCredentials
            now = time.monotonic()
            if len(self._recent) >= PASSWORD_CACHE:
                self._recent = {k: t for k, t in self._recent.items() if t > now}
                if len(self._recent) >= PASSWORD_CACHE:
                    self._recent.clear()
            self._recent[mark] = now + PASSWORD_CACHE_TTL
        self.limiter.succeeded(name, address, ticket, now)
        return user

    async def _verify(self, password: str, encoded: str, address: str) -> bool:
        """scrypt in a thread: at most HASH_WORKERS at once and one per client address (so one
        address's bad logins queue behind each other, not in front of everyone's); raises
        TooManyAttempts when HASH_QUEUE checks are waiting already."""
        if self._hashing is None:
            self._hashing = asyncio.Semaphore(HASH_WORKERS)
        if self._waiting >= HASH_QUEUE:
            raise TooManyAttempts(1)
        lock, users_of = self._address_locks.get(address, (asyncio.Lock(), 0))
        self._address_locks[address] = (lock, users_of + 1)
        self._waiting += 1
        try:
            async with lock, self._hashing:
                return await asyncio.to_thread(users.verify_password, password, encoded)
        finally:
            self._waiting -= 1
            lock, users_of = self._address_locks[address]
            if users_of <= 1:
                del self._address_locks[address]
            else:
                self._address_locks[address] = (lock, users_of - 1)

    @staticmethod
    def _refused(name: str, address: str, reason: str) -> None:
        log.info("registry login refused", extra={"user": name[:128], "client": address, "reason": reason})

    def _refused_rate_limited(self, name: str, address: str, retry_after: int) -> None:
        """Log a refusal before any check once per address and Retry-After period: checked
        refusals are bounded by the limiter, these are not (one line each would be a lever on
        the log's disk)."""
        now = time.monotonic()
        if self._quiet_until.get(address, 0.0) > now:
            return
        if len(self._quiet_until) >= PASSWORD_CACHE:
            self._quiet_until = {a: t for a, t in self._quiet_until.items() if t > now}
        self._quiet_until[address] = now + retry_after
        self._refused(name, address, "rate limited")

    # -- token endpoint --------------------------------------------------------------------
    async def token(self, request: web.Request) -> web.Response:
        """``GET /token`` (Basic credentials or anonymous) and ``POST /token`` (password grant)."""
        if request.method == "POST":
            form = await _read_form(request)
            if form is None:
                TOKENS.labels("bad_request").inc()
                return web.json_response(
                    {"error": "invalid_request", "error_description": "unreadable form body"}, status=400
                )
            grant_type = str(form.get("grant_type", ""))
            if grant_type != "password":
                TOKENS.labels("bad_request").inc()
                return web.json_response(
                    {"error": "unsupported_grant_type", "error_description": "only grant_type=password"},
                    status=400,
                )
            creds: tuple[str, str] | None = (str(form.get("username", "")), str(form.get("password", "")))
            raw_scopes = [str(v) for v in form.getall("scope", [])]
        else:
            try:
                creds = _basic(request.headers.get("Authorization", ""))
            except ValueError:
                TOKENS.labels("bad_credentials").inc()
                return _token_error("malformed Basic credentials")
            raw_scopes = request.query.getall("scope", [])
        requested = []
        for text in " ".join(raw_scopes).split():
            scope = parse_scope(text)
            if scope is None:
                TOKENS.labels("bad_request").inc()
                return web.json_response(
                    {"errors": [{"code": "UNSUPPORTED", "message": f"malformed scope {text[:200]!r}"}]},
                    status=400,
                )
            requested.append(scope)
        if len(requested) > MAX_SCOPES:
            TOKENS.labels("bad_request").inc()
            return web.json_response(
                {"errors": [{"code": "UNSUPPORTED", "message": f"at most {MAX_SCOPES} scopes"}]}, status=400
            )
        subject, admin, grants = "", False, {}
        if creds is not None and creds[0] == ECR_USER and self.ecr is not None:
            identity = self.ecr.identify(creds[1])
            if identity is None:
                TOKENS.labels("bad_credentials").inc()
                self._refused(creds[0], request.remote or "", "bad ECR password")
                return _token_error("incorrect username or password")
            TOKENS.labels("issued").inc()
            granted = self.ecr.grant(identity, requested)
            return web.json_response(self.tokens.issue(f"AWS:{identity.key_id}", granted))
        if creds is not None:
            try:
                user = await self.authenticate(*creds, address=request.remote or "")
            except BadCredentials:
                TOKENS.labels("bad_credentials").inc()
                return _token_error("incorrect username or password")
            except TooManyAttempts as e:
                TOKENS.labels("rate_limited").inc()
                return web.json_response(
                    {"errors": [{"code": "TOOMANYREQUESTS", "message": "too many failed logins; try later"}]},
                    status=429, headers={"Retry-After": str(e.retry_after)},
                )
            subject, admin, grants = user.name, user.admin, user.grants
        scopes = grant(
            requested, admin=admin, grants=grants, anonymous=users.anonymous_prefixes(self.store)
        )
        if subject and not admin and self.ecr is not None:  # under the repositories' policies
            scopes = self.ecr.for_user(subject, requested, scopes)
        TOKENS.labels("issued" if subject else "issued_anonymous").inc()
        return web.json_response(self.tokens.issue(subject, scopes))

    # -- middleware ------------------------------------------------------------------------
    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Let a ``/v2/`` request through only with the scopes it needs (module docstring)."""
        if not request.path.startswith("/v2"):
            return await handler(request)
        need = required_scopes(request.method, request.path, request.query)
        header = request.headers.get("Authorization", "")
        access: Access | None = None
        if header[:7].lower() == "bearer ":
            try:
                access = self.tokens.verify(header[7:].strip())
            except jwt.InvalidToken:
                return _challenge(request, need, "UNAUTHORIZED", "invalid or expired token")
        elif need.scopes and need.mount_from is None:
            access = self._anonymous(need)
        if access is None:
            return _challenge(request, need, "UNAUTHORIZED", "authentication required")
        if not all(access.allows(s) for s in need.scopes):
            return _challenge(request, need, "DENIED", "requested access to the resource is denied")
        # A mount from a repository the caller cannot pull becomes a plain upload in the
        # handler (it reads this); see registry.handlers.base.may_read.
        request["auth"] = access
        return await handler(request)

    def _anonymous(self, need: Need) -> Access | None:
        """An Access for a tokenless request that only pulls from anonymous-pull prefixes."""
        prefixes = users.anonymous_prefixes(self.store)
        if not prefixes:
            return None
        granted = set()
        for scope in need.scopes:
            if scope.type != REPOSITORY or set(scope.actions) != {"pull"}:
                return None
            if not any(users.prefix_covers(p, scope.name) for p in prefixes):
                return None
            granted.add((REPOSITORY, scope.name, "pull"))
        return Access("", frozenset(granted), time.time() + TOKEN_TTL)


@functools.cache
def _dummy_hash() -> str:
    return users.hash_password(secrets.token_urlsafe(16))

_SAFE_HOST = re.compile(r"^[A-Za-z0-9.\-:\[\]]+$")


def _basic(header: str) -> tuple[str, str] | None:
    """``(user, password)`` from a Basic Authorization header; None without one.
    Raises ValueError when it is malformed."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise ValueError("not Basic")
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ValueError("bad base64") from None
    name, sep, password = decoded.partition(":")
    if not sep:
        raise ValueError("no colon")
    return name, password


def _token_error(message: str) -> web.Response:
    return web.json_response(
        {"errors": [{"code": "UNAUTHORIZED", "message": message}]},
        status=401,
        headers={"WWW-Authenticate": f'Basic realm="{SERVICE}"'},
    )


def realm(request: web.Request) -> str:
    """The token endpoint's URL as seen by this client (its own scheme and Host)."""
    host = request.host if _SAFE_HOST.match(request.host or "") else None
    if host is None:
        sock = request.transport.get_extra_info("sockname") if request.transport else None
        host = f"{sock[0]}:{sock[1]}" if sock else "localhost"
    return f"{request.scheme}://{host}/token"


def _challenge(request: web.Request, need: Need, code: str, message: str) -> web.Response:
    REFUSED.labels(code).inc()
    params = f'realm="{realm(request)}",service="{SERVICE}"'
    scope = challenge_scope(need)
    if scope:
        params += f',scope="{scope}"'
    if code == "DENIED":
        params += ',error="insufficient_scope"'
    detail = [
        {"Type": s.type, "Name": s.name, "Action": a} for s in need.scopes for a in s.actions
    ]
    body = {"errors": [{"code": code, "message": message, "detail": detail or None}]}
    return web.json_response(
        body, status=401, headers={"WWW-Authenticate": f"Bearer {params}", **API_VERSION}
    )


def install(platform: Platform) -> Auth:
    """Add the token endpoint and the middleware to the registry app; the signing key is
    created in the data dir on first start."""
    key = jwt.load_or_create_key(Path(platform.config.data_dir) / KEY_FILE)
    auth = Auth(platform.store, TokenService(key))
    platform.registry.router.add_get("/token", auth.token)
    platform.registry.router.add_post("/token", auth.token)
    platform.registry.middlewares.append(auth.middleware)
    return auth
