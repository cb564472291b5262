"""The token service: issued tokens verify to exactly their scopes, until they expire."""

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry import jwt
from registry.auth import Access, TokenService, _basic
from registry.scopes import Scope


class Clock:
    def __init__(self, now=1_700_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def tokens(clock):
    return TokenService(ec.generate_private_key(ec.SECP256R1()), clock=clock)


def test_an_issued_token_carries_its_scopes_and_the_standard_claims(tokens, clock):
    answer = tokens.issue("alice", [Scope("repository", "shop/web", ("pull", "push"))])
    assert answer["token"] == answer["access_token"]
    assert answer["expires_in"] == 300 and answer["issued_at"].endswith("Z")
    claims = jwt.decode(answer["token"], tokens.public_key, tokens.kid, "dockyard", clock.now)
    assert claims["access"] == [{"type": "repository", "name": "shop/web", "actions": ["pull", "push"]}]
    assert claims["sub"] == "alice" and claims["iss"] == "dockyard" and claims["aud"] == "dockyard"
    assert claims["exp"] == claims["iat"] + 300 and claims["nbf"] == claims["iat"]
    assert claims["jti"]


def test_a_verified_token_allows_exactly_what_it_carries(tokens):
    access = tokens.verify(tokens.issue("alice", [Scope("repository", "a", ("pull",))])["token"])
    assert access.subject == "alice"
    assert access.allows(Scope("repository", "a", ("pull",)))
    assert not access.allows(Scope("repository", "a", ("pull", "push")))
    assert not access.allows(Scope("repository", "a/b", ("pull",)))


def test_a_cached_token_still_expires(tokens, clock):
    token = tokens.issue("alice", [])["token"]
    tokens.verify(token)
    clock.now += 300 + jwt.LEEWAY
    with pytest.raises(jwt.InvalidToken):
        tokens.verify(token)


def test_a_token_of_another_service_instance_is_refused(tokens, clock):
    other = TokenService(ec.generate_private_key(ec.SECP256R1()), clock=clock)
    with pytest.raises(jwt.InvalidToken):
        tokens.verify(other.issue("admin", [Scope("repository", "a", ("pull",))])["token"])


def test_a_token_of_another_issuer_is_refused(tokens, clock):
    stranger = TokenService(tokens.key, issuer="someone-else", clock=clock)
    with pytest.raises(jwt.InvalidToken, match="issuer"):
        tokens.verify(stranger.issue("admin", [])["token"])


def test_garbage_in_the_access_claim_grants_nothing():
    access = Access.from_claims({"exp": 1, "sub": 5, "access": [
        "x", {"type": "repository", "name": "a", "actions": "pull"}, {"type": 1, "name": "a", "actions": []},
        {"type": "repository", "name": "b", "actions": ["pull", 3]},
    ]})
    assert access.granted == frozenset({("repository", "b", "pull")}) and access.subject == ""


@pytest.mark.parametrize(
    ("header", "creds"),
    [("", None), ("Basic YWxpY2U6cHc6eA==", ("alice", "pw:x")), ("basic YTo=", ("a", ""))],
)
def test_basic_credentials_parse(header, creds):
    assert _basic(header) == creds


@pytest.mark.parametrize("header", ["Bearer x", "Basic !!!", "Basic YWxpY2U=", "Basic /w=="])
def test_malformed_basic_credentials_raise_value_error(header):
    with pytest.raises(ValueError):
        _basic(header)
