"""OCI wire errors, registered once; one middleware writes the envelope.

The middleware is the registry's outermost one, so it also refuses, before anything else runs
(auth included), a path whose repository name breaks the spec's grammar: 400 ``NAME_INVALID``.

Handlers and the layers below them raise :class:`RegistryError` (usually through one of the
registered codes, ``raise BLOB_UNKNOWN(detail=digest)``); :func:`error_middleware` is the only
place that writes ``{"errors": [{"code", "message", "detail"}]}``. A body aiohttp cannot read
(broken chunked framing, short of its ``Content-Length``) is 400 ``UNSUPPORTED``; a client gone
is left to the listener (``dockyard.listeners``, a debug line); any other exception that
escapes a handler becomes 500 ``UNKNOWN``, logged as one ERROR line without a traceback (that
goes to DEBUG, ``dockyard.listeners.log_unexpected``), and aiohttp's own HTTP exceptions are
mapped to the closest OCI code. A state store that cannot be reached (PostgreSQL restarting) is
503 ``UNAVAILABLE`` with ``Retry-After``, as Distribution answers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from dockyard.listeners import is_client_gone, log_unexpected
from dockyard.store import RETRY_AFTER, StoreUnavailable
from registry.reference import MAX_NAME, is_valid_name
from registry.routes import route

__all__ = ["CODES", "ErrorCode", "RegistryError", "error_middleware", "register"]

log = logging.getLogger("dockyard.registry")


class RegistryError(Exception):
    """An OCI error: wire ``code``, human ``message``, HTTP ``status`` and optional ``detail``."""

    def __init__(
        self, code: str, message: str, status: int, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.status, self.detail = code, message, status, detail
        self.headers = headers or {}

    def body(self) -> bytes:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail is not None:
            err["detail"] = self.detail
        return json.dumps({"errors": [err]}).encode()


@dataclass(frozen=True)
class ErrorCode:
    """A registered wire error; calling it makes the exception to raise."""

    code: str
    message: str
    status: int

    def __call__(
        self,
        detail: Any = None,
        message: str | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> RegistryError:
        return RegistryError(self.code, message or self.message, status or self.status, detail, headers)


CODES: dict[str, ErrorCode] = {}


def register(code: str, message: str, status: int) -> ErrorCode:
    """Register one wire error; a code is registered only once."""
    if code in CODES:
        raise ValueError(f"error code {code} registered twice")
    CODES[code] = ErrorCode(code, message, status)
    return CODES[code]


# The distribution-spec's codes, then the few Distribution adds that clients know.
BLOB_UNKNOWN = register("BLOB_UNKNOWN", "blob unknown to registry", 404)
BLOB_UPLOAD_INVALID = register("BLOB_UPLOAD_INVALID", "blob upload invalid", 400)
BLOB_UPLOAD_UNKNOWN = register("BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", 404)
DIGEST_INVALID = register("DIGEST_INVALID", "provided digest did not match uploaded content", 400)
MANIFEST_BLOB_UNKNOWN = register(
    "MANIFEST_BLOB_UNKNOWN", "manifest references a manifest or blob unknown to registry", 400
)
MANIFEST_INVALID = register("MANIFEST_INVALID", "manifest invalid", 400)
MANIFEST_UNKNOWN = register("MANIFEST_UNKNOWN", "manifest unknown to registry", 404)
NAME_INVALID = register("NAME_INVALID", "invalid repository name", 400)
NAME_UNKNOWN = register("NAME_UNKNOWN", "repository name not known to registry", 404)
SIZE_INVALID = register("SIZE_INVALID", "provided length did not match content length", 400)
UNAUTHORIZED = register("UNAUTHORIZED", "authentication required", 401)
DENIED = register("DENIED", "requested access to the resource is denied", 403)
UNSUPPORTED = register("UNSUPPORTED", "the operation is unsupported", 405)
TOOMANYREQUESTS = register("TOOMANYREQUESTS", "too many requests", 429)
RANGE_INVALID = register("RANGE_INVALID", "invalid content range", 416)
TAG_INVALID = register("TAG_INVALID", "manifest tag did not match URI", 400)
PAGINATION_NUMBER_INVALID = register("PAGINATION_NUMBER_INVALID", "invalid number of results requested", 400)
NOT_FOUND = register("NOT_FOUND", "no such endpoint", 404)
UNKNOWN = register("UNKNOWN", "unknown error", 500)
# Distribution's: the state store cannot be reached now (PostgreSQL restarting); retry
UNAVAILABLE = register("UNAVAILABLE", "service unavailable", 503)

# not registered: a code of the spec's (UNSUPPORTED) with the status of a malformed request
BODY_INVALID = ErrorCode("UNSUPPORTED", "the request body could not be read", 400)

# aiohttp's own exceptions (raised before or around a handler) mapped to OCI codes.
_HTTP_CODES = {
    404: NOT_FOUND,
    405: UNSUPPORTED,
    413: SIZE_INVALID,
    416: RANGE_INVALID,
}


def _response(err: RegistryError) -> web.Response:
    return web.Response(
        status=err.status, body=err.body(), content_type="application/json", headers=err.headers
    )


@web.middleware
async def error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Turn every error below a handler into OCI error JSON (the only writer of that body)."""
    try:
        target = route(request.path)
        if target is not None and target.name and not is_valid_name(target.name):
            raise NAME_INVALID(detail=target.name[:MAX_NAME])
        return await handler(request)
    except RegistryError as err:
        return _response(err)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status)
        if code is None:
            code = ErrorCode("UNKNOWN" if exc.status >= 500 else "UNSUPPORTED", exc.reason, exc.status)
        return _response(code(message=exc.reason))
    except web.RequestPayloadError as exc:  # a body aiohttp could not read (its framing)
        return _response(BODY_INVALID(detail=str(exc)[:200]))
    except StoreUnavailable as exc:
        log.warning("registry request refused: state store unavailable", extra={"detail": str(exc)})
        return _response(UNAVAILABLE(detail="the state store cannot be reached; retry",
                                     headers={"Retry-After": str(RETRY_AFTER)}))
    except Exception as exc:
        if is_client_gone(exc, request):
            raise  # the client went away: nobody to answer (the listener logs it at debug)
        log_unexpected(log, "registry handler failed", exc, path=request.path)
        return _response(UNKNOWN(detail=type(exc).__name__))
