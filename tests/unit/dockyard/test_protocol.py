"""``Operations.answer`` and ``Operations.authenticate`` in process, with stub handlers."""

import base64
import json
import logging
from typing import Any

import pytest

from dockyard.aws import sigv4
from dockyard.aws.errors import (
    IncompleteSignatureException,
    InvalidParameterException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)
from dockyard.aws.protocol import ECS, EMPTY_SHA256, Call, Operations

KEY, SECRET = "DKYDTEST", "s3cret"
SECRETS = {KEY: SECRET}


def ops_with_stubs() -> tuple[Operations, list[tuple[Call, dict[str, Any]]]]:
    seen: list[tuple[Call, dict[str, Any]]] = []
    ops = Operations(SECRETS.get)

    async def echo(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append((call, params))
        return {"clusterArns": [], "got": params}

    async def refuses(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        raise InvalidParameterException("cluster is not a name")

    async def breaks(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("secret internal detail /var/lib/dockyard")

    async def cached(call: Call, params: dict[str, Any]) -> bytes:
        return b'{"already":"json"}'

    ops.add(ECS, "ListClusters", echo, readonly=True)
    ops.add(ECS, "DeleteCluster", refuses)
    ops.add(ECS, "Break", breaks)
    ops.add(ECS, "Cached", cached)  # type: ignore[arg-type]
    return ops, seen


def signed(
    op: str = "ListClusters", body: bytes = b'{"maxResults": 5}', secret: str = SECRET,
    ctype: str = "application/x-amz-json-1.1",
) -> dict[str, str]:
    headers = {"host": "127.0.0.1:8080", "content-type": ctype}
    if op:
        headers["x-amz-target"] = f"{ECS}.{op}"
    return sigv4.sign("POST", "/", headers, body, KEY, secret, "us-east-1", "ecs")


async def answer(ops: Operations, headers: dict[str, str], body: bytes = b'{"maxResults": 5}'):
    status, payload = await ops.answer("POST", "/", "", headers, body, "rid-1")
    return status, json.loads(payload)


async def test_a_signed_call_reaches_its_handler_with_the_parsed_body():
    ops, seen = ops_with_stubs()
    status, out = await answer(ops, signed())
    assert (status, out) == (200, {"clusterArns": [], "got": {"maxResults": 5}})
    call, _ = seen[0]
    assert (call.service, call.operation, call.request_id) == (ECS, "ListClusters", "rid-1")
    assert call.credential is not None and call.credential.access_key == KEY
    assert call.credential.service == "ecs"


async def test_json_1_0_is_accepted_and_an_empty_body_is_no_parameters():
    ops, seen = ops_with_stubs()
    status, _ = await answer(ops, signed(body=b"", ctype="application/x-amz-json-1.0; charset=utf-8"), b"")
    assert status == 200
    assert seen[0][1] == {}


async def test_a_handler_may_answer_with_ready_json_bytes():
    ops, _ = ops_with_stubs()
    assert await answer(ops, signed("Cached")) == (200, {"already": "json"})


async def test_a_bad_signature_is_refused_before_the_handler():
    ops, seen = ops_with_stubs()
    status, out = await answer(ops, signed(secret="wrong"))
    assert status == 403
    assert out["__type"] == "InvalidSignatureException"
    assert seen == []


async def test_a_body_other_than_the_signed_one_is_refused():
    ops, seen = ops_with_stubs()
    status, out = await answer(ops, signed(), b'{"maxResults": 6}')
    assert (status, out["__type"]) == (403, "InvalidSignatureException")
    assert seen == []


async def test_an_unsigned_call_is_missing_its_token():
    ops, _ = ops_with_stubs()
    headers = {"host": "h", "content-type": "application/x-amz-json-1.1"}
    headers["x-amz-target"] = f"{ECS}.ListClusters"
    status, out = await answer(ops, headers)
    assert (status, out["__type"]) == (403, "MissingAuthenticationTokenException")


async def test_an_unknown_key_is_an_unrecognized_client():
    ops, _ = ops_with_stubs()
    headers = sigv4.sign("POST", "/", {"host": "h", "x-amz-target": f"{ECS}.ListClusters"}, b"", "NOPE",
                         "x", "us-east-1", "ecs")
    status, out = await answer(ops, headers, b"")
    assert (status, out["__type"]) == (403, "UnrecognizedClientException")


@pytest.mark.parametrize(
    ("op", "message"),
    [("NoSuchThing", f"Unknown operation '{ECS}.NoSuchThing'."), ("", "Missing X-Amz-Target header.")],
)
async def test_an_unknown_or_missing_target_is_an_unknown_operation(op: str, message: str):
    ops, _ = ops_with_stubs()
    status, out = await answer(ops, signed(op))
    assert (status, out) == (400, {"__type": "UnknownOperationException", "message": message})


@pytest.mark.parametrize("ctype", ["application/json", "text/plain", ""])
async def test_a_content_type_other_than_aws_json_is_a_serialization_error(ctype: str):
    ops, seen = ops_with_stubs()
    status, out = await answer(ops, signed(ctype=ctype))
    assert (status, out["__type"]) == (400, "SerializationException")
    assert seen == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b"\xff\xfe", b'"a string"'])
async def test_a_body_that_is_not_a_json_object_is_a_serialization_error(body: bytes):
    ops, seen = ops_with_stubs()
    status, out = await answer(ops, signed(body=body), body)
    assert (status, out["__type"]) == (400, "SerializationException")
    assert seen == []


async def test_an_aws_error_from_the_handler_is_its_envelope():
    ops, _ = ops_with_stubs()
    status, out = await answer(ops, signed("DeleteCluster"))
    assert (status, out) == (400, {"__type": "InvalidParameterException", "message": "cluster is not a name"})


async def test_an_unexpected_exception_is_a_500_that_leaks_nothing(caplog: pytest.LogCaptureFixture):
    ops, _ = ops_with_stubs()
    with caplog.at_level(logging.ERROR, logger="dockyard.control"):
        status, payload = await ops.answer("POST", "/", "", signed("Break"), b'{"maxResults": 5}', "r")
    assert status == 500
    failed = {"__type": "InternalFailure", "message": "The request processing has failed."}
    assert json.loads(payload) == failed
    assert b"secret" not in payload and b"Traceback" not in payload
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]  # one line, no traceback at ERROR
    assert len(errors) == 1 and errors[0].exc_info is None and errors[0].error == "RuntimeError"


def test_a_too_large_body_is_refused_with_413():
    from dockyard.aws.errors import RequestEntityTooLargeException

    ops, _ = ops_with_stubs()
    status, payload = ops.refuse(signed(), RequestEntityTooLargeException("too big"), "r")
    assert status == 413
    assert json.loads(payload)["__type"] == "RequestEntityTooLargeException"


async def test_dispatch_refuses_a_declared_oversized_body_without_reading_it():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from dockyard.aws.protocol import MAX_BODY

    ops, seen = ops_with_stubs()
    app = web.Application()
    app.router.add_post("/", ops.dispatch)
    async with TestClient(TestServer(app)) as client:
        resp = await client.post("/", data=b"x" * (MAX_BODY + 1), headers=signed())
        assert resp.status == 413
        assert resp.headers["Content-Type"] == "application/x-amz-json-1.1"
        assert (await resp.json(content_type=None))["__type"] == "RequestEntityTooLargeException"
        resp = await client.post("/", data=b'{"maxResults": 5}', headers=signed())
        assert resp.status == 200
    assert len(seen) == 1


def test_authenticate_takes_a_sigv4_get_with_an_empty_body():
    ops, _ = ops_with_stubs()
    headers = sigv4.sign(
        "GET", "/events", {"host": "h"}, b"", KEY, SECRET, "us-east-1", "ecs", raw_query="since=3"
    )
    cred = ops.authenticate("GET", "/events", "since=3", headers, EMPTY_SHA256)
    assert (cred.access_key, cred.service) == (KEY, "ecs")


def basic(key: str, secret: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()}


def test_authenticate_takes_basic_credentials_only_where_asked():
    ops, _ = ops_with_stubs()
    cred = ops.authenticate("GET", "/events", "", basic(KEY, SECRET), EMPTY_SHA256, basic=True)
    assert cred.access_key == KEY
    with pytest.raises(IncompleteSignatureException):  # not SigV4, and Basic not allowed here
        ops.authenticate("GET", "/events", "", basic(KEY, SECRET), EMPTY_SHA256)


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        (basic(KEY, "wrong"), UnrecognizedClientException),
        (basic("NOPE", SECRET), UnrecognizedClientException),
        ({"authorization": "Basic %%%"}, IncompleteSignatureException),
        ({}, MissingAuthenticationTokenException),
    ],
)
def test_authenticate_refuses_bad_basic_credentials(headers: dict[str, str], error: type[Exception]):
    ops, _ = ops_with_stubs()
    with pytest.raises(error):
        ops.authenticate("GET", "/events", "", headers, EMPTY_SHA256, basic=True)


async def test_respond_answers_post_slash_of_no_protocol_as_json():
    ops, _ = ops_with_stubs()
    headers = signed("")
    out = await ops.respond("POST", "/", "", headers, b'{"maxResults": 5}', "r")
    assert (out.status, out.content_type) == (400, "application/x-amz-json-1.1")
    missing = {"__type": "UnknownOperationException", "message": "Missing X-Amz-Target header."}
    assert json.loads(out.body) == missing


async def test_a_json_service_botocore_has_no_model_of_is_served_by_its_target():
    ops = Operations(SECRETS.get)

    async def stub(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": 1}

    ops.add("DockyardOwn_20260101", "Ping", stub)
    headers = {"host": "h", "content-type": "application/x-amz-json-1.1"}
    headers["x-amz-target"] = "DockyardOwn_20260101.Ping"
    signed_headers = sigv4.sign("POST", "/", headers, b"{}", KEY, SECRET, "us-east-1", "dockyard")
    assert await answer(ops, signed_headers, b"{}") == (200, {"ok": 1})


async def test_a_signed_list_clusters_cannot_be_sent_on_as_another_operation():
    ops, seen = ops_with_stubs()
    ops.add(ECS, "ListTaskDefinitions", ops._ops[(ECS, "ListClusters")])
    # the attack: a signature over host;x-amz-date only, the target set afterwards
    headers = sigv4.sign("POST", "/", {"host": "127.0.0.1:8080"}, b"{}", KEY, SECRET, "us-east-1", "ecs")
    headers["content-type"] = "application/x-amz-json-1.1"
    headers["x-amz-target"] = f"{ECS}.ListTaskDefinitions"
    status, body = await answer(ops, headers, b"{}")
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")
    # and with the target signed, changing it breaks the signature
    headers = signed("ListClusters", b"{}")
    headers["x-amz-target"] = f"{ECS}.ListTaskDefinitions"
    status, body = await answer(ops, headers, b"{}")
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert seen == []


async def test_a_call_must_be_signed_for_its_own_service_and_the_endpoints_region():
    ops, seen = ops_with_stubs()
    headers = {"host": "h", "content-type": "application/x-amz-json-1.1"}
    headers["x-amz-target"] = f"{ECS}.ListClusters"
    for region, service in (("us-east-1", "servicediscovery"), ("eu-west-1", "ecs")):
        out = sigv4.sign("POST", "/", headers, b"{}", KEY, SECRET, region, service)
        status, body = await answer(ops, out, b"{}")
        assert (status, body["__type"]) == (403, "InvalidSignatureException"), (region, service)
    regional = Operations(SECRETS.get, region="eu-west-1")
    regional.add(ECS, "ListClusters", ops._ops[(ECS, "ListClusters")])
    out = sigv4.sign("POST", "/", headers, b"{}", KEY, SECRET, "eu-west-1", "ecs")
    assert (await answer(regional, out, b"{}"))[0] == 200
    assert len(seen) == 1


def test_a_route_outside_the_dispatch_takes_the_scope_of_any_service_served():
    ops, _ = ops_with_stubs()
    ops.add("Route53AutoNaming_v20170314", "ListNamespaces", ops._ops[(ECS, "ListClusters")])
    assert ops.signing_names() == ("ecs", "servicediscovery")
    for service in ("ecs", "servicediscovery"):
        headers = sigv4.sign("GET", "/events", {"host": "h"}, b"", KEY, SECRET, "us-east-1", service)
        assert ops.authenticate("GET", "/events", "", headers, EMPTY_SHA256).service == service
    headers = sigv4.sign("GET", "/events", {"host": "h"}, b"", KEY, SECRET, "us-east-1", "s3")
    with pytest.raises(InvalidSignatureException):
        ops.authenticate("GET", "/events", "", headers, EMPTY_SHA256)


async def test_a_body_too_large_is_refused_in_the_shape_of_the_protocol_it_came_in():
    import cbor2
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from dockyard.aws.protocol import MAX_BODY

    ops, seen = ops_with_stubs()
    app = web.Application()
    ops.install(app.router, rest=True)
    big = b"x" * (MAX_BODY + 1)
    async with TestClient(TestServer(app)) as client:
        cbor = {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"}
        path = "/service/Route53AutoNaming_v20170314/operation/ListNamespaces"
        resp = await client.post(path, data=big, headers=cbor)
        assert (resp.status, resp.headers["Content-Type"]) == (413, "application/cbor")
        assert cbor2.loads(await resp.read())["__type"] == "RequestEntityTooLargeException"
        resp = await client.post("/", data=big, headers={"content-type": "application/x-www-form-urlencoded"})
        assert (resp.status, resp.headers["Content-Type"]) == (413, "text/xml")
        assert b"<Code>RequestEntityTooLargeException</Code>" in await resp.read()
        resp = await client.put("/v20190125/meshes/m1", data=big)
        assert (resp.status, resp.headers["x-amzn-ErrorType"]) == (413, "RequestEntityTooLargeException")
    assert seen == []
