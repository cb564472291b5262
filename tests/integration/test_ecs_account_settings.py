"""ECS account settings and the operations Dockyard refuses, through the real aws CLI."""

from __future__ import annotations

import pytest

ROOT = "arn:aws:iam::000000000000:root"
USER = "arn:aws:iam::000000000000:user/alice"


def _error(dockyard, *args: str) -> str:
    proc = dockyard.aws("ecs", *args, check=False)
    assert proc.returncode != 0, (args, proc.stdout)
    return proc.stderr


def test_effective_settings_follow_principal_then_account_then_ecs(dockyard):
    effective = dockyard.aws("ecs", "list-account-settings", "--effective-settings",
                             "--name", "containerInsights")["settings"]
    assert effective == [{"name": "containerInsights", "value": "disabled", "principalArn": ROOT,
                          "type": "aws_managed"}]
    try:
        put = dockyard.aws("ecs", "put-account-setting-default", "--name", "containerInsights",
                           "--value", "enhanced")["setting"]
        assert put == {"name": "containerInsights", "value": "enhanced", "principalArn": ROOT, "type": "user"}
        mine = dockyard.aws("ecs", "put-account-setting", "--name", "containerInsights", "--value", "enabled",
                            "--principal-arn", USER)["setting"]
        assert mine["principalArn"] == USER and mine["value"] == "enabled"

        def value(principal: str) -> str:
            got = dockyard.aws("ecs", "list-account-settings", "--effective-settings", "--name",
                               "containerInsights", "--principal-arn", principal)["settings"]
            return got[0]["value"]

        assert value(USER) == "enabled"
        assert value("arn:aws:iam::000000000000:user/bob") == "enhanced"  # the account's default
        # without --effective-settings: only what is set for that principal
        assert dockyard.aws("ecs", "list-account-settings", "--principal-arn",
                            "arn:aws:iam::000000000000:user/bob")["settings"] == []
        # the account's default is a new cluster's containerInsights, as in ECS
        cluster = dockyard.aws("ecs", "create-cluster", "--cluster-name", "insights")["cluster"]
        assert cluster["settings"] == [{"name": "containerInsights", "value": "enhanced"}]
        dockyard.aws("ecs", "delete-cluster", "--cluster", "insights")
        deleted = dockyard.aws("ecs", "delete-account-setting", "--name", "containerInsights",
                               "--principal-arn", USER)["setting"]
        assert deleted["value"] == "enabled"
        assert value(USER) == "enhanced"
    finally:
        dockyard.aws("ecs", "delete-account-setting", "--name", "containerInsights", check=False)
    every = dockyard.aws("ecs", "list-account-settings", "--effective-settings")["settings"]
    names = {s["name"]: s["value"] for s in every}
    assert names["taskLongArnFormat"] == "enabled" and names["containerInsights"] == "disabled"
    assert names["defaultLogDriverMode"] == "non-blocking" and len(names) == 12  # the CLI pages for us


@pytest.mark.parametrize(("args", "says"), [
    (["put-account-setting", "--name", "taskLongArnFormat", "--value", "disabled"],
     "always uses the long ARN format"),
    (["put-account-setting", "--name", "guardDutyActivate", "--value", "on"], "read-only"),
    (["put-account-setting", "--name", "containerInsights", "--value", "maybe"], "must be one of"),
    (["put-account-setting", "--name", "noSuchSetting", "--value", "on"], "InvalidParameterException"),
    (["put-account-setting", "--name", "awsvpcTrunking", "--value", "enabled", "--principal-arn",
      "arn:aws:iam::111111111111:user/x"], "of this account"),
    (["put-account-setting", "--name", "awsvpcTrunking", "--value", "enabled", "--principal-arn", "bob"],
     "principalArn must be"),
    (["delete-account-setting", "--name", "awsvpcTrunking"], "No awsvpcTrunking setting"),
    (["list-account-settings", "--value", "enabled"], "only be given with name"),
])
def test_bad_account_settings_are_refused_and_change_nothing(dockyard, args, says):
    before = dockyard.aws("ecs", "list-account-settings", "--effective-settings")["settings"]
    assert says in _error(dockyard, *args)
    assert dockyard.aws("ecs", "list-account-settings", "--effective-settings")["settings"] == before


@pytest.mark.parametrize(("args", "error", "says"), [
    (["list-daemons"], "UnsupportedFeatureException", "schedulingStrategy DAEMON"),
    (["describe-task-sets", "--cluster", "default", "--service", "web"], "UnsupportedFeatureException",
     "EXTERNAL deployment controller"),
    (["discover-poll-endpoint"], "ClientException", "dockyard agent"),
    (["describe-express-gateway-service", "--service-arn", "arn:aws:ecs:us-east-1:000000000000:service/x/y"],
     "UnsupportedFeatureException",
     "Express Mode"),
])
def test_operations_dockyard_does_not_serve_say_so(dockyard, args, error, says):
    stderr = _error(dockyard, *args)
    assert error in stderr and says in stderr, stderr
