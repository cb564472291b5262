"""IAM policy evaluation against AWS's rules (explicit deny wins, default deny, Allow needed)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dockyard.iam.policy import READ_ONLY, PolicyError, Request, combine, evaluate, parse

CLUSTER = "arn:aws:ecs:us-east-1:000000000000:cluster/"


def allowed(doc: Any, action: str, *resources: str, **ctx: Any) -> bool:
    context = {k.replace("__", ":").lower(): v for k, v in ctx.items()}
    return evaluate([parse(doc)], Request(action, resources or ("*",), context)).allowed


def stmt(**kw: Any) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", **kw}]}


def test_nothing_matching_is_an_implicit_deny() -> None:
    doc = stmt(Action="ecs:ListClusters")
    assert allowed(doc, "ecs:ListClusters")
    d = evaluate([parse(doc)], Request("ecs:CreateCluster"))
    assert not d.allowed and not d.explicit_deny and d.resource == "*"


def test_no_policy_at_all_allows_nothing() -> None:
    assert not evaluate([], Request("ecs:ListClusters")).allowed


def test_an_explicit_deny_wins_over_any_allow() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:DeleteCluster", "Resource": CLUSTER + "prod"},
    ]}
    assert allowed(doc, "ecs:DeleteCluster", CLUSTER + "dev")
    d = evaluate([parse(doc)], Request("ecs:DeleteCluster", (CLUSTER + "prod",)))
    assert not d.allowed and d.explicit_deny and d.resource == CLUSTER + "prod"


def test_a_deny_in_one_policy_wins_over_an_allow_in_another() -> None:
    allow = parse(stmt(Action="*"))
    deny = parse({"Statement": {"Effect": "Deny", "Action": "ecs:*", "Resource": "*"}})
    assert not evaluate([allow, deny], Request("ecs:ListClusters")).allowed
    assert evaluate([allow, deny], Request("servicediscovery:ListServices")).allowed


@pytest.mark.parametrize(
    ("pattern", "action", "expected"),
    [
        ("ecs:Describe*", "ecs:DescribeClusters", True),
        ("ecs:Describe*", "ecs:ListClusters", False),
        ("ecs:describe*", "ecs:DescribeTasks", True),  # actions ignore case
        ("ECS:DESCRIBETASKS", "ecs:DescribeTasks", True),
        ("ecs:*", "ecs:RunTask", True),
        ("ecs:*", "servicediscovery:GetService", False),
        ("*", "anything:AtAll", True),
        ("ecs:Run?ask", "ecs:RunTask", True),
        ("ecs:Run?ask", "ecs:RunTTask", False),
        ("ecs:*Task", "ecs:StopTask", True),
        ("ecs:*Task", "ecs:StopTasks", False),
        ("ecs:List*", "ecs:ListTagsForResource", True),
    ],
)
def test_action_wildcards(pattern: str, action: str, expected: bool) -> None:
    assert allowed(stmt(Action=pattern), action) is expected


def test_not_action_allows_everything_else() -> None:
    doc = stmt(NotAction=["ecs:Delete*", "ecs:Deregister*"])
    assert allowed(doc, "ecs:CreateCluster")
    assert not allowed(doc, "ecs:DeleteCluster")
    assert not allowed(doc, "ecs:DeregisterTaskDefinition")


@pytest.mark.parametrize(
    ("pattern", "resource", "expected"),
    [
        ("*", CLUSTER + "x", True),
        (CLUSTER + "prod", CLUSTER + "prod", True),
        (CLUSTER + "prod", CLUSTER + "prod2", False),
        (CLUSTER + "prod*", CLUSTER + "prod2", True),
        (CLUSTER + "Prod", CLUSTER + "prod", False),  # ARNs are case-sensitive
        ("arn:aws:ecs:*:*:cluster/prod", CLUSTER + "prod", True),
        ("arn:aws:ecs:eu-west-1:*:cluster/prod", CLUSTER + "prod", False),
        ("arn:aws:ecs:*:*:*", CLUSTER + "prod", True),
        ("arn:aws:*:*:*:cluster/prod", CLUSTER + "prod", True),
        # a wildcard stays in its segment: the region's * does not eat the account
        ("arn:aws:ecs:us-*-1:000000000000:cluster/prod", CLUSTER + "prod", True),
        ("arn:aws:ecs:*", CLUSTER + "prod", True),  # fewer segments: matched as one pattern
        ("arn:aws:ecs:us-east-1:000000000000:service/prod/*",
         "arn:aws:ecs:us-east-1:000000000000:service/prod/web", True),
        ("arn:aws:ecs:us-east-1:000000000000:service/prod/*",
         "arn:aws:ecs:us-east-1:000000000000:service/dev/web", False),
        ("arn:aws:ecs:us-east-1:000000000000:task-definition/web:?",
         "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3", True),
        (CLUSTER + "prod", "*", False),  # an action on "*" needs Resource "*"
    ],
)
def test_resource_wildcards(pattern: str, resource: str, expected: bool) -> None:
    assert allowed(stmt(Action="ecs:*", Resource=pattern), "ecs:DescribeClusters", resource) is expected


def test_not_resource() -> None:
    doc = stmt(Action="ecs:*", NotResource=CLUSTER + "prod")
    del doc["Statement"][0]["Resource"]
    assert allowed(doc, "ecs:DeleteCluster", CLUSTER + "dev")
    assert not allowed(doc, "ecs:DeleteCluster", CLUSTER + "prod")


def test_deny_with_not_resource_protects_all_but_one() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "NotResource": CLUSTER + "sandbox"},
    ]}
    assert allowed(doc, "ecs:RunTask", CLUSTER + "sandbox")
    assert not allowed(doc, "ecs:RunTask", CLUSTER + "prod")
    assert not allowed(doc, "ecs:ListClusters")


def test_every_resource_of_a_request_must_be_allowed() -> None:
    doc = stmt(Action="ecs:*", Resource=[CLUSTER + "a", CLUSTER + "b"])
    assert allowed(doc, "ecs:DescribeClusters", CLUSTER + "a", CLUSTER + "b")
    d = evaluate([parse(doc)], Request("ecs:DescribeClusters", (CLUSTER + "a", CLUSTER + "c")))
    assert not d.allowed and d.resource == CLUSTER + "c"


def test_an_explicit_deny_on_a_later_resource_is_reported_as_explicit() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": CLUSTER + "b"},
        {"Effect": "Deny", "Action": "*", "Resource": CLUSTER + "c"},
    ]}
    d = evaluate([parse(doc)], Request("ecs:DescribeClusters", (CLUSTER + "a", CLUSTER + "c")))
    assert d.explicit_deny and d.resource == CLUSTER + "c"


def test_a_single_statement_object_and_the_old_version() -> None:
    doc = {"Version": "2008-10-17", "Statement": {"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}}
    assert allowed(doc, "ecs:ListTasks")


def test_policy_variables_name_the_caller() -> None:
    doc = stmt(Action="ecs:*", Resource="arn:aws:ecs:*:*:cluster/${aws:username}-*")
    assert allowed(doc, "ecs:DeleteCluster", CLUSTER + "alice-dev", aws__username="alice")
    assert not allowed(doc, "ecs:DeleteCluster", CLUSTER + "bob-dev", aws__username="alice")
    # a value is taken literally, not as a wildcard
    assert not allowed(doc, "ecs:DeleteCluster", CLUSTER + "bob-dev", aws__username="*")
    # without the key, the statement matches nothing
    assert not allowed(doc, "ecs:DeleteCluster", CLUSTER + "alice-dev")
    # the 2008 version has no variables: the text is literal
    old = {**doc, "Version": "2008-10-17"}
    assert not allowed(old, "ecs:DeleteCluster", CLUSTER + "alice-dev", aws__username="alice")


def test_a_variable_default_and_the_literal_escapes() -> None:
    doc = stmt(Action="ecs:*", Resource="arn:aws:ecs:*:*:cluster/${aws:username, 'shared'}")
    assert allowed(doc, "ecs:DeleteCluster", CLUSTER + "shared")
    doc = stmt(Action="ecs:*", Resource="arn:aws:ecs:*:*:cluster/a${*}")
    assert allowed(doc, "ecs:DeleteCluster", CLUSTER + "a*")
    assert not allowed(doc, "ecs:DeleteCluster", CLUSTER + "ab")


def test_all_conditions_of_a_statement_must_hold() -> None:
    doc = stmt(Action="*", Condition={
        "StringEquals": {"aws:username": "ci"}, "Bool": {"aws:SecureTransport": "false"},
    })
    assert allowed(doc, "ecs:ListClusters", aws__username="ci", aws__securetransport=False)
    assert not allowed(doc, "ecs:ListClusters", aws__username="ci", aws__securetransport=True)
    assert not allowed(doc, "ecs:ListClusters", aws__securetransport=False)


def test_a_conditional_deny() -> None:
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*",
         "Condition": {"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8", "127.0.0.1/32"]}}},
    ]}
    assert allowed(doc, "ecs:ListClusters", aws__sourceip="127.0.0.1")
    assert allowed(doc, "ecs:ListClusters", aws__sourceip="10.2.3.4")
    assert not allowed(doc, "ecs:ListClusters", aws__sourceip="192.168.1.1")
    # without the key a negated operator holds: the deny applies (fails closed)
    assert not allowed(doc, "ecs:ListClusters")


READS = ["ecs:ListClusters", "ecs:DescribeTasks", "ecs:GetTaskLogs", "servicediscovery:DiscoverInstances",
         "servicediscovery:GetNamespace", "dockyard:GetEvents"]
WRITES = ["ecs:CreateCluster", "ecs:RunTask", "ecs:RegisterTaskDefinition", "servicediscovery:CreateService",
          "ecr:RunRegistryGarbageCollection", "ecs:TagResource", "dockyard:RunPrivilegedTask"]


def test_the_read_only_preset() -> None:
    for action in READS:
        assert allowed(READ_ONLY, action), action
    for action in WRITES:
        assert not allowed(READ_ONLY, action), action


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        ({"Version": "2012-10-17"}, "Statement"),
        ({"Version": "2012-10-17", "Statement": []}, "Statement"),
        ({"Version": "2013-01-01", "Statement": {}}, "Version"),
        ({"Statement": {"Effect": "Permit", "Action": "*", "Resource": "*"}}, "Effect"),
        ({"Statement": {"Effect": "Allow", "Resource": "*"}}, "Action"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "NotAction": "x:y", "Resource": "*"}}, "Action"),
        ({"Statement": {"Effect": "Allow", "Action": "*"}}, "Resource"),
        ({"Statement": {"Effect": "Allow", "Action": "ListClusters", "Resource": "*"}}, "service:Action"),
        ({"Statement": {"Effect": "Allow", "Action": [], "Resource": "*"}}, "non-empty"),
        ({"Statement": {"Effect": "Allow", "Action": [3], "Resource": "*"}}, "non-empty"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Principal": "*"}}, "Principal"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*", "Actions": "*"}}, "unknown"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                        "Condition": {"StringSortOf": {"a": "b"}}}}, "operator"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                        "Condition": {"StringEquals": {"a": {"b": 1}}}}}, "condition values"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                        "Condition": {"StringEquals": "a"}}}, "map condition keys"),
        ({"Statement": {"Effect": "Allow", "Action": "*", "Resource": "*",
                        "Condition": {"Null": {"a": "maybe"}}}}, "Null"),
        ("[" * 5000, "not valid JSON"),
        ("{" + " " * 20000 + "}", "at most"),
    ],
)
def test_invalid_documents_say_what_is_wrong(doc: Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse(doc if isinstance(doc, str) else json.dumps(doc))


def test_a_parsed_policy_keeps_a_normalised_document() -> None:
    p = parse('{"Statement": {"Resource": "*", "Action": "*", "Effect": "Allow"}, "Version": "2012-10-17"}')
    assert json.loads(p.document)["Statement"]["Effect"] == "Allow"
    assert parse(p.document) == p


def test_combine_lets_a_resource_policy_allow_and_an_explicit_deny_in_either_refuse() -> None:
    repo = "arn:aws:ecr:us-east-1:000000000000:repository/a"
    other = "arn:aws:ecr:us-east-1:000000000000:repository/b"
    identity = [parse(stmt(Action="ecr:DescribeImages"))]
    grants = {repo: [parse(stmt(Action="ecr:BatchGetImage"))]}
    resource_policies = lambda arn: grants.get(arn, [])  # noqa: E731
    get = Request("ecr:BatchGetImage", (repo,), {})
    assert combine(identity, resource_policies, get).allowed
    assert not combine(identity, resource_policies, Request("ecr:BatchGetImage", (other,), {})).allowed
    # a resource policy applies to its own resource only: both must be allowed
    both = combine(identity, resource_policies, Request("ecr:BatchGetImage", (repo, other), {}))
    assert (both.allowed, both.resource) == (False, other)
    deny = {repo: [parse({"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "Action": "ecr:DescribeImages", "Resource": "*"}]})]}
    denying = lambda arn: deny.get(arn, [])  # noqa: E731
    refused = combine(identity, denying, Request("ecr:DescribeImages", (repo,), {}))
    assert (refused.allowed, refused.explicit_deny, refused.by_resource_policy) == (False, True, True)
    assert combine(identity, denying, Request("ecr:DescribeImages", (other,), {})).allowed
