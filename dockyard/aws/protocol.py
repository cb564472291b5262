"""The AWS JSON 1.1 protocol on the control port: ``POST /`` with ``X-Amz-Target``.

Parts register operations (``ops.add(ECS, "ListClusters", handler)``); the dispatcher reads
and bounds the body, verifies SigV4, parses the JSON, calls the handler and writes either
its result or the AWS error envelope. Handlers only see a :class:`Call` and a dict.

:meth:`Operations.answer` is that whole path for a request already read, independent of the
HTTP server: the main process reaches it through aiohttp (:meth:`Operations.dispatch`), the
control workers through their own HTTP/1.1 transport (``dockyard.workers``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import Counter, Histogram

from dockyard.aws import sigv4
from dockyard.aws.errors import (
    AwsError,
    IncompleteSignatureException,
    RequestEntityTooLargeException,
    SerializationException,
    UnknownOperationException,
    UnrecognizedClientException,
)

__all__ = ["CLOUDMAP", "ECR", "ECS", "MAX_BODY", "Call", "Operations", "json_response"]

ECS = "AmazonEC2ContainerServiceV20141113"
CLOUDMAP = "Route53AutoNaming_v20170314"
ECR = "AmazonEC2ContainerRegistry_V20150921"
MAX_BODY = 10 * 1024 * 1024
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CONTENT_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")

log = logging.getLogger("dockyard.control")

REQUESTS = Counter(
    "dockyard_control_requests_total", "Control API requests", ["service", "operation", "code"]
)
LATENCY = Histogram(
    "dockyard_control_request_seconds", "Control API latency", ["service", "operation"]
)


@dataclass
class Call:
    """What a handler gets besides the parsed body (``headers`` keyed by lower-case names)."""

    headers: Mapping[str, str]
    service: str
    operation: str
    credential: sigv4.Credential | None
    request_id: str
    extra: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[Call, dict[str, Any]], Awaitable[dict[str, Any]]]


def json_response(data: dict[str, Any] | bytes, status: int = 200, request_id: str = "") -> web.Response:
    """``data`` as the JSON body; ``bytes`` are taken as already-serialised JSON (a handler may
    return them to serve a cached answer without serialising it again)."""
    headers = {"x-amzn-RequestId": request_id} if request_id else {}
    return web.Response(
        body=data if isinstance(data, bytes) else _dumps(data),
        status=status,
        content_type="application/x-amz-json-1.1",
        headers=headers,
    )


class Operations:
    """The operation table, filled by the parts at start."""

    def __init__(self, secret_for: Callable[[str], str | None]) -> None:
        self._ops: dict[tuple[str, str], Handler] = {}
        self._readonly: set[str] = set()
        self._secret_for = secret_for
        self._metrics: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # labelled children

    def add(self, service: str, name: str, handler: Handler, readonly: bool = False) -> None:
        """Register an operation. ``readonly`` ones only read the store (or an index kept from
        it) and may be answered by a control worker process, outside a Task of their own up to
        their first wait (so no ``asyncio.timeout`` before it); the rest run in the main one."""
        if (service, name) in self._ops:
            raise ValueError(f"operation {service}.{name} registered twice")
        self._ops[(service, name)] = handler
        if readonly:
            self._readonly.add(f"{service}.{name}")

    def names(self, service: str) -> list[str]:
        return sorted(n for s, n in self._ops if s == service)

    def readonly(self, target: str) -> bool:
        """Whether the operation ``X-Amz-Target: target`` names was registered read-only."""
        return target in self._readonly

    def authenticate(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body_sha256: str,
        basic: bool = False,
    ) -> sigv4.Credential:
        """The one authentication of every control route (``headers`` keyed by lower-case
        names): a SigV4 signature over the request, whose body hashes to ``body_sha256``; with
        ``basic``, HTTP Basic credentials (the key id and its secret) are accepted too, for a
        route a person follows with ``curl -u`` (the event stream). Returns who it is (a Basic
        credential has no date, region nor service) or raises the AWS error to answer."""
        auth = headers.get("authorization", "")
        if basic and auth[:6].lower() == "basic ":
            try:
                key, _, secret = base64.b64decode(auth[6:], validate=True).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise IncompleteSignatureException("Malformed Basic credentials.") from None
            expected = self._secret_for(key)
            if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
                raise UnrecognizedClientException("The security token included in the request is invalid.")
            return sigv4.Credential(key, "", "", "")
        return sigv4.verify(method, raw_path, raw_query, headers, body_sha256, self._secret_for)

    def error_response(self, error: AwsError, request_id: str = "", route: str = "") -> web.Response:
        """The AWS error envelope of ``error`` for a route outside ``POST /`` (``route`` names it
        in the log), logged and counted like the dispatcher's own."""
        log.info("control error", extra={"target": route, "error": error.code, "detail": error.message})
        self._observe("", "", error.code, time.perf_counter())
        return json_response(error.body(), status=error.status, request_id=request_id)

    async def dispatch(self, request: web.Request) -> web.Response:
        """The aiohttp handler of ``POST /``."""
        rid = request.get("request_id", "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = await self._read_body(request)
        except AwsError as e:
            status, payload = self.refuse(headers, e, rid)
        else:
            status, payload = await self.answer(
                request.method, request.raw_path.split("?", 1)[0], request.query_string, headers, body, rid
            )
        return json_response(payload, status=status, request_id=rid)

    async def answer(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
        request_id: str,
    ) -> tuple[int, bytes]:
        """Answer one AWS JSON request (``headers`` keyed by lower-case names): verify SigV4,
        check the content type and target, parse the body, call the handler. Returns the
        status and the JSON body, the AWS error envelope for any failure."""
        target = headers.get("x-amz-target", "")
        service, _, name = target.partition(".")
        started = time.perf_counter()
        code = "200"
        try:
            credential = self.authenticate(
                method, raw_path, raw_query, headers, hashlib.sha256(body).hexdigest()
            )
            ctype = headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype not in CONTENT_TYPES:
                raise SerializationException(
                    f"Content-Type must be application/x-amz-json-1.1, not {ctype or 'missing'!r}."
                )
            if not target:
                raise UnknownOperationException("Missing X-Amz-Target header.")
            handler = self._ops.get((service, name))
            if handler is None:
                raise UnknownOperationException(f"Unknown operation {target!r}.")
            params = _parse(body)
            result = await handler(Call(headers, service, name, credential, request_id), params)
            return 200, result if isinstance(result, bytes) else _dumps(result)
        except AwsError as e:
            code = e.code
            log.info("control error", extra={"target": target, "error": e.code, "detail": e.message})
            return e.status, _dumps(e.body())
        except Exception:
            code = "InternalFailure"
            log.exception("control handler failed", extra={"target": target})
            return 500, _dumps({"__type": "InternalFailure", "message": "The request processing has failed."})
        finally:
            self._observe(service, name, code, started)

    def refuse(self, headers: Mapping[str, str], error: AwsError, request_id: str) -> tuple[int, bytes]:
        """The answer to a request refused before it was read whole (its body is too large):
        logged and counted like any other error."""
        target = headers.get("x-amz-target", "")
        service, _, name = target.partition(".")
        log.info("control error", extra={"target": target, "error": error.code, "detail": error.message})
        self._observe(service, name, error.code, time.perf_counter())
        return error.status, _dumps(error.body())

    def _observe(self, service: str, name: str, code: str, started: float) -> None:
        metrics = self._metrics.get((service, name, code))
        if metrics is None:
            labels = (service, name) if (service, name) in self._ops else ("unknown", "unknown")
            metrics = REQUESTS.labels(*labels, code), LATENCY.labels(*labels)
            if labels[0] != "unknown":  # unknown names are not worth remembering
                self._metrics[(service, name, code)] = metrics
        metrics[0].inc()
        metrics[1].observe(time.perf_counter() - started)

    @staticmethod
    async def _read_body(request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise RequestEntityTooLargeException(
                f"Request body of {request.content_length} bytes exceeds the {MAX_BODY} byte limit."
            )
        chunks, size = [], 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
            if size > MAX_BODY:
                raise RequestEntityTooLargeException(
                    f"Request body exceeds the {MAX_BODY} byte limit."
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = json.loads(body.decode())
    except (ValueError, UnicodeDecodeError) as e:
        raise SerializationException(f"Request body is not valid JSON: {e}.") from None
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object.")
    return params
