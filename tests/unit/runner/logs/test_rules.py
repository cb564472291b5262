"""CloudWatch Logs' rules: PutLogEvents batches, names, tokens, the awslogs options."""

from __future__ import annotations

import pytest

from runner.logs import rules

NOW = 1_800_000_000_000
DAY = 86_400_000


def ev(*stamps: int) -> list[dict[str, object]]:
    return [{"timestamp": t, "message": f"m{i}"} for i, t in enumerate(stamps)]


def test_a_batch_in_time_order_within_bounds_is_kept_whole() -> None:
    v = rules.check_batch(ev(NOW - 1000, NOW - 1000, NOW), NOW, None)
    assert v.keep == (0, 1, 2) and v.rejected == {}


@pytest.mark.parametrize(
    ("events", "words"),
    [
        (ev(NOW, NOW - 1), "chronological"),
        (ev(NOW - 2 * DAY, NOW), "24 hours"),
        ([], "at least one"),
        (ev(*([NOW] * 10_001)), "10000"),
        ([{"timestamp": NOW, "message": "x" * 1_048_576}], "bytes"),
    ],
)
def test_batches_cloudwatch_refuses_whole(events: list[dict[str, object]], words: str) -> None:
    with pytest.raises(rules.BatchError, match=words):
        rules.check_batch(events, NOW, None)


def test_too_old_too_new_and_expired_events_are_rejected_by_index() -> None:
    v = rules.check_batch(ev(NOW - 14 * DAY - 5000, NOW - 14 * DAY - 4000, NOW - 14 * DAY + 1000), NOW, None)
    assert v.keep == (2,) and v.rejected == {"tooOldLogEventEndIndex": 1}
    v = rules.check_batch(ev(NOW, NOW + 3 * 3600_000, NOW + 4 * 3600_000), NOW, None)
    assert v.keep == (0,) and v.rejected == {"tooNewLogEventStartIndex": 1}
    v = rules.check_batch(ev(NOW - DAY - 5000, NOW - DAY - 4000, NOW - 10_000), NOW, 1)
    assert v.keep == (2,) and v.rejected == {"expiredLogEventEndIndex": 1}


def test_names_follow_cloudwatch_and_ecs() -> None:
    assert rules.valid_group_name("/ecs/web_1.a-b#c") and not rules.valid_group_name("bad name")
    assert not rules.valid_group_name("") and not rules.valid_group_name("x" * 513)
    assert rules.valid_stream_name("svc/web/abc") and not rules.valid_stream_name("a:b")
    assert not rules.valid_stream_name("a*")
    assert rules.stream_name("svc", "web", "t1") == "svc/web/t1"
    assert rules.stream_name("", "web", "t1", "c0ffee") == "c0ffee"


def test_positions_round_trip_and_foreign_tokens_are_refused() -> None:
    token = rules.encode_position("f", 1_700_000_000_123, 42)
    assert token.startswith("f/") and token[2:].isdigit()
    assert rules.decode_position(token, "fb") == ("f", (1_700_000_000_123, 42))
    assert rules.decode_position(token, "n") is None
    assert rules.decode_position("f/123", "f") is None and rules.decode_position("garbage", "fb") is None
    assert rules.decode_position("f/" + "9" * 34, "f") is None  # an id past SQLite's integers
    assert rules.decode_position("f/" + "\u0663" * 34, "f") is None  # digits, but not ASCII ones


def test_awslogs_options_as_ecs_reads_them() -> None:
    lc = {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": "/ecs/a",
            "awslogs-stream-prefix": "p",
            "awslogs-create-group": "true",
            "awslogs-region": "eu-west-1",
        },
    }
    assert rules.awslogs(lc) == rules.AwsLogs("/ecs/a", "p", True, "eu-west-1")
    assert rules.awslogs({"logDriver": "json-file"}) is None and rules.awslogs(None) is None
    with pytest.raises(ValueError, match="awslogs-group"):
        rules.awslogs({"logDriver": "awslogs", "options": {}})
    with pytest.raises(ValueError, match="create-group"):
        rules.awslogs(
            {"logDriver": "awslogs", "options": {"awslogs-group": "g", "awslogs-create-group": "yes"}}
        )
