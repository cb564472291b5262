from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from dockyard.aws import sigv4
from dockyard.aws.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

KEY, SECRET = "DKYDTEST", "s3cret"
BODY = b'{"maxResults": 5}'


def botocore_signed(body: bytes = BODY, path: str = "/", secret: str = SECRET) -> dict[str, str]:
    req = AWSRequest(
        method="POST",
        url=f"http://127.0.0.1:8080{path}",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.ListClusters",
        },
    )
    SigV4Auth(Credentials(KEY, secret), "ecs", "us-east-1").add_auth(req)
    headers = {k.lower(): v for k, v in req.headers.items()}
    headers["host"] = "127.0.0.1:8080"
    headers.pop("x-amz-content-sha256", None)
    return headers


def verify(headers: dict[str, str], body: bytes = BODY, now: datetime | None = None, path: str = "/"):
    import hashlib

    return sigv4.verify(
        "POST", path, "", headers, hashlib.sha256(body).hexdigest(),
        lambda k: SECRET if k == KEY else None, now,
    )


def test_a_request_signed_by_botocore_verifies():
    cred = verify(botocore_signed())
    assert (cred.access_key, cred.region, cred.service) == (KEY, "us-east-1", "ecs")


def test_a_changed_body_fails_the_signature():
    with pytest.raises(InvalidSignatureException):
        verify(botocore_signed(), body=b'{"maxResults": 6}')


def test_a_wrong_secret_fails_the_signature():
    with pytest.raises(InvalidSignatureException):
        verify(botocore_signed(secret="other"))


def test_a_different_path_fails_the_signature():
    with pytest.raises(InvalidSignatureException):
        verify(botocore_signed(path="/"), path="/x")


def test_an_unknown_key_is_unrecognized():
    headers = botocore_signed()
    headers["authorization"] = headers["authorization"].replace(KEY, "NOPE")
    with pytest.raises(UnrecognizedClientException):
        verify(headers)


def test_clock_skew_over_five_minutes_is_rejected_both_ways():
    headers = botocore_signed()
    for delta in (timedelta(minutes=6), -timedelta(minutes=6)):
        with pytest.raises(InvalidSignatureException, match="Signature expired"):
            verify(headers, now=datetime.now(UTC) + delta)
    verify(headers, now=datetime.now(UTC) + timedelta(minutes=4))


def test_missing_and_garbled_authorization_are_told_apart():
    headers = botocore_signed()
    del headers["authorization"]
    with pytest.raises(MissingAuthenticationTokenException):
        verify(headers)
    headers["authorization"] = "AWS4-HMAC-SHA256 garbage"
    with pytest.raises(IncompleteSignatureException):
        verify(headers)


def test_sign_produces_what_verify_accepts():
    headers = sigv4.sign(
        "POST", "/", {"host": "h:1", "content-type": "application/x-amz-json-1.1"}, BODY,
        KEY, SECRET, "us-east-1", "ecs",
    )
    assert verify(headers).access_key == KEY


def scoped(headers: dict[str, str], body: bytes = BODY, **kw: object):
    import hashlib

    return sigv4.verify(
        "POST", "/", "", headers, hashlib.sha256(body).hexdigest(), lambda k: SECRET if k == KEY else None,
        **kw,  # type: ignore[arg-type]
    )


def with_signed_headers(headers: dict[str, str], names: str) -> dict[str, str]:
    """``headers`` whose Authorization claims to sign only ``names``."""
    auth = headers["authorization"]
    before, _, rest = auth.partition("SignedHeaders=")
    return {**headers, "authorization": before + "SignedHeaders=" + names + "," + rest.partition(",")[2]}


@pytest.mark.parametrize("names", ["content-type;x-amz-date;x-amz-target", "content-type;host;x-amz-target"])
def test_host_and_x_amz_date_must_be_signed(names: str):
    with pytest.raises(IncompleteSignatureException, match="must be a signed header"):
        verify(with_signed_headers(botocore_signed(), names))


@pytest.mark.parametrize("late", ["x-amz-target", "content-type", "smithy-protocol"])
def test_a_header_that_steers_the_request_must_be_signed_when_sent(late: str):
    headers = sigv4.sign("POST", "/", {"host": "h:1"}, BODY, KEY, SECRET, "us-east-1", "ecs")
    verify(headers)  # signed over host;x-amz-date alone, and carrying nothing else: fine
    headers[late] = "AmazonEC2ContainerServiceV20141113.ListTaskDefinitions"  # added after signing
    with pytest.raises(IncompleteSignatureException, match=late):
        verify(headers)


def test_an_unsigned_payload_is_refused():
    headers = sigv4.sign(
        "POST", "/", {"host": "h:1", "x-amz-content-sha256": "UNSIGNED-PAYLOAD"}, BODY, KEY, SECRET,
        "us-east-1", "ecs",
    )
    with pytest.raises(IncompleteSignatureException, match="UNSIGNED-PAYLOAD"):
        verify(headers)


def test_the_scope_must_name_the_endpoints_region_and_one_of_its_services():
    headers = botocore_signed()
    assert scoped(headers, region="us-east-1", services=("ecs", "ecr")).service == "ecs"
    with pytest.raises(InvalidSignatureException, match="region: 'eu-west-1', not 'us-east-1'"):
        scoped(headers, region="eu-west-1")
    with pytest.raises(InvalidSignatureException, match="service: 'servicediscovery', not 'ecs'"):
        scoped(headers, services=("servicediscovery",))
