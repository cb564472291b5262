"""The cluster query language: parse, evaluate, and clear errors."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameterException
from runner.query import And, Compare, Not, Or, QueryError, matches, parse

HOST = {
    "attribute:ecs.instance-type": "t2.micro",
    "attribute:ecs.availability-zone": "us-east-1a",
    "attribute:ecs.os-type": "linux",
    "attribute:ecs.ami-id": "ami-123",
    "attribute:ecs.cpu-architecture": "x86_64",
    "attribute:stack": "prod",
    "attribute:gpus": "4",
    "instanceId": "i-1",
    "runningTasksCount": "3",
}
GROUPS = ["service:web", "family:batch"]

# (expression, expected on HOST/GROUPS)
TABLE = [
    ("attribute:ecs.instance-type == t2.micro", True),
    ("attribute:ecs.instance-type equals t2.small", False),
    ("attribute:ecs.instance-type == t2.*", True),
    ("ecs.instance-type == t2.micro", True),
    ("attribute:ecs.availability-zone != us-east-1b", True),
    ("attribute:ecs.availability-zone not_equals us-east-1a", False),
    ("attribute:gpus > 2", True),
    ("attribute:gpus >= 4", True),
    ("attribute:gpus < 4", False),
    ("attribute:gpus <= 10", True),
    ("runningTasksCount less_than 5", True),
    ("attribute:ecs.availability-zone in [us-east-1a, us-east-1b]", True),
    ("attribute:ecs.availability-zone in (us-east-1c)", False),
    ("attribute:ecs.availability-zone not_in [us-east-1c]", True),
    ("attribute:ecs.availability-zone !in [us-east-1a]", False),
    ("attribute:ecs.instance-type =~ t2\\..*", True),
    ("attribute:ecs.instance-type =~ 'g[23]\\..*'", False),
    ("attribute:ecs.instance-type !~ g2.*", True),
    ("attribute:stack exists", True),
    ("attribute:missing exists", False),
    ("attribute:missing !exists", True),
    ("attribute:missing not_exists", True),
    ("attribute:missing != prod", True),
    ("attribute:missing == prod", False),
    ("attribute:stack == prod and attribute:ecs.os-type == linux", True),
    ("attribute:stack == dev or attribute:ecs.os-type == linux", True),
    ("attribute:stack == dev || attribute:ecs.os-type == windows", False),
    ("not attribute:stack == dev", True),
    ("!(attribute:stack == prod && attribute:gpus > 1)", False),
    ("(attribute:stack == dev or attribute:stack == prod) and ecs.cpu-architecture == x86_64", True),
    ("attribute:ecs.instance-type =~ ^t2\\.micro$", True),
    ("attribute:stack == dev or attribute:stack == prod and attribute:gpus > 10", False),
    ("task:group == service:web", True),
    ("task:group != service:web", False),
    ("task:group == service:api", False),
    ("task:group in [service:api, family:batch]", True),
    ("task:group =~ service:.*", True),
    ("task:group exists", True),
    ("instanceId == i-1", True),
    ("attribute:ecs.ami-id == 'ami-123'", True),
]


@pytest.mark.parametrize(("expr", "expected"), TABLE)
def test_an_expression_evaluates_against_a_host(expr, expected):
    assert matches(expr, HOST, GROUPS) is expected


def test_and_binds_tighter_than_or():
    assert parse("attribute:a == 1 or attribute:b == 2 and attribute:c == 3") == Or((
        Compare("attribute:a", "==", ("1",)),
        And((Compare("attribute:b", "==", ("2",)), Compare("attribute:c", "==", ("3",)))),
    ))


def test_not_applies_to_the_next_factor():
    assert parse("not attribute:a exists and attribute:b exists") == And((
        Not(Compare("attribute:a", "exists")), Compare("attribute:b", "exists"),
    ))


def test_a_host_without_tasks_has_no_group():
    assert matches("task:group != service:web", HOST, []) is True
    assert matches("task:group exists", HOST, []) is False


# (expression, fragment of the error)
MALFORMED = [
    ("", "it is empty"),
    ("attribute:stack ==", "expected a value at position 19, found the end"),
    ("attribute:stack", "expected an operator"),
    ("stack == prod", "unknown attribute 'stack'"),
    ("attribute:stack == prod and", "expected an attribute"),
    ("(attribute:stack == prod", "expected ')'"),
    ("attribute:stack == prod)", "expected 'and', 'or' or the end"),
    ("attribute:stack in [a, b", "expected ',' or ']'"),
    ("attribute:stack in a", "expected '(' or '['"),
    ("attribute:stack =~ '(unclosed'", "bad regular expression"),
    ("attribute:stack == prod ; rm", "unexpected ';'"),
    ("attribute:stack ! prod", "expected 'in' or 'exists' after '!'"),
    ("attribute:stack == prod prod", "expected 'and', 'or' or the end"),
]


@pytest.mark.parametrize(("expr", "fragment"), MALFORMED)
def test_a_malformed_expression_is_an_invalid_parameter_naming_the_problem(expr, fragment):
    with pytest.raises(QueryError) as e:
        parse(expr)
    assert isinstance(e.value, InvalidParameterException)
    assert fragment in e.value.message


def test_random_text_either_parses_or_is_a_query_error():
    import random

    rng = random.Random(7)
    alphabet = ["attribute:a", "task:group", "==", "!=", ">", "in", "exists", "!", "and", "or", "not",
                "(", ")", "[", "]", ",", "x", "'q r'", "=~", "'['", ";", "\\", "5"]
    parsed = 0
    for _ in range(3000):
        text = " ".join(rng.choice(alphabet) for _ in range(rng.randint(1, 8)))
        try:
            expr = parse(text)
        except QueryError:
            continue
        parsed += 1
        matches(expr, HOST, GROUPS)
    assert parsed > 0
