"""Pull-through cache rules: validation, prefix matching, refresh, the credential secret."""

from __future__ import annotations

import json

import pytest

from registry.pullthrough.rules import (
    ROOT,
    CredentialsInvalid,
    Rule,
    RuleError,
    UnsupportedUpstream,
    check_credential_arn,
    check_prefix,
    credentials,
    match,
    needs_refresh,
    normalize_url,
)


def rule(prefix: str, **kw: object) -> Rule:
    return Rule(prefix, "https://upstream.example", 0.0, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("prefix", ["ab", "docker-hub", "team/cache", "a.b_c", "x/", ROOT])
def test_prefixes_the_model_admits_are_accepted_without_a_trailing_slash(prefix):
    assert check_prefix(prefix) == prefix.rstrip("/")


@pytest.mark.parametrize("prefix", ["a", "Upper", "-ab", "ab-", "a//b", "x" * 31, "a___b", "a b", ""])
def test_prefixes_the_model_refuses_name_the_field(prefix):
    with pytest.raises(RuleError, match="ecrRepositoryPrefix"):
        check_prefix(prefix)


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("registry-1.docker.io", "https://registry-1.docker.io"),
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("https://quay.io/", "https://quay.io"),
        ("https://host:8443/mirror", "https://host:8443/mirror"),
    ],
)
def test_upstream_urls_are_normalized(given, stored):
    assert normalize_url(given) == stored


@pytest.mark.parametrize(
    "url", ["", "ftp://host", "https://", "https://u:p@host", "https://host/?q=1", "http://host#x", "://x"]
)
def test_an_unsupported_upstream_url_is_refused(url):
    with pytest.raises(UnsupportedUpstream):
        normalize_url(url)


def test_credential_arns_must_name_an_ecr_pullthroughcache_secret():
    good = "arn:aws:secretsmanager:us-east-1:000000000000:secret:ecr-pullthroughcache/upstream"
    assert check_credential_arn(good) == good
    for bad in (good.replace("ecr-pullthroughcache/", "other/"), "arn:aws:ssm:us-east-1:0:parameter/x", "x"):
        with pytest.raises(RuleError, match="credentialArn"):
            check_credential_arn(bad)


def test_the_longest_prefix_wins_and_root_takes_the_rest():
    rules = [rule("hub"), rule("hub/team"), rule(ROOT)]
    assert match(rules, "hub/team/app") == (rules[1], "app")
    assert match(rules, "hub/other/app") == (rules[0], "other/app")
    assert match(rules, "plain") == (rules[2], "plain")
    assert match(rules[:2], "hubx/app") is None
    assert match(rules[:2], "hub") is None  # the prefix alone names no repository


def test_an_upstream_prefix_replaces_the_local_one():
    r = rule("mirror", upstream_prefix="base/images")
    assert match([r], "mirror/app") == (r, "base/images/app")


def test_docker_hub_official_images_live_under_library():
    r = rule("dh", upstream_registry="docker-hub")
    assert match([r], "dh/alpine") == (r, "library/alpine")
    assert match([r], "dh/bitnami/redis") == (r, "bitnami/redis")


def test_a_tag_is_rechecked_once_the_interval_passed():
    assert needs_refresh(None, 100.0, 86400.0)
    assert not needs_refresh(100.0, 100.0 + 86399.0, 86400.0)
    assert needs_refresh(100.0, 100.0 + 86400.0, 86400.0)
    assert needs_refresh(100.0, 100.0, 0.0)  # 0: every pull


def test_the_credential_secret_holds_username_and_access_token():
    assert credentials(json.dumps({"username": "u", "accessToken": "t"})) == ("u", "t")
    empty = json.dumps({"username": "", "accessToken": "t"})
    for bad in ("not json", "[]", json.dumps({"username": "u"}), empty):
        with pytest.raises(CredentialsInvalid):
            credentials(bad)
