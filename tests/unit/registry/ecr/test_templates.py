"""Which repository creation template a new repository takes, and the settings it gives."""

from __future__ import annotations

from registry.ecr.templates import (
    CREATE_ON_PUSH,
    PULL_THROUGH_CACHE,
    ROOT,
    Template,
    choose,
    covers,
    settings_for,
)


def _t(prefix: str, *applied: str, **kw) -> Template:
    return Template(prefix, applied or (CREATE_ON_PUSH,), **kw)


def test_a_prefix_covers_the_repositories_under_it_and_not_a_longer_name():
    assert covers("prod", "prod/web")
    assert covers("prod/", "prod/web/api")
    assert not covers("prod", "prod")
    assert not covers("prod", "production/web")
    assert covers(ROOT, "anything")


def test_the_longest_covering_prefix_wins_and_root_comes_last():
    found = [_t(ROOT), _t("prod"), _t("prod/web"), _t("dev")]
    assert choose(found, "prod/web/api", CREATE_ON_PUSH).prefix == "prod/web"
    assert choose(found, "prod/db", CREATE_ON_PUSH).prefix == "prod"
    assert choose(found, "staging/x", CREATE_ON_PUSH).prefix == ROOT
    assert choose(found[1:], "staging/x", CREATE_ON_PUSH) is None


def test_only_templates_applied_for_that_kind_of_creation_are_chosen():
    found = [_t("hub", PULL_THROUGH_CACHE), _t(ROOT, CREATE_ON_PUSH)]
    assert choose(found, "hub/library/nginx", PULL_THROUGH_CACHE).prefix == "hub"
    assert choose(found, "hub/library/nginx", CREATE_ON_PUSH).prefix == ROOT
    assert choose(found, "other/x", PULL_THROUGH_CACHE) is None


def test_the_chosen_template_gives_its_settings_and_none_gives_the_defaults():
    template = _t(
        "prod",
        image_tag_mutability="IMMUTABLE_WITH_EXCLUSION",
        mutability_filters=({"filterType": "WILDCARD", "filter": "latest"},),
        encryption={"encryptionType": "KMS"},
        repository_policy='{"Statement": []}',
        lifecycle_policy='{"rules": []}',
        resource_tags=({"Key": "team", "Value": "shop"},),
    )
    s = settings_for(template, "prod/web", 5.0)
    assert (s.name, s.created, s.tag_mutability) == ("prod/web", 5.0, "IMMUTABLE_WITH_EXCLUSION")
    assert s.mutability_filters == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert s.encryption == {"encryptionType": "KMS"}
    assert (s.policy, s.lifecycle) == ('{"Statement": []}', '{"rules": []}')
    assert s.tags == [{"Key": "team", "Value": "shop"}]
    plain = settings_for(None, "x")
    assert (plain.tag_mutability, plain.policy, plain.tags) == ("MUTABLE", None, [])


def test_a_template_survives_its_json_form():
    template = _t("prod", PULL_THROUGH_CACHE, description="d", custom_role_arn="arn:aws:iam::0:role/r")
    assert Template.from_json(template.to_json()) == template
