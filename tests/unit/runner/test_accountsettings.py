"""The effective account setting (pure): the principal's, else the account's default, else ECS's."""

from __future__ import annotations

from runner.accountsettings import AWS_DEFAULTS, VALUES, effective

USER = "arn:aws:iam::000000000000:user/alice"


def test_the_principal_wins_then_the_default_then_ecs():
    stored = {("containerInsights", USER): "enabled", ("containerInsights", ""): "enhanced"}
    assert effective(stored, "containerInsights", USER) == ("enabled", USER, "user")
    bob = "arn:aws:iam::000000000000:user/bob"
    assert effective(stored, "containerInsights", bob) == ("enhanced", "", "user")
    assert effective({}, "containerInsights", USER) == ("disabled", "", "aws_managed")


def test_every_setting_has_a_default_and_its_default_is_allowed():
    assert set(AWS_DEFAULTS) == set(VALUES)
    for name, value in AWS_DEFAULTS.items():
        assert value in VALUES[name] or VALUES[name] == (), name  # guardDutyActivate: read-only
