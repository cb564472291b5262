"""The Condition operators, with AWS's rules for absent keys and several values."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.iam.conditions import Condition, holds, parse_operator


def check(operator: str, key: str, values: Any, **ctx: Any) -> bool:
    qualifier, op, if_exists = parse_operator(operator)
    vals = tuple(str(v) for v in (values if isinstance(values, list) else [values]))
    context = {k.replace("__", ":").lower(): v for k, v in ctx.items()}
    return holds(Condition(op, key.lower(), vals, if_exists, qualifier), context)


@pytest.mark.parametrize(
    ("operator", "values", "value", "expected"),
    [
        ("StringEquals", "ci", "ci", True),
        ("StringEquals", "ci", "CI", False),
        ("StringEquals", ["a", "ci"], "ci", True),  # values of one key: OR
        ("StringNotEquals", "ci", "ci", False),
        ("StringNotEquals", ["a", "b"], "ci", True),
        ("StringNotEquals", ["a", "ci"], "ci", False),
        ("StringEqualsIgnoreCase", "ci", "CI", True),
        ("StringNotEqualsIgnoreCase", "ci", "CI", False),
        ("StringLike", "c*", "ci", True),
        ("StringLike", "c?", "ci", True),
        ("StringLike", "c?", "cii", False),
        ("StringNotLike", "dev-*", "prod-1", True),
        ("StringNotLike", "dev-*", "dev-1", False),
        ("NumericLessThan", "10", "9", True),
        ("NumericLessThan", "10", "10", False),
        ("NumericLessThanEquals", "10", "10", True),
        ("NumericGreaterThan", "10", "11", True),
        ("NumericGreaterThanEquals", "10", "9", False),
        ("NumericEquals", "10", "10.0", True),
        ("NumericNotEquals", "10", "11", True),
        ("NumericLessThan", "10", "ten", False),
        ("DateLessThan", "2030-01-01T00:00:00Z", "2026-12-02T01:00:00Z", True),
        ("DateGreaterThan", "2030-01-01T00:00:00Z", "2026-12-02T01:00:00Z", False),
        ("DateLessThan", "2030-01-01T00:00:00Z", "1800000000", True),  # epoch seconds
        ("DateEquals", "2026-12-02T01:00:00Z", "2026-12-02T01:00:00+00:00", True),
        ("Bool", "true", True, True),
        ("Bool", "false", True, False),
        ("Bool", "true", "TRUE", True),
        ("IpAddress", "10.0.0.0/8", "10.1.2.3", True),
        ("IpAddress", "10.0.0.0/8", "11.1.2.3", False),
        ("IpAddress", "127.0.0.1", "127.0.0.1", True),
        ("IpAddress", "::1/128", "::1", True),
        ("IpAddress", "10.0.0.0/8", "not-an-ip", False),
        ("NotIpAddress", "10.0.0.0/8", "11.1.2.3", True),
        ("ArnLike", "arn:aws:ecs:*:*:cluster/prod*", "arn:aws:ecs:us-east-1:0:cluster/prod-2", True),
        ("ArnEquals", "arn:aws:ecs:us-east-1:0:cluster/prod", "arn:aws:ecs:us-east-1:0:cluster/prod", True),
        ("ArnNotLike", "arn:aws:ecs:*:*:cluster/prod*", "arn:aws:ecs:us-east-1:0:cluster/dev", True),
        ("ArnNotEquals", "arn:aws:ecs:*:*:cluster/dev", "arn:aws:ecs:us-east-1:0:cluster/dev", False),
        ("BinaryEquals", "QmluYXJ5", "QmluYXJ5", True),
    ],
)
def test_operators(operator: str, values: Any, value: Any, expected: bool) -> None:
    assert check(operator, "k", values, k=value) is expected


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("StringEquals", False), ("StringLike", False), ("NumericLessThan", False), ("Bool", False),
        ("IpAddress", False), ("ArnLike", False),
        # negated operators hold when the key is absent
        ("StringNotEquals", True), ("StringNotLike", True), ("NotIpAddress", True), ("ArnNotLike", True),
        ("NumericNotEquals", True),
        # IfExists: true when absent
        ("StringEqualsIfExists", True), ("IpAddressIfExists", True),
        ("ForAllValues:StringEquals", True), ("ForAnyValue:StringEquals", False),
    ],
)
def test_an_absent_key(operator: str, expected: bool) -> None:
    assert check(operator, "aws:SourceIp", "10.0.0.1", other="x") is expected


def test_if_exists_still_checks_a_present_key() -> None:
    assert check("StringEqualsIfExists", "k", "a", k="a")
    assert not check("StringEqualsIfExists", "k", "a", k="b")


def test_null() -> None:
    assert check("Null", "k", "true")
    assert not check("Null", "k", "true", k="v")
    assert check("Null", "k", "false", k="v")
    assert not check("Null", "k", "false")


def test_keys_are_matched_without_regard_to_case() -> None:
    _qualifier, op, _if_exists = parse_operator("StringEquals")
    assert holds(Condition(op, "aws:username", ("ci",)), {"aws:username": "ci"})


def test_set_operators_over_several_values() -> None:
    assert check("ForAllValues:StringEquals", "tags", ["a", "b"], tags=["a", "b"])
    assert not check("ForAllValues:StringEquals", "tags", ["a", "b"], tags=["a", "c"])
    assert check("ForAnyValue:StringEquals", "tags", ["a"], tags=["c", "a"])
    assert not check("ForAnyValue:StringEquals", "tags", ["a"], tags=["c", "d"])
    assert check("ForAnyValue:StringNotEquals", "tags", ["a"], tags=["a", "b"])
    assert not check("ForAllValues:StringNotEquals", "tags", ["a"], tags=["a", "b"])


def test_variables_in_condition_values() -> None:
    assert check("StringLike", "ecs:cluster", "arn:*:cluster/${aws:username}",
                 ecs__cluster="arn:x:cluster/ci", aws__username="ci")
    assert not check("StringEquals", "k", "${aws:username}", k="${aws:username}")


@pytest.mark.parametrize("name", ["StringSortOf", "NullIfExists", "ForSomeValues:StringEquals", "", "Bool:"])
def test_unknown_operators_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="unknown condition operator"):
        parse_operator(name)
