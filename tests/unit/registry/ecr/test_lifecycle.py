"""Lifecycle policies: validation, the examples of ECR's documentation, and their application
(expired images gone, their blobs reclaimed by garbage collection)."""

from __future__ import annotations

import json
import time

import pytest

from dockyard.store import Store
from registry import gc
from registry.ecr import data
from registry.ecr.lifecycle import DAY, Candidate, LifecycleError, evaluate, parse
from registry.ecr.lifecycles import apply_all
from registry.metadata import Metadata
from registry.part import MIGRATIONS
from registry.storage.blobs import BlobStore
from registry.storage.driver import MemoryDriver
from tests.unit.registry.test_gc import push_blob, push_manifest

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

NOW = 1_700_000_000.0


def policy(*selections: dict) -> str:
    return json.dumps(
        {
            "rules": [
                {
                    "rulePriority": i + 1,
                    "description": f"rule {i + 1}",
                    "selection": s,
                    "action": {"type": "expire"},
                }
                for i, s in enumerate(selections)
            ]
        }
    )


def image(name: str, days_ago: float, *tags: str) -> Candidate:
    return Candidate(name, tags, NOW - days_ago * DAY)


def expired(text: str, images: list[Candidate]) -> dict[str, int]:
    return evaluate(parse(text), images, NOW)


# -- the examples of https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_examples.html --
def test_filtering_on_image_age_expires_untagged_images_older_than_14_days():
    text = policy(
        {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 14}
    )
    images = [image("old", 20), image("young", 3), image("tagged-old", 30, "v1")]
    assert expired(text, images) == {"old": 1}


def test_filtering_on_image_count_keeps_one_untagged_image():
    text = policy({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1})
    images = [image("a", 3), image("b", 2), image("c", 1), image("t", 5, "v1")]
    assert expired(text, images) == {"a": 1, "b": 1}


def test_filtering_on_multiple_rules_expires_only_what_the_first_rule_does_not_keep():
    # Rule 1 (prod, keep 1) marks A; rule 2 (beta, keep 1) would mark A and B, but A is taken
    # and B was selected by rule 1, which keeps it: only A expires.
    text = policy(
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["prod"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["beta"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
    )
    images = [image("A", 10, "beta-1", "prod-1"), image("B", 9, "beta-2", "prod-2"), image("C", 8, "beta-3")]
    assert expired(text, images) == {"A": 1}


def test_filtering_on_multiple_tags_in_a_single_rule_needs_every_prefix():
    images = [
        image("A", 12, "alpha-1"),
        image("B", 11, "beta-1"),
        image("C", 10, "alpha-2", "beta-2"),
        image("D", 4, "alpha-3"),
        image("E", 3, "alpha-4", "beta-3"),
    ]
    by_count = policy(
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["alpha", "beta"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        }
    )
    assert expired(by_count, images) == {"C": 1}
    by_age = policy(
        {
            "tagStatus": "tagged",
            "tagPrefixList": ["alpha", "beta"],
            "countType": "sinceImagePushed",
            "countUnit": "days",
            "countNumber": 5,
        }
    )
    assert expired(by_age, images) == {"C": 1}


def test_filtering_on_all_images_comes_last_and_counts_what_earlier_rules_selected():
    text = policy(
        {
            "tagStatus": "tagged",
            "tagPatternList": ["prod*"],
            "countType": "imageCountMoreThan",
            "countNumber": 1,
        },
        {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 2},
    )
    images = [
        image("p1", 5, "prod-1"),
        image("p2", 4, "prod-2"),
        image("u1", 3),
        image("d1", 2, "dev"),
        image("u2", 1),
    ]
    # rule 1 expires p1 (keeps p2); rule 2 keeps the 2 newest (u2, d1) and would expire u1, p2, p1:
    # p2 is protected by rule 1's selection, p1 already expired.
    assert expired(text, images) == {"p1": 1, "u1": 2}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON"),
        (json.dumps({"rules": []}), "non-empty list"),
        (json.dumps({"rules": [], "x": 1}), "one field, rules"),
        (
            policy({"tagStatus": "sometimes", "countType": "imageCountMoreThan", "countNumber": 1}),
            "tagStatus",
        ),
        (
            policy({"tagStatus": "tagged", "countType": "imageCountMoreThan", "countNumber": 1}),
            "rules[0].selection: tagStatus tagged needs exactly one of tagPrefixList and tagPatternList",
        ),
        (
            policy({"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1}),
            "countUnit days",
        ),
        (
            policy({"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 0}),
            "countNumber",
        ),
        (
            policy(
                {
                    "tagStatus": "untagged",
                    "countType": "imageCountMoreThan",
                    "countUnit": "days",
                    "countNumber": 1,
                }
            ),
            "countUnit cannot be given",
        ),
        (
            policy(
                {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1},
                {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
            ),
            "tagStatus any must have the highest rulePriority",
        ),
        (
            policy(
                {
                    "tagStatus": "tagged",
                    "tagPatternList": ["a*b*c*d*e*f"],
                    "countType": "imageCountMoreThan",
                    "countNumber": 1,
                }
            ),
            "more than 4 wildcards",
        ),
        (
            json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 1,
                            },
                            "action": {"type": "delete"},
                        }
                    ]
                }
            ),
            "action must be",
        ),
        (
            json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": 1,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                    * 2
                }
            ),
            "unique",
        ),
    ],
)
def test_a_malformed_policy_is_refused_saying_what_is_wrong(text, problem):
    with pytest.raises(LifecycleError) as e:
        parse(text)
    assert problem in str(e.value)


async def test_applying_a_policy_expires_images_and_gc_reclaims_their_blobs(tmp_path):
    store = Store.open(tmp_path / "state.db", MIGRATIONS)
    try:
        meta = Metadata(store)
        blobs = BlobStore(MemoryDriver(), meta)
        digests = []
        for n in range(3):
            layer = await push_blob(blobs.uploads, "shop/web", f"layer {n}".encode())
            digests.append(await push_manifest(meta, "shop/web", [(layer, 7)], tag=f"v{n}"))
        await data.update(
            store,
            "shop/web",
            lifecycle=policy({"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}),
        )
        now = time.time()
        done = await apply_all(meta, now=now)
        kept = [i.digest for i in data.image_rows(store, "shop/web")]
        assert len(done["shop/web"]) == 2 and len(kept) == 1 and kept[0] not in done["shop/web"]
        assert data.settings(store, "shop/web").lifecycle_evaluated == now
        report = await gc.collect_garbage(store, blobs, 0, uploads=blobs.uploads, now=now + 10)
        assert len(report.blobs_deleted) == 2
    finally:
        store.close()
