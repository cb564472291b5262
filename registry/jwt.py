"""ES256 JSON Web Tokens (RFC 7519/7515/7518) with ``cryptography`` only: sign and verify.

The signing key is a P-256 private key that Dockyard generates on first start and keeps in the
data dir (PEM, mode 0600, :func:`load_or_create_key`). Tokens carry a ``kid`` in libtrust form
(the key ID docker/distribution computes: base32 of the first 240 bits of the SHA-256 of the
DER SubjectPublicKeyInfo, in 12 groups of 4 joined by ``:``).

:func:`decode` checks, in order: three base64url parts, a JSON header with ``alg`` ES256 and
the expected ``kid``, the signature (raw ``r || s``, 64 bytes), then the claims ``aud``,
``exp`` and ``nbf`` against the given time (with :data:`LEEWAY` seconds of clock skew). Any
failure raises :class:`InvalidToken`.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from dockyard import jsonbound
from dockyard.files import write_atomic

__all__ = ["LEEWAY", "InvalidToken", "decode", "encode", "key_id", "load_or_create_key"]

LEEWAY = 10.0


class InvalidToken(Exception):
    """The token is malformed, badly signed, for another audience, expired or not yet valid."""


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    if not text or any(c in text for c in "=+/"):
        raise InvalidToken("malformed base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError:
        raise InvalidToken("malformed base64url") from None


def key_id(public_key: ec.EllipticCurvePublicKey) -> str:
    """The libtrust key ID of ``public_key``."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(b32[i : i + 4] for i in range(0, 48, 4))


def load_or_create_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The P-256 key stored at ``path``; generated and written (mode 0600, atomically, never
    over a key another process wrote first) if the file does not exist."""
    if not path.exists():
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        if write_atomic(path, pem, 0o600, replace=False):
            return key
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"{path} is not a P-256 private key")
    return key


def encode(claims: dict[str, Any], key: ec.EllipticCurvePrivateKey, kid: str) -> str:
    """A compact ES256 JWS of ``claims`` with header ``{"typ","alg","kid"}``."""
    header = {"typ": "JWT", "alg": "ES256", "kid": kid}
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    der = key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    return signing_input + "." + b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


def decode(
    token: str, public_key: ec.EllipticCurvePublicKey, kid: str, audience: str, now: float
) -> dict[str, Any]:
    """The verified claims of ``token`` (see module docstring); raises InvalidToken."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a compact JWS")
    try:
        header = jsonbound.loads(unb64url(parts[0]), max_bytes=64 * 1024)
        claims = jsonbound.loads(unb64url(parts[1]), max_bytes=64 * 1024)
    except jsonbound.JsonError:
        raise InvalidToken("malformed JSON") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise InvalidToken("header and claims must be objects")
    if header.get("alg") != "ES256":
        raise InvalidToken("unsupported alg")
    if header.get("kid") != kid:
        raise InvalidToken("unknown signing key")
    sig = unb64url(parts[2])
    if len(sig) != 64:
        raise InvalidToken("bad signature length")
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    try:
        public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidToken("bad signature") from None
    aud = claims.get("aud")
    if aud != audience and not (isinstance(aud, list) and audience in aud):
        raise InvalidToken("wrong audience")
    exp, nbf = claims.get("exp"), claims.get("nbf", 0)
    if not isinstance(exp, int | float) or not isinstance(nbf, int | float):
        raise InvalidToken("exp and nbf must be numbers")
    if now >= exp + LEEWAY:
        raise InvalidToken("expired")
    if now + LEEWAY < nbf:
        raise InvalidToken("not yet valid")
    return claims
