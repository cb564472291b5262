"""``WWW-Authenticate`` challenges as registries send them."""

from __future__ import annotations

from registry.pullthrough.challenge import Challenge, parse_challenge


def test_a_docker_token_challenge_gives_realm_service_and_scope():
    header = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"'
    c = parse_challenge(header)
    assert c == Challenge(
        "bearer",
        {
            "realm": "https://auth.docker.io/token",
            "service": "registry.docker.io",
            "scope": "repository:library/alpine:pull",
        },
    )
    assert c.realm == "https://auth.docker.io/token"


def test_quoted_commas_stay_inside_their_value():
    c = parse_challenge('Bearer realm="http://h/token",scope="repository:a:pull,push"')
    assert c is not None and c.params["scope"] == "repository:a:pull,push"


def test_a_basic_challenge_and_the_scheme_in_any_case():
    assert parse_challenge('Basic realm="upstream"') == Challenge("basic", {"realm": "upstream"})
    assert parse_challenge("BASIC") == Challenge("basic", {})


def test_no_header_is_no_challenge():
    assert parse_challenge(None) is None
    assert parse_challenge("  ") is None
