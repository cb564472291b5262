"""AWS Signature Version 4 verification (pure; no I/O).

The control API verifies what the client actually signed: the raw request path, the raw
query, the signed headers as received and the SHA-256 of the body it received (the AWS CLI
sends no ``x-amz-content-sha256`` for JSON services, so the body's own hash is used unless
the header is present and matches).

Nothing that steers the request may be left out of the signature: ``host`` and ``x-amz-date``
are always signed, and each header of ``must_sign`` the request carries (``content-type``,
``x-amz-target``, ``smithy-protocol`` on the control API: they pick the protocol and the
operation) must be too, else a signed ListClusters could be sent on as ListTaskDefinitions.
``x-amz-content-sha256: UNSIGNED-PAYLOAD`` is refused (the body could be replaced after
signing), and the credential's scope must name the endpoint's region and one of its services.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import posixpath
import re
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote

from dockyard.aws.errors import (
    IncompleteSignatureException,
    InvalidSignatureException,
    MissingAuthenticationTokenException,
    UnrecognizedClientException,
)

__all__ = ["MAX_SKEW_SECONDS", "MUST_SIGN", "Credential", "sign", "signing_key", "verify"]

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW_SECONDS = 300
MUST_SIGN = ("content-type", "x-amz-target", "smithy-protocol")
"""Headers that, when a request carries them, must be among its signed headers."""
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+),\s*SignedHeaders=(?P<sh>[^,\s]+),"
    r"\s*Signature=(?P<sig>[0-9a-fA-F]{64})\s*$"
)


@dataclass(frozen=True)
class Credential:
    """Who signed a verified request, and for which region and service."""

    access_key: str
    date: str
    region: str
    service: str


@functools.lru_cache(maxsize=1024)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived SigV4 key; cached, since it only changes per key, day, region and service."""
    k = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        k = hmac.new(k, part.encode(), hashlib.sha256).digest()
    return k


_AMZ_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$")


@functools.lru_cache(maxsize=64)
def _parse_amz_date(value: str) -> float:
    """``20261123T032000Z`` as a POSIX timestamp (``strptime`` costs ~10x more per request;
    requests signed in the same second share the answer)."""
    m = _AMZ_DATE.match(value)
    if not m:
        raise ValueError(value)
    return datetime(*(int(g) for g in m.groups()), tzinfo=UTC).timestamp()  # type: ignore[misc]


@functools.lru_cache(maxsize=256)
def _canonical_uri(raw_path: str) -> str:
    path = raw_path or "/"
    normalized = posixpath.normpath(path) if path != "/" else "/"
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return quote(normalized, safe="/~")


def _canonical_query(raw_query: str) -> str:
    pairs = []
    for part in raw_query.split("&") if raw_query else []:
        key, _, value = part.partition("=")
        pairs.append((quote(unquote(key), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{k}={v}" for k, v in sorted(pairs))


def canonical_request(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_hash: str,
) -> str:
    lines = [f"{name}:{' '.join(headers.get(name, '').split())}\n" for name in signed_headers]
    return "\n".join(
        [
            method.upper(),
            _canonical_uri(raw_path),
            _canonical_query(raw_query),
            "".join(lines),
            ";".join(signed_headers),
            payload_hash,
        ]
    )


@functools.lru_cache(maxsize=1024)
def _hmac_pads(secret: str, date: str, region: str, service: str) -> tuple[Any, Any]:
    """HMAC-SHA256 with the derived key, prepared (RFC 2104: the hashes of the key XOR the
    inner and outer pads): copying these costs half of ``hmac.digest``, which sets OpenSSL's
    HMAC up anew for every request."""
    key = signing_key(secret, date, region, service).ljust(64, b"\0")
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _signature(secret: str, amz_date: str, region: str, service: str, creq: str) -> str:
    """The hex signature of a canonical request, as SigV4 defines it."""
    date = amz_date[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(creq.encode()).hexdigest()])
    inner, outer = _hmac_pads(secret, date, region, service)
    mac = inner.copy()
    mac.update(to_sign.encode())
    out = outer.copy()
    out.update(mac.digest())
    return out.hexdigest()


def verify(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    body_sha256: str,
    secret_for: Callable[[str], str | None],
    now: datetime | None = None,
    region: str | None = None,
    services: Collection[str] | None = None,
    must_sign: Collection[str] = MUST_SIGN,
) -> Credential:
    """Verify a SigV4-signed request; return its credential or raise an AWS error.

    ``headers`` must be keyed by lower-case names. ``secret_for(access_key)`` returns the
    secret key or None for an unknown key. With ``region`` the credential's scope must name
    it, with ``services`` one of them (the first is the one an error names); each header of
    ``must_sign`` present in the request must be signed.
    """
    auth = headers.get("authorization")
    if not auth:
        raise MissingAuthenticationTokenException("Missing Authentication Token")
    m = _AUTH_RE.match(auth)
    if not m:
        raise IncompleteSignatureException(
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            "parameters with algorithm AWS4-HMAC-SHA256."
        )
    cred_parts = m["cred"].split("/")
    if len(cred_parts) != 5 or cred_parts[4] != "aws4_request":
        raise IncompleteSignatureException(
            f"Credential should be scoped to a valid region and service: {m['cred']!r}."
        )
    access_key, date, scope_region, scope_service, _ = cred_parts
    signed = m["sh"].lower().split(";")
    if "host" not in signed:
        raise IncompleteSignatureException("'Host' must be a signed header.")
    if "x-amz-date" not in signed:
        raise IncompleteSignatureException("'X-Amz-Date' must be a signed header.")
    unsigned = [name for name in must_sign if name in headers and name not in signed]
    if unsigned:
        raise IncompleteSignatureException(
            f"{', '.join(repr(n) for n in unsigned)} must be signed headers, as they are sent."
        )
    amz_date = headers.get("x-amz-date", "")
    try:
        when = _parse_amz_date(amz_date)
    except ValueError:
        raise IncompleteSignatureException(
            "Authorization header requires existence of a valid 'X-Amz-Date' header."
        ) from None
    if amz_date[:8] != date:
        raise InvalidSignatureException(
            f"Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            f"from HTTP: '{date}' != '{amz_date[:8]}'."
        )
    skew = (now.timestamp() if now else time.time()) - when
    if abs(skew) > MAX_SKEW_SECONDS:
        now = now or datetime.now(UTC)
        raise InvalidSignatureException(
            f"Signature expired: {amz_date} is now earlier or later than "
            f"{now.strftime('%Y%m%dT%H%M%SZ')} by more than {MAX_SKEW_SECONDS // 60} minutes."
        )
    if region is not None and scope_region != region:
        raise InvalidSignatureException(
            f"Credential should be scoped to a valid region: '{region}', not '{scope_region}'."
        )
    if services is not None and scope_service not in services:
        expected = next(iter(services), "")
        raise InvalidSignatureException(
            f"Credential should be scoped to correct service: '{expected}', not '{scope_service}'."
        )
    payload = headers.get("x-amz-content-sha256", body_sha256)
    if payload == "UNSIGNED-PAYLOAD":
        raise IncompleteSignatureException(
            "x-amz-content-sha256: UNSIGNED-PAYLOAD is not accepted: the body must be signed."
        )
    if payload != body_sha256:
        raise InvalidSignatureException("The provided 'x-amz-content-sha256' does not match the body.")
    secret = secret_for(access_key)
    if secret is None:
        raise UnrecognizedClientException("The security token included in the request is invalid.")
    creq = canonical_request(method, raw_path, raw_query, headers, signed, payload)
    expected_sig = _signature(secret, amz_date, scope_region, scope_service, creq)
    if not hmac.compare_digest(expected_sig, m["sig"].lower()):
        raise InvalidSignatureException(
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method."
        )
    return Credential(access_key, date, scope_region, scope_service)


def sign(
    method: str,
    url_path: str,
    headers: dict[str, str],
    body: bytes,
    access_key: str,
    secret: str,
    region: str,
    service: str,
    now: datetime | None = None,
    raw_query: str = "",
) -> dict[str, str]:
    """Sign a request (the CLI and benchmarks use this); returns headers to send."""
    now = now or datetime.now(UTC)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date = amz_date[:8]
    out = {k.lower(): v for k, v in headers.items()}
    out["x-amz-date"] = amz_date
    signed = sorted(out)
    payload = hashlib.sha256(body).hexdigest()
    creq = canonical_request(method, url_path, raw_query, out, signed, payload)
    scope = f"{date}/{region}/{service}/aws4_request"
    sig = _signature(secret, amz_date, region, service, creq)
    out["authorization"] = (
        f"{ALGORITHM} Credential={access_key}/{scope}, SignedHeaders={';'.join(signed)}, "
        f"Signature={sig}"
    )
    return out
