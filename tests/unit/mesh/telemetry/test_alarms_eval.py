"""The alarm judgement against CloudWatch's documented M-of-N and missing-data table."""

from __future__ import annotations

import pytest

from mesh.telemetry.alarms_eval import judge

X = None  # a missing datapoint

# CloudWatch's "How alarm state is evaluated when data is missing" table: N=3, M=2, threshold
# breached by a value above 1 ("0" a good point, "2" a breaching one), columns
# missing / ignore / breaching / notBreaching (ignore: "retain" shown as None).
TABLE = [
    ((0, 0, 0), ("OK", "OK", "OK", "OK")),
    ((0, 0, X), ("OK", "OK", "OK", "OK")),
    ((0, X, X), ("OK", "OK", "ALARM", "OK")),
    ((X, X, X), ("INSUFFICIENT_DATA", None, "ALARM", "OK")),
    ((2, X, X), ("OK", "OK", "ALARM", "OK")),
    ((2, 2, X), ("ALARM", "ALARM", "ALARM", "ALARM")),
    ((2, 0, 2), ("ALARM", "ALARM", "ALARM", "ALARM")),
]


@pytest.mark.parametrize(("points", "expected"), TABLE)
def test_cloudwatch_missing_data_table(points, expected):
    for treat, want in zip(("missing", "ignore", "breaching", "notBreaching"), expected, strict=True):
        got = judge(list(points), "GreaterThanThreshold", 1, 2, treat, current="ALARM").state
        assert got == (want or "ALARM"), (points, treat)


def test_ignore_keeps_the_current_state_when_every_point_is_missing():
    assert judge([X, X], "GreaterThanThreshold", 1, 1, "ignore", current="OK").state == "OK"


def test_m_of_n_and_reason():
    j = judge([5, 0, 5, 0, 5], "GreaterThanOrEqualToThreshold", 5, 3)
    assert (j.state, j.breaching, j.present) == ("ALARM", 3, 5)
    assert "3 out of the last 5 datapoints [5, 0, 5, 0, 5]" in j.reason
    assert judge([5, 0, 5, 0, 0], "GreaterThanOrEqualToThreshold", 5, 3).state == "OK"


@pytest.mark.parametrize(
    ("op", "value", "breach"),
    [
        ("GreaterThanThreshold", 1, False),
        ("GreaterThanOrEqualToThreshold", 1, True),
        ("LessThanThreshold", 1, False),
        ("LessThanOrEqualToThreshold", 1, True),
        ("LessThanThreshold", 0.5, True),
    ],
)
def test_comparisons_at_the_threshold(op, value, breach):
    assert (judge([value], op, 1, 1).state == "ALARM") is breach


def test_unknown_comparison_or_treatment_is_refused():
    with pytest.raises(ValueError):
        judge([1], "Bigger", 1, 1)
    with pytest.raises(ValueError):
        judge([1], "GreaterThanThreshold", 1, 1, "sometimes")
