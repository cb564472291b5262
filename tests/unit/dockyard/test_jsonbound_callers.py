"""Every parser of network JSON goes through dockyard.jsonbound: a body nested too deep or
holding a lone surrogate gets the protocol's own 4xx error, never an exception that escapes."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dockyard.aws import cbor, paging, sigv4
from dockyard.aws.errors import InvalidParameterException, SerializationException
from dockyard.aws.protocol import ECS, Call, Operations
from registry import jwt
from registry.manifest import OCI_MANIFEST, ManifestError, parse_manifest

DEEP = b"[" * 5_000 + b"]" * 5_000
D = "sha256:" + "1" * 64


def _manifest(**extra: object) -> bytes:
    return json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": D, "size": 2},
        "layers": [], **extra,
    }).encode()


@pytest.mark.parametrize("body", [
    b'{"schemaVersion": 2, "layers": ' + DEEP + b"}",
    _manifest(annotations={"k": {"k": {"k": "v"}}}).replace(b'"v"', DEEP),
    _manifest(artifactType="\ud800"),
    _manifest(annotations={"\udc00": "v"}),
])
def test_a_manifest_too_deep_or_with_a_lone_surrogate_is_invalid(body: bytes):
    with pytest.raises(ManifestError):
        parse_manifest(body, OCI_MANIFEST)


def test_a_jwt_header_nested_deep_is_an_invalid_token():
    key = ec.generate_private_key(ec.SECP256R1())
    token = f"{jwt.b64url(DEEP)}.{jwt.b64url(b'{}')}.{jwt.b64url(b'x' * 64)}"
    with pytest.raises(jwt.InvalidToken):
        jwt.decode(token, key.public_key(), "kid", "dockyard", 0.0)


@pytest.mark.parametrize("token", [
    base64.urlsafe_b64encode(b'{"o": ' + DEEP + b"}").decode(),
    base64.urlsafe_b64encode(b'{"o": ' + b"9" * 5000 + b"}").decode(),
    base64.urlsafe_b64encode(b'{"o": "\\ud800"}').decode(),
])
def test_a_pagination_token_nested_deep_or_huge_is_the_services_error(token: str):
    with pytest.raises(InvalidParameterException):
        paging.page([1, 2, 3], {"nextToken": token}, InvalidParameterException)


def test_a_cbor_body_nested_past_the_json_bound_is_a_serialization_error():
    with pytest.raises(SerializationException):
        cbor.parse(b"\xa1\x61a" + b"\x81" * 100 + b"\x01")
    assert cbor.parse(b"\xa1\x61a" + b"\x81" * 10 + b"\x01")["a"]


async def test_an_aws_json_body_nested_deep_is_a_serialization_exception():
    ops = Operations({"K": "s"}.get)

    async def echo(call: Call, params: dict) -> dict:
        return params

    ops.add(ECS, "ListClusters", echo)
    for body in (b'{"a": ' + DEEP + b"}", b'{"a": ' + b"[" * 70 + b"]" * 70 + b"}"):
        headers = {"host": "h", "content-type": "application/x-amz-json-1.1",
                   "x-amz-target": f"{ECS}.ListClusters"}
        headers = sigv4.sign("POST", "/", headers, body, "K", "s", "us-east-1", "ecs")
        status, payload = await ops.answer("POST", "/", "", headers, body, "rid")
        assert (status, json.loads(payload)["__type"]) == (400, "SerializationException")


async def test_a_lone_surrogate_the_store_cannot_hold_is_a_serialization_exception_not_a_500():
    ops = Operations({"K": "s"}.get)

    async def stores(call: Call, params: dict) -> dict:
        params["cluster"].encode()  # what sqlite does with a str it binds
        return {}

    ops.add(ECS, "ListServices", stores)
    body = b'{"cluster": "\\ud800"}'
    headers = {"host": "h", "content-type": "application/x-amz-json-1.1",
               "x-amz-target": f"{ECS}.ListServices"}
    headers = sigv4.sign("POST", "/", headers, body, "K", "s", "us-east-1", "ecs")
    status, payload = await ops.answer("POST", "/", "", headers, body, "rid")
    assert (status, json.loads(payload)["__type"]) == (400, "SerializationException")
