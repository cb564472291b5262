"""``dockyard rules``' rows, from answers shaped as the API gives them."""

from __future__ import annotations

import json

from runner.eventbridge.cli import dead_letter_row, row

TASK = "arn:aws:ecs:us-east-1:000000000000:task/jobs/0123abcd"


def test_a_rule_row_shows_its_trigger_targets_and_last_run() -> None:
    rule = {"Name": "on-stop", "State": "ENABLED", "EventPattern": json.dumps({"source": ["aws.ecs"]})}
    runs = [{"Time": 1764694800.0, "Status": "SUCCEEDED", "Message": TASK}, {"Time": 1.0, "Status": "FAILED"}]
    assert row(rule, 2, runs, 1) == {
        "rule": "on-stop",
        "state": "ENABLED",
        "trigger": '{"source":["aws.ecs"]}',
        "targets": 2,
        "last run": "2025-12-02 17:00:00Z",
        "status": "SUCCEEDED",
        "result": "0123abcd",
        "dead letters": 1,
    }


def test_a_rule_never_run_and_a_long_error() -> None:
    out = row({"Name": "n", "State": "DISABLED", "ScheduleExpression": "rate(5 minutes)"}, 0, [], 0)
    assert (out["trigger"], out["last run"], out["status"], out["result"]) == (
        "rate(5 minutes)",
        "-",
        "-",
        "-",
    )
    failed = row({"Name": "n"}, 1, [{"Time": 0.0, "Status": "RETRYING", "Message": "x" * 100}], 0)
    assert failed["result"].endswith("...") and len(failed["result"]) == 60


def test_a_dead_letter_row() -> None:
    letter = {
        "Time": 1764694800.0,
        "Attributes": {
            "RULE_ARN": "arn:aws:events:us-east-1:000000000000:rule/on-stop",
            "TARGET_ID": "job",
            "ERROR_CODE": "ECSRunTaskFailures",
            "ERROR_MESSAGE": "MemberOf placement constraint unsatisfied.",
            "EXHAUSTED_RETRY_CONDITION": "MaximumRetryAttempts",
            "RETRY_ATTEMPTS": 2,
        },
    }
    assert dead_letter_row(letter) == {
        "time": "2025-12-02 17:00:00Z",
        "rule": "rule/on-stop",
        "target": "job",
        "error": "ECSRunTaskFailures: MemberOf placement constraint unsatisfied.",
        "exhausted": "MaximumRetryAttempts",
        "retries": 2,
    }
