"""ES256 tokens: what registry.jwt signs it verifies, and nothing else."""

import base64
import json
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry import jwt

KEY = ec.generate_private_key(ec.SECP256R1())
KID = jwt.key_id(KEY.public_key())
NOW = 1_700_000_000


def claims(**extra):
    return {"iss": "dockyard", "aud": "dockyard", "sub": "alice", "exp": NOW + 300, "nbf": NOW,
            "iat": NOW, **extra}


def decode(token, now=NOW, key=KEY, audience="dockyard"):
    return jwt.decode(token, key.public_key(), jwt.key_id(key.public_key()), audience, now)


def test_a_signed_token_decodes_to_its_claims():
    token = jwt.encode(claims(access=[{"type": "repository", "name": "a", "actions": ["pull"]}]), KEY, KID)
    assert decode(token)["access"][0]["name"] == "a"


def test_the_header_names_es256_and_the_key_id():
    token = jwt.encode(claims(), KEY, KID)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header == {"typ": "JWT", "alg": "ES256", "kid": KID}


def test_the_key_id_has_the_libtrust_form():
    # Twelve groups of four base32 characters (A-Z, 2-7); a group may be all digits.
    assert re.fullmatch(r"[A-Z2-7]{4}(:[A-Z2-7]{4}){11}", KID), KID
    for _ in range(50):
        kid = jwt.key_id(ec.generate_private_key(ec.SECP256R1()).public_key())
        assert re.fullmatch(r"[A-Z2-7]{4}(:[A-Z2-7]{4}){11}", kid), kid


def test_the_signature_is_64_raw_bytes():
    token = jwt.encode(claims(), KEY, KID)
    assert len(base64.urlsafe_b64decode(token.split(".")[2] + "==")) == 64


def test_a_token_signed_by_another_key_is_refused():
    other = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(claims(), other, KID)
    with pytest.raises(jwt.InvalidToken, match="signature"):
        decode(token)


def test_a_token_with_changed_claims_is_refused():
    head, _, sig = jwt.encode(claims(), KEY, KID).split(".")
    forged = jwt.b64url(json.dumps(claims(sub="admin")).encode())
    with pytest.raises(jwt.InvalidToken):
        decode(f"{head}.{forged}.{sig}")


def test_alg_none_is_refused():
    head = jwt.b64url(json.dumps({"alg": "none", "kid": KID}).encode())
    body = jwt.b64url(json.dumps(claims()).encode())
    with pytest.raises(jwt.InvalidToken, match="alg"):
        decode(f"{head}.{body}.")


def test_an_expired_token_is_refused_after_the_leeway():
    token = jwt.encode(claims(), KEY, KID)
    decode(token, now=NOW + 300 + jwt.LEEWAY - 1)
    with pytest.raises(jwt.InvalidToken, match="expired"):
        decode(token, now=NOW + 300 + jwt.LEEWAY)


def test_a_token_from_the_future_is_refused():
    token = jwt.encode(claims(nbf=NOW + 100), KEY, KID)
    with pytest.raises(jwt.InvalidToken, match="not yet"):
        decode(token)


def test_a_token_for_another_audience_is_refused():
    with pytest.raises(jwt.InvalidToken, match="audience"):
        decode(jwt.encode(claims(aud="elsewhere"), KEY, KID))


@pytest.mark.parametrize(
    "token",
    ["", "a.b", "a.b.c.d", "!!!.???.***", "eyJ9.eyJ9.AA", "e30.e30.AA", "W10.W10.AA", "e30=.e30.AA"],
)
def test_malformed_tokens_raise_invalid_token_and_nothing_else(token):
    with pytest.raises(jwt.InvalidToken):
        decode(token)


def test_the_key_is_created_once_with_mode_0600_and_then_reused(tmp_path):
    path = tmp_path / "key.pem"
    first = jwt.load_or_create_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = jwt.load_or_create_key(path)
    assert jwt.key_id(first.public_key()) == jwt.key_id(again.public_key())


def test_processes_racing_to_create_the_key_all_end_up_with_the_stored_one(tmp_path):
    path = tmp_path / "key.pem"
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: jwt.load_or_create_key(path), range(16)))
    stored = jwt.key_id(jwt.load_or_create_key(path).public_key())
    assert {jwt.key_id(k.public_key()) for k in keys} == {stored}
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


def test_a_token_nested_too_deep_to_parse_is_invalid_not_a_crash():
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    deep = b64(b"[" * 3000 + b"]" * 3000)
    for token in (f"{deep}.{b64(b'{}')}.{b64(bytes(64))}", f"{b64(b'{}')}.{deep}.{b64(bytes(64))}"):
        with pytest.raises(jwt.InvalidToken):
            jwt.decode(token, KEY.public_key(), KID, "dockyard", NOW)
