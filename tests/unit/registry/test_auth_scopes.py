"""Scopes: parsing, what a principal is granted, and what a request needs."""

import pytest

from registry.scopes import Need, Scope, challenge_scope, grant, parse_scope, required_scopes


def repo(name, *actions):
    return Scope("repository", name, actions)


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("repository:shop/web:pull", repo("shop/web", "pull")),
        ("repository:shop/web:pull,push", repo("shop/web", "pull", "push")),
        ("repository:a:push,pull,push", repo("a", "push", "pull")),
        ("registry:catalog:*", Scope("registry", "catalog", ("*",))),
        ("repository:host:5000/a:pull", repo("host:5000/a", "pull")),
    ],
)
def test_scopes_parse_as_distribution_does(text, scope):
    assert parse_scope(text) == scope
    assert str(parse_scope(text)) == str(scope)


@pytest.mark.parametrize("text", ["", "repository", "repository:a", "repository::pull", ":a:pull",
                                  "repository:a:", "repository:a:,"])
def test_malformed_scopes_parse_to_none(text):
    assert parse_scope(text) is None


def test_a_user_gets_only_the_granted_actions_of_a_covering_prefix():
    got = grant([repo("shop/web", "pull", "push")], admin=False, grants={"shop": ("pull",)}, anonymous=[])
    assert got == [repo("shop/web", "pull")]


def test_a_user_gets_nothing_outside_the_grant():
    assert grant([repo("other/web", "pull", "push")], admin=False, grants={"shop": ("pull", "push")},
                 anonymous=[]) == []


def test_a_prefix_does_not_cover_a_longer_sibling_name():
    assert grant([repo("shopping", "pull")], admin=False, grants={"shop": ("pull",)}, anonymous=[]) == []


def test_grants_on_several_covering_prefixes_add_up():
    got = grant([repo("shop/web", "pull", "push", "delete")], admin=False,
                grants={"shop": ("pull",), "shop/web": ("push",)}, anonymous=[])
    assert got == [repo("shop/web", "pull", "push")]


def test_an_admin_gets_every_action_asked_for_including_the_catalog():
    got = grant([repo("x/y", "*"), Scope("registry", "catalog", ("*",))], admin=True, grants={}, anonymous=[])
    assert got == [repo("x/y", "pull", "push", "delete"), Scope("registry", "catalog", ("*",))]


def test_only_an_admin_gets_the_catalog():
    assert grant([Scope("registry", "catalog", ("*",))], admin=False, grants={"*": ("pull",)},
                 anonymous=["*"]) == []


def test_anonymous_prefixes_give_pull_and_only_pull():
    got = grant([repo("public/app", "pull", "push"), repo("private/app", "pull")], admin=False, grants={},
                anonymous=["public"])
    assert got == [repo("public/app", "pull")]


def test_unknown_resource_types_are_never_granted():
    assert grant([Scope("unknown", "x", ("pull",))], admin=True, grants={}, anonymous=[]) == []


def test_repeated_scopes_for_one_repository_merge():
    got = grant([repo("a", "pull"), repo("a", "push")], admin=True, grants={}, anonymous=[])
    assert got == [repo("a", "pull", "push")]


@pytest.mark.parametrize(
    ("method", "path", "actions"),
    [
        ("GET", "/v2/shop/web/manifests/v1", ("pull",)),
        ("HEAD", "/v2/shop/web/blobs/sha256:abc", ("pull",)),
        ("GET", "/v2/shop/web/tags/list", ("pull",)),
        ("GET", "/v2/shop/web/referrers/sha256:abc", ("pull",)),
        ("PUT", "/v2/shop/web/manifests/v1", ("push",)),
        ("POST", "/v2/shop/web/blobs/uploads/", ("pull", "push")),
        ("PATCH", "/v2/shop/web/blobs/uploads/1234", ("pull", "push")),
        ("PUT", "/v2/shop/web/blobs/uploads/1234", ("pull", "push")),
        ("GET", "/v2/shop/web/blobs/uploads/1234", ("pull", "push")),
        ("DELETE", "/v2/shop/web/blobs/uploads/1234", ("pull", "push")),
        ("DELETE", "/v2/shop/web/manifests/v1", ("delete",)),
        ("DELETE", "/v2/shop/web/blobs/sha256:abc", ("delete",)),
    ],
)
def test_requests_need_the_actions_distribution_asks_for(method, path, actions):
    assert required_scopes(method, path, {}) == Need((repo("shop/web", *actions),))


def test_a_repository_named_like_a_route_still_parses_to_its_full_name():
    need = required_scopes("GET", "/v2/a/manifests/b/manifests/latest", {})
    assert need.scopes == (repo("a/manifests/b", "pull"),)


def test_the_catalog_needs_the_registry_catalog_scope():
    need = required_scopes("GET", "/v2/_catalog", {"n": "1"})
    assert need.scopes == (Scope("registry", "catalog", ("*",)),)


def test_the_base_and_unknown_paths_need_no_scope():
    assert required_scopes("GET", "/v2/", {}) == Need(())
    assert required_scopes("GET", "/v2/nothing-here", {}) == Need(())


def test_a_mount_names_its_source_and_the_challenge_asks_for_both():
    need = required_scopes("POST", "/v2/b/blobs/uploads/", {"mount": "sha256:abc", "from": "a"})
    assert need == Need((repo("b", "pull", "push"),), "a")
    assert challenge_scope(need) == "repository:b:pull,push repository:a:pull"


def test_a_mount_without_from_has_no_source():
    assert required_scopes("POST", "/v2/b/blobs/uploads/", {"mount": "sha256:abc"}).mount_from is None
