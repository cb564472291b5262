"""EventBridge event patterns (pure), with the examples of EventBridge's documentation."""

from __future__ import annotations

import pytest

from runner.eventbridge.pattern import PatternError, check, matches, parse

EVENT = {
    "version": "0", "id": "6a7e8feb-b491", "detail-type": "ECR Image Action", "source": "aws.ecr",
    "account": "000000000000", "time": "2026-12-02T10:00:00Z", "region": "us-east-1", "resources": [],
    "detail": {"result": "SUCCESS", "repository-name": "web", "image-tag": "v2", "action-type": "PUSH",
               "image-digest": "sha256:ab", "size": 1024, "tags": ["a", "b"], "source-ip": "10.0.0.12"},
}


@pytest.mark.parametrize(("pattern", "hit"), [
    ({"source": ["aws.ecr"]}, True),
    ({"source": ["aws.ecs"]}, False),
    ({"source": ["aws.ecs", "aws.ecr"]}, True),
    ({"detail": {"action-type": ["PUSH"], "result": ["SUCCESS"]}}, True),
    ({"detail": {"repository-name": [{"prefix": "we"}]}}, True),
    ({"detail": {"repository-name": [{"prefix": {"equals-ignore-case": "WE"}}]}}, True),
    ({"detail": {"repository-name": [{"suffix": "eb"}]}}, True),
    ({"detail": {"repository-name": [{"equals-ignore-case": "WEB"}]}}, True),
    ({"detail": {"image-tag": [{"wildcard": "v*"}]}}, True),
    ({"detail": {"image-tag": [{"anything-but": "v2"}]}}, False),
    ({"detail": {"image-tag": [{"anything-but": ["v1", "v3"]}]}}, True),
    ({"detail": {"image-tag": [{"anything-but": {"prefix": "v"}}]}}, False),
    ({"detail": {"size": [{"numeric": [">", 1000, "<=", 2048]}]}}, True),
    ({"detail": {"size": [{"numeric": ["=", 1024.0]}]}}, True),
    ({"detail": {"size": [{"numeric": ["<", 10]}]}}, False),
    ({"detail": {"size": [1024]}}, True),
    ({"detail": {"size": ["1024"]}}, False),  # a string is not the number
    ({"detail": {"image-tag": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"missing": [{"exists": True}]}}, False),
    ({"detail": {"tags": ["b"]}}, True),  # any element of a list
    ({"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}}, True),
    ({"detail": {"source-ip": [{"cidr": "10.0.1.0/24"}]}}, False),
    ({"$or": [{"source": ["aws.ecs"]}, {"detail": {"image-tag": ["v2"]}}]}, True),
    ({"detail": {"$or": [{"size": [1]}, {"result": ["FAILURE"]}]}}, False),
    ({"nested": {"deeper": [{"exists": False}]}}, True),  # an absent object's fields are absent
    ({"resources": [{"exists": True}]}, True),
    ({"detail": {"image-tag": [None]}}, False),
])
def test_matching(pattern, hit):
    check(pattern)
    assert matches(pattern, EVENT) is hit


@pytest.mark.parametrize(("pattern", "says"), [
    ('{"source": "aws.ecr"}', "inside an array"),
    ('{"source": []}', "Empty arrays"),
    ("{}", "non-empty JSON object"),
    ("[1]", "non-empty JSON object"),
    ('{"a": [{"numeric": [">>", 1]}]}', "numeric range operator"),
    ('{"a": [{"numeric": [">", 1, "<"]}]}', "one or two comparisons"),
    ('{"a": [{"exists": "yes"}]}', "either true or false"),
    ('{"a": [{"prefix": 5}]}', "must be a string"),
    ('{"a": [{"cidr": "10.0.0.0/99"}]}', "Malformed CIDR"),
    ('{"a": [{"regex": "x"}]}', "Unrecognized match type regex"),
    ('{"a": [{"anything-but": [true]}]}', "only strings and numbers"),
    ('{"$or": [{"a": [1]}]}', "at least 2 patterns"),
    ("{not json", "not valid JSON"),
])
def test_bad_patterns(pattern, says):
    with pytest.raises(PatternError, match=says):
        parse(pattern)
