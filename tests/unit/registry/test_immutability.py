"""Which tags a repository's tag mutability lets move."""

from __future__ import annotations

import pytest

from registry.immutability import check_filters, is_immutable, refused_tags

LATEST = [{"filterType": "WILDCARD", "filter": "latest"}]


@pytest.mark.parametrize(
    ("mode", "filters", "tag", "immutable"),
    [
        ("MUTABLE", [], "v1", False),
        ("IMMUTABLE", [], "v1", True),
        ("IMMUTABLE", [], "latest", True),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "latest", False),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "dev-42", False),
        ("IMMUTABLE_WITH_EXCLUSION", ["latest", "dev-*"], "v1", True),
        ("MUTABLE_WITH_EXCLUSION", ["release-*"], "release-1.0", True),
        ("MUTABLE_WITH_EXCLUSION", ["release-*"], "v1", False),
        ("MUTABLE_WITH_EXCLUSION", ["a.b"], "aXb", False),  # a dot is a dot, not any character
    ],
)
def test_a_tag_is_immutable_as_the_mode_and_its_exclusions_say(mode, filters, tag, immutable):
    assert is_immutable(mode, filters, tag) is immutable


def test_only_an_immutable_tag_moving_to_another_digest_is_refused():
    current = {"v1": "sha256:a", "latest": "sha256:a"}
    assert refused_tags("IMMUTABLE", [], current, ["v1"], "sha256:a") == []  # same image again
    assert refused_tags("IMMUTABLE", [], current, ["v2"], "sha256:b") == []  # a new tag
    assert refused_tags("IMMUTABLE", [], current, ["v1", "v2"], "sha256:b") == ["v1"]
    assert refused_tags("IMMUTABLE_WITH_EXCLUSION", ["latest"], current, ["latest"], "sha256:b") == []
    assert refused_tags("MUTABLE", [], current, ["v1"], "sha256:b") == []


@pytest.mark.parametrize(
    ("mode", "filters", "problem"),
    [
        ("MUTABLE", [], None),
        ("IMMUTABLE_WITH_EXCLUSION", LATEST, None),
        ("SOMETIMES", [], "imageTagMutability must be one of"),
        ("MUTABLE", LATEST, "can only be given with"),
        ("IMMUTABLE_WITH_EXCLUSION", [], "needs at least one"),
        ("MUTABLE_WITH_EXCLUSION", [{"filterType": "REGEX", "filter": "x"}], "WILDCARD"),
        ("MUTABLE_WITH_EXCLUSION", [{"filterType": "WILDCARD", "filter": "a b"}], "must be 1-128"),
        ("MUTABLE_WITH_EXCLUSION", LATEST * 6, "at most 5"),
    ],
)
def test_exclusion_filters_are_checked_against_the_mode(mode, filters, problem):
    found = check_filters(mode, filters)
    assert (found is None) if problem is None else (problem in found)
