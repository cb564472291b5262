"""Repository policies: validation that names what is wrong, and the combined decision."""

from __future__ import annotations

import json

import pytest

from dockyard.iam.policy import parse as parse_identity
from registry.ecr.policy import PolicyError, applicable, decide, parse, user_actions

ACCOUNT = "000000000000"
CI = f"arn:aws:iam::{ACCOUNT}:user/ci"
REPO = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/shop/web"


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


PULL = {"Effect": "Allow", "Principal": {"AWS": CI}, "Action": ["ecr:BatchGetImage"]}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{nope", "not valid JSON"),
        ("[]", "must be a JSON object"),
        (json.dumps({"Statement": []}), "non-empty list"),
        (
            json.dumps({"Version": "2012-10-17", "Statement": [PULL], "Extra": 1}),
            "unknown policy element 'Extra'",
        ),
        (doc({"Effect": "Allow", "Action": "ecr:*"}), "Statement[0]: Principal is required"),
        (
            doc(PULL, {"Effect": "Allow", "Principal": {"AWS": "bob"}, "Action": "ecr:*"}),
            "Statement[1]: Principal 'bob' is not an account id or IAM ARN",
        ),
        (doc({"Effect": "Allow", "Principal": {"Service": "x"}, "Action": "ecr:*"}), "Principal must be"),
        (doc({"Effect": "Perhaps", "Principal": "*", "Action": "ecr:*"}), "Statement[0]: Effect must be"),
        (doc({"Effect": "Allow", "Principal": "*"}), "exactly one of Action and NotAction"),
        (doc({"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject"}), "is not an ecr: action"),
        (
            doc({"Effect": "Allow", "Principal": "*", "Action": "ecr:*", "Colour": "red"}),
            "unknown element 'Colour'",
        ),
        (doc({"Effect": "Allow", "NotPrincipal": "*", "Action": "ecr:*"}), "NotPrincipal"),
    ],
)
def test_a_malformed_policy_is_refused_saying_what_is_wrong(text, problem):
    with pytest.raises(PolicyError) as e:
        parse(text)
    assert problem in str(e.value)


def test_a_good_policy_parses_and_applies_to_the_principals_it_names():
    policy = parse(doc(PULL, {"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchDeleteImage"}))
    assert len(applicable(policy, CI, ACCOUNT)) == 2
    assert len(applicable(policy, f"arn:aws:iam::{ACCOUNT}:user/other", ACCOUNT)) == 1
    assert len(applicable(parse(doc({**PULL, "Principal": {"AWS": ACCOUNT}})), CI, ACCOUNT)) == 1


def test_the_decision_is_a_union_of_allows_where_an_explicit_deny_wins():
    nothing = [parse_identity(doc({"Effect": "Allow", "Action": "ecs:ListClusters", "Resource": "*"}))]
    everything = [parse_identity(doc({"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}))]
    repo = parse(doc(PULL, {"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchDeleteImage"}))
    assert decide(nothing, repo, CI, ACCOUNT, "ecr:BatchGetImage", REPO)  # the repository allows
    assert not decide(nothing, repo, CI, ACCOUNT, "ecr:PutImage", REPO)  # nobody allows
    assert decide(everything, None, CI, ACCOUNT, "ecr:PutImage", REPO)  # the key allows
    assert not decide(everything, repo, CI, ACCOUNT, "ecr:BatchDeleteImage", REPO)  # the repository denies
    assert decide(None, repo, CI, ACCOUNT, "ecr:BatchDeleteImage", REPO)  # an administrator key


NEEDS = {"pull": ("ecr:BatchGetImage",), "push": ("ecr:InitiateLayerUpload", "ecr:PutImage")}


def test_a_repository_policy_gives_a_registry_user_an_action_its_grants_lack():
    repo = parse(doc({**PULL, "Action": ["ecr:BatchGetImage", "ecr:InitiateLayerUpload", "ecr:PutImage"]}))
    assert user_actions(repo, CI, ACCOUNT, REPO, {}, NEEDS, {"pull", "push"}, set()) == ("pull", "push")
    # an Allow of only some of what push needs is not enough
    partial = parse(doc({**PULL, "Action": ["ecr:BatchGetImage", "ecr:PutImage"]}))
    assert user_actions(partial, CI, ACCOUNT, REPO, {}, NEEDS, {"pull", "push"}, set()) == ("pull",)
    # a statement naming someone else gives nothing; the user's own grants stay
    other = parse(doc({**PULL, "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"}}))
    assert user_actions(other, CI, ACCOUNT, REPO, {}, NEEDS, {"pull", "push"}, {"push"}) == ("push",)


def test_a_deny_in_a_repository_policy_takes_a_granted_action_from_a_registry_user():
    repo = parse(doc({"Effect": "Deny", "Principal": "*", "Action": "ecr:PutImage"}))
    assert user_actions(repo, CI, ACCOUNT, REPO, {}, NEEDS, {"pull", "push"}, {"pull", "push"}) == ("pull",)
