"""The AWS wire protocols of the control port behind one dispatch.

Parts register operations (``ops.add(ECS, "ListClusters", handler)``); the dispatcher reads
and bounds the body, verifies SigV4 (:meth:`Operations.authenticate`, the one authentication
of every control route), decodes the parameters, calls the handler and writes either its
result or the protocol's error. Handlers only see a :class:`Call` and a dict, whatever the
protocol: AWS JSON 1.0/1.1 (``POST /`` with ``X-Amz-Target``, here), Smithy RPC v2 CBOR
(:mod:`dockyard.aws.cbor`), Query with XML answers (:mod:`dockyard.aws.query`) and REST-JSON
(:mod:`dockyard.aws.restjson`); the last three are shaped by AWS's service models
(:mod:`dockyard.aws.model`). An operation registered with ``validate=SomeError`` also has its
parameters checked against the model's input shape before the handler runs.

:meth:`Operations.answer` is that whole path for a request already read, independent of the
HTTP server: the main process reaches it through aiohttp (:meth:`Operations.dispatch`), the
control workers through their own HTTP/1.1 transport (``dockyard.control.workers``);
:meth:`Operations.respond` is the same for every protocol.

Why this module is over 500 lines: it is the one path every protocol shares (authenticate,
decode, validate, authorize, call, encode, count), kept in one place so that no protocol can
skip a step; the codecs of each protocol already live in their own modules, and what is left
per protocol here is only which codec and which error shape it takes.
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
from botocore.model import ServiceModel
from prometheus_client import Counter, Histogram

from dockyard import jsonbound, logs
from dockyard.aws import cbor, model, query, restjson, sigv4
from dockyard.aws.errors import (
    AwsError,
    IncompleteSignatureException,
    RequestEntityTooLargeException,
    SerializationException,
    ServerException,
    ServiceUnavailable,
    UnknownOperationException,
    UnrecognizedClientException,
)
from dockyard.listeners import log_unexpected
from dockyard.store import RETRY_AFTER, StoreUnavailable

__all__ = ["CLOUDMAP", "ECR", "ECS", "MAX_BODY", "PEER", "Answer", "Call", "Operations", "json_response"]

ECS = "AmazonEC2ContainerServiceV20141113"
CLOUDMAP = "Route53AutoNaming_v20170314"
ECR = "AmazonEC2ContainerRegistry_V20150921"
MAX_BODY = 10 * 1024 * 1024
_SURROGATE = "A string in the request holds a lone surrogate, which has no UTF-8 form."
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CBOR_HEADERS = {"smithy-protocol": "rpc-v2-cbor"}
CONTENT_TYPES = ("application/x-amz-json-1.1", "application/x-amz-json-1.0")
PEER = ":peer"  # the client's address among a request's headers (dispatch)

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


@dataclass(frozen=True)
class Answer:
    """One response of any protocol: status, content type, extra headers and body."""

    status: int
    content_type: str
    headers: dict[str, str]
    body: bytes


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

    def __init__(self, secret_for: Callable[[str], str | None], region: str = "us-east-1") -> None:
        self._ops: dict[tuple[str, str], Handler] = {}
        self._region = region
        self._signing: dict[str, tuple[str, ...]] = {}  # service -> the names its scope may give
        self._readonly: set[str] = set()
        self._secret_for = secret_for
        self._metrics: dict[tuple[str, str, str], tuple[Any, Any]] = {}  # labelled children
        self._validators: dict[tuple[str, str], model.Validator] = {}
        self._rest = restjson.Routes()
        self._validated: dict[str, type[AwsError]] = {}
        self.authorize: Callable[[Call, dict[str, Any]], None] | None = None
        """Checks a verified call before its handler runs, raising the AWS error to answer
        (``dockyard.iam.authorize.Authorizer``; None: every verified caller may do anything)."""

    def _authorize(self, call: Call, params: dict[str, Any]) -> None:
        if self.authorize is not None:
            self.authorize(call, params)

    def add(
        self, service: str, name: str, handler: Handler, readonly: bool = False,
        validate: type[AwsError] | None = None,
    ) -> None:
        """Register an operation. ``service`` is the ``X-Amz-Target`` prefix of a JSON (or RPC
        v2 CBOR) service, or botocore's name of a REST-JSON or Query one (``appmesh``,
        ``elbv2``), whose model then routes and shapes the operation. ``readonly`` ones only
        read the store (or an index kept from it) and may be answered by a control worker
        process, outside a Task of their own up to their first wait (so no ``asyncio.timeout``
        before it); the rest run in the main one. With ``validate``, the parameters are checked
        against the model's input shape first (a validator compiled here, once), a bad one
        answered with that error class."""
        if (service, name) in self._ops:
            raise ValueError(f"operation {service}.{name} registered twice")
        if validate is not None:
            self._validators[(service, name)] = model.validator(model.operation(service, name), validate)
        elif service in self._validated:
            self._validate_if_modelled(service, name, self._validated[service])
        svc = model.find(service) if service not in model.TARGETS else None
        if svc is not None:  # a botocore name: the model says how the operation travels
            if svc.protocol == "rest-json":
                self._rest.add(svc, model.operation(service, name))
            elif svc.protocol != "query":
                raise ValueError(f"{service}: serve {svc.protocol} services by their target prefix")
        self._ops[(service, name)] = handler
        self._signing.clear()
        if readonly:
            self._readonly.add(f"{service}.{name}")

    def validate(self, service: str, error: type[AwsError]) -> None:
        """Check every operation of ``service``, registered before or after, against its
        model's input shape, answering ``error`` for a bad request (Cloud Map's
        ``InvalidInput``, ECS's ``InvalidParameterException``). Operations the model does not
        have (Dockyard's own) are left to their handlers."""
        self._validated[service] = error
        for s, name in self._ops:
            if s == service and (s, name) not in self._validators:
                self._validate_if_modelled(s, name, error)

    def _validate_if_modelled(self, service: str, name: str, error: type[AwsError]) -> None:
        # Dockyard's own operations (WatchChanges, RunRegistryGarbageCollection) have no model.
        if name in model.service(service).operation_names:
            self._validators[(service, name)] = model.validator(model.operation(service, name), error)

    def names(self, service: str) -> list[str]:
        return sorted(n for s, n in self._ops if s == service)

    def readonly(self, target: str) -> bool:
        """Whether the operation ``X-Amz-Target: target`` names was registered read-only."""
        return target in self._readonly

    def target_of(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        """``service.operation`` that a request of any protocol names (as :meth:`respond` tells
        them apart; ``service`` as the operation was registered), "" when it names none: the
        control workers ask :meth:`readonly` of it."""
        target = headers.get("x-amz-target")
        if target is not None:
            return target
        if headers.get("smithy-protocol") == "rpc-v2-cbor":
            found = cbor.route(raw_path)
            return f"{found[0]}.{found[1]}" if found is not None else ""
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if raw_path == "/" and (method != "POST" or ctype != query.FORM):
            return ""
        if raw_path == "/":
            try:
                action, form = query.action(body)
            except AwsError:
                return ""
            svc = self._query_service(action, form.get("Version", ""))[0]
            return f"{svc.service_name}.{action}" if svc is not None else ""
        rest = self._rest.match(method, raw_path, _query_lists(raw_query)) if self._rest else None
        return f"{rest[0].service_name}.{rest[1].name}" if rest is not None else ""

    def signing_names(self, service: str | None = None) -> tuple[str, ...]:
        """The service names a credential's scope may give for ``service`` (the name its model
        signs with: ``ecs``, ``servicediscovery``, ``elasticloadbalancing``; ``dockyard`` for a
        service botocore has no model of), or for any registered service when None or unknown."""
        key = service if service is not None and any(s == service for s, _ in self._ops) else ""
        names = self._signing.get(key)
        if names is None:
            if key:
                svc = model.find(key)
                names = (svc.signing_name if svc is not None else "dockyard",)
            else:
                names = tuple(sorted({n for s in {s for s, _ in self._ops} for n in self.signing_names(s)}))
            self._signing[key] = names
        return names

    def authenticate(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body_sha256: str,
        basic: bool = False, service: str | None = None,
    ) -> sigv4.Credential:
        """The one authentication of every control route (``headers`` keyed by lower-case
        names): a SigV4 signature over the request, whose body hashes to ``body_sha256``,
        scoped to this endpoint's region and to ``service`` (see :meth:`signing_names`; a
        route outside the dispatch leaves it None); with ``basic``, HTTP Basic credentials (the
        key id and its secret) are accepted too, for a route a person follows with ``curl -u``
        (the event stream). Returns who it is (a Basic credential has no date, region nor
        service) or raises the AWS error to answer."""
        auth = headers.get("authorization", "")
        if basic and auth[:6].lower() == "basic ":
            try:
                key, _, secret = base64.b64decode(auth[6:], validate=True).decode().partition(":")
            except (ValueError, binascii.Error, UnicodeDecodeError):
                raise IncompleteSignatureException("Malformed Basic credentials.") from None
            expected = self._secret_for(key)
            if expected is None or not hmac.compare_digest(expected.encode(), secret.encode()):
                raise UnrecognizedClientException("The security token included in the request is invalid.")
            logs.principal.set(key)  # for the access log (dockyard.accesslog)
            return sigv4.Credential(key, "", "", "")
        credential = sigv4.verify(
            method, raw_path, raw_query, headers, body_sha256, self._secret_for,
            region=self._region, services=self.signing_names(service),
        )
        logs.principal.set(credential.access_key)  # for the access log (dockyard.accesslog)
        return credential

    def error_response(self, error: AwsError, request_id: str = "", route: str = "") -> web.Response:
        """The AWS error envelope of ``error`` for a route outside ``POST /`` (``route`` names it
        in the log), logged and counted like the dispatcher's own."""
        log.info("control error", extra={"target": route, "error": error.code, "detail": error.message})
        self._observe("", "", error.code, time.perf_counter())
        return json_response(error.body(), status=error.status, request_id=request_id)

    def install(self, router: web.UrlDispatcher, rest: bool | None = None) -> None:
        """Add the dispatch to a control app: ``POST /`` (JSON, Query), ``POST /service/...``
        (RPC v2 CBOR) and, with ``rest`` (by default: when a REST-JSON operation is
        registered), every other path (REST-JSON). Call it after the app's own routes and the
        parts' installs: those go first, and the REST-JSON routes are known by then."""
        router.add_post("/", self.dispatch)
        router.add_post(cbor.PREFIX + "{tail:.+}", self.dispatch)
        if rest if rest is not None else bool(self._rest):
            router.add_route("*", "/{tail:.*}", self.dispatch)

    async def dispatch(self, request: web.Request) -> web.Response:
        """The aiohttp handler of every control API route (see :meth:`install`)."""
        rid = request.get("request_id", "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        headers[PEER] = request.remote or ""  # for aws:SourceIp (no received name has a colon)
        raw_path = request.raw_path.split("?", 1)[0]
        try:
            body = await self._read_body(request)
        except AwsError as e:
            self.refuse(headers, e, rid)
            out = error_answer(raw_path, headers, e, rid)
            return web.Response(
                body=out.body, status=out.status, content_type=out.content_type,
                headers={**out.headers, **({"x-amzn-RequestId": rid} if rid else {})},
            )
        form = headers.get("content-type", "").startswith(query.FORM)
        if "x-amz-target" in headers or (raw_path == "/" and not form):  # the hot path: no Answer built
            status, payload = await self.answer(
                request.method, raw_path, request.query_string, headers, body, rid
            )
            response = json_response(payload, status=status, request_id=rid)
            if status == 503:  # the state store cannot be reached now
                response.headers["Retry-After"] = str(RETRY_AFTER)
            return response
        out = await self.respond(request.method, raw_path, request.query_string, headers, body, rid)
        return web.Response(
            body=out.body, status=out.status, content_type=out.content_type,
            headers={**out.headers, **({"x-amzn-RequestId": rid} if rid else {})},
        )

    async def respond(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
        request_id: str,
    ) -> Answer:
        """Answer one request of any protocol (``headers`` keyed by lower-case names), told
        apart by what the protocols send: ``X-Amz-Target`` (JSON), ``smithy-protocol:
        rpc-v2-cbor`` on a ``/service/`` path (CBOR), a form body on ``POST /`` (Query), else
        the method and path of a registered REST-JSON operation."""
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if "x-amz-target" in headers or (raw_path == "/" and ctype != query.FORM):
            # JSON, or POST / of neither protocol: answered as JSON (a missing target...)
            status, payload = await self.answer(method, raw_path, raw_query, headers, body, request_id)
            retry = {"Retry-After": str(RETRY_AFTER)} if status == 503 else {}
            return Answer(status, CONTENT_TYPES[0], retry, payload)
        target = cbor.route(raw_path) if headers.get("smithy-protocol") == "rpc-v2-cbor" else None
        if target is not None:
            return await self._respond_cbor(target, method, raw_path, raw_query, headers, body, request_id)
        if method == "POST" and raw_path == "/" and ctype == query.FORM:
            return await self._respond_query(method, raw_path, raw_query, headers, body, request_id)
        return await self._respond_rest(method, raw_path, raw_query, headers, body, request_id)

    async def _respond_cbor(
        self, target: tuple[str, str], method: str, raw_path: str, raw_query: str,
        headers: Mapping[str, str], body: bytes, request_id: str,
    ) -> Answer:
        service, name = target

        def encode(result: dict[str, Any] | bytes) -> Answer:
            op = model.operation(service, name) if service in model.TARGETS else None
            return Answer(200, cbor.CONTENT_TYPE, dict(CBOR_HEADERS), cbor.encode(op, result))

        def refuse(e: AwsError) -> Answer:
            return Answer(e.status, cbor.CONTENT_TYPE, dict(CBOR_HEADERS), cbor.encode_error(e))

        return await self._serve(
            service, name, method, raw_path, raw_query, headers, body, request_id,
            lambda: cbor.parse(body), encode, refuse,
        )

    async def _respond_query(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
        request_id: str,
    ) -> Answer:
        action, form = query.action(body) if body else ("", {})
        version = form.get("Version", "")
        svc, err_svc = self._query_service(action, version)
        service_name = svc.service_name if svc is not None else ""

        def encode(result: dict[str, Any] | bytes) -> Answer:
            assert svc is not None
            xml = query.encode(svc, svc.operation_model(action), result, request_id)
            return Answer(200, query.CONTENT_TYPE, {}, xml)

        def refuse(e: AwsError) -> Answer:
            return Answer(e.status, query.CONTENT_TYPE, {}, query.encode_error(err_svc, e, request_id))

        def decode() -> dict[str, Any]:
            if svc is None:
                raise UnknownOperationException(f"Unknown action {action!r} of version {version!r}.")
            return query.parse(svc.operation_model(action), form)

        return await self._serve(
            service_name, action, method, raw_path, raw_query, headers, body, request_id,
            decode, encode, refuse,
        )

    def _query_service(
        self, action: str, version: str
    ) -> tuple[ServiceModel | None, ServiceModel | None]:
        """The Query service serving ``action`` at API ``version``, and the one to name in an
        error (that one, else any serving ``action``)."""
        services = {s for s, n in self._ops if n == action and s not in model.TARGETS}
        known = [model.service(s) for s in sorted(services)]
        svc = next((m for m in known if m.api_version == version), None)
        return svc, svc or (known[0] if known else None)

    async def _respond_rest(
        self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str], body: bytes,
        request_id: str,
    ) -> Answer:
        qs = _query_lists(raw_query)
        found = self._rest.match(method, raw_path, qs)
        service, name = (found[0].service_name, found[1].name) if found else ("", "")

        def decode() -> dict[str, Any]:
            if found is None:
                raise UnknownOperationException(f"No operation serves {method} {raw_path}.")
            return restjson.parse(found[1], found[2], qs, dict(headers), body)

        def encode(result: dict[str, Any] | bytes) -> Answer:
            assert found is not None
            status, extra, payload = restjson.encode(found[1], result)
            return Answer(status, restjson.CONTENT_TYPE, extra, payload)

        def refuse(e: AwsError) -> Answer:
            extra, payload = restjson.encode_error(e)
            status = 404 if found is None and e.status == 400 else e.status  # no such route
            return Answer(status, restjson.CONTENT_TYPE, extra, payload)

        return await self._serve(
            service, name, method, raw_path, raw_query, headers, body, request_id, decode, encode, refuse
        )

    async def _serve(
        self, service: str, name: str, method: str, raw_path: str, raw_query: str,
        headers: Mapping[str, str], body: bytes, request_id: str,
        decode: Callable[[], dict[str, Any]],
        encode: Callable[[dict[str, Any] | bytes], Answer],
        refuse: Callable[[AwsError], Answer],
    ) -> Answer:
        """The path every protocol but JSON shares: authenticate, decode, validate, call."""
        target = f"{service}.{name}"
        started = time.perf_counter()
        code = "200"
        try:
            digest = hashlib.sha256(body).hexdigest()
            credential = self.authenticate(method, raw_path, raw_query, headers, digest, service=service)
            params = decode()
            handler = self._ops.get((service, name))
            if handler is None:
                raise UnknownOperationException(f"Unknown operation {target!r}.")
            check = self._validators.get((service, name))
            if check is not None:
                check(params)
            call = Call(headers, service, name, credential, request_id)
            self._authorize(call, params)
            return encode(await handler(call, params))
        except AwsError as e:
            code = e.code
            log.info("control error", extra={"target": target, "error": e.code, "detail": e.message})
            return refuse(e)
        except UnicodeEncodeError:  # text from the request the store cannot hold (a lone surrogate)
            code = SerializationException.code
            return refuse(SerializationException(_SURROGATE))
        except StoreUnavailable as e:
            code = ServiceUnavailable.code
            answer = refuse(unavailable(target, e))
            answer.headers["Retry-After"] = str(RETRY_AFTER)
            return answer
        except Exception as e:
            code = "InternalFailure"
            log_unexpected(log, "control handler failed", e, target=target)
            return refuse(InternalFailure("The request processing has failed."))
        finally:
            self._observe(service, name, code, started)

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
                method, raw_path, raw_query, headers, hashlib.sha256(body).hexdigest(), service=service
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
            check = self._validators.get((service, name))
            if check is not None:
                check(params)
            call = Call(headers, service, name, credential, request_id)
            self._authorize(call, params)
            result = await handler(call, params)
            return 200, result if isinstance(result, bytes) else _dumps(result)
        except AwsError as e:
            code = e.code
            log.info("control error", extra={"target": target, "error": e.code, "detail": e.message})
            return e.status, _dumps(e.body())
        except UnicodeEncodeError:  # text from the request the store cannot hold (a lone surrogate)
            code = SerializationException.code
            return 400, _dumps(SerializationException(_SURROGATE).body())
        except StoreUnavailable as e:
            code = ServiceUnavailable.code
            return 503, _dumps(unavailable(target, e).body())
        except Exception as e:
            code = "InternalFailure"
            log_unexpected(log, "control handler failed", e, target=target)
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


def error_answer(raw_path: str, headers: Mapping[str, str], error: AwsError, request_id: str) -> Answer:
    """``error`` in the shape of the protocol a request speaks (told apart as :meth:`Operations.respond`
    does), for a refusal made before any operation is known (a body too large)."""
    ctype = headers.get("content-type", "").split(";")[0].strip().lower()
    if "x-amz-target" not in headers and headers.get("smithy-protocol") == "rpc-v2-cbor":
        return Answer(error.status, cbor.CONTENT_TYPE, dict(CBOR_HEADERS), cbor.encode_error(error))
    if "x-amz-target" not in headers and raw_path == "/" and ctype == query.FORM:
        return Answer(error.status, query.CONTENT_TYPE, {}, query.encode_error(None, error, request_id))
    if "x-amz-target" in headers or raw_path == "/":
        return Answer(error.status, CONTENT_TYPES[0], {}, _dumps(error.body()))
    extra, payload = restjson.encode_error(error)
    return Answer(error.status, restjson.CONTENT_TYPE, extra, payload)


def unavailable(target: str, cause: StoreUnavailable) -> ServiceUnavailable:
    """What a request answers when the state store cannot be reached (logged once a request)."""
    log.warning("control request refused: state store unavailable",
                extra={"target": target, "detail": str(cause)})
    return ServiceUnavailable(
        "The service is unavailable now (its state store cannot be reached). Retry the request."
    )


class InternalFailure(ServerException):
    """What any unexpected failure of a handler answers (no detail on the wire). A kind of
    ServerException answering ``InternalFailure``, so it registers no name of its own
    (``dockyard.control.workers`` registers that one)."""

    code = "InternalFailure"


def _query_lists(raw_query: str) -> dict[str, list[str]]:
    from urllib.parse import parse_qs

    return parse_qs(raw_query, keep_blank_values=True)


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _parse(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        params = jsonbound.loads(body, surrogates=True)  # a part may name the field (InvalidInput)
    except ValueError as e:
        raise SerializationException(f"Request body is not valid JSON: {e}.") from None
    if not isinstance(params, dict):
        raise SerializationException("Request body must be a JSON object.")
    return params
