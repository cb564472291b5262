"""Metric math: parsing, precedence, series arithmetic and the functions, and bad input."""

from __future__ import annotations

import pytest

from mesh.telemetry.metrics_math import MathError, evaluate, parse, references

M1 = {0: 10.0, 60: 20.0, 120: 30.0}
M2 = {0: 1.0, 60: 0.0, 120: 3.0}


def ev(text: str, **values):
    return evaluate(parse(text), values or {"m1": M1, "m2": M2})


def test_precedence_and_scalars():
    assert ev("1 + 2 * 3") == 7
    assert ev("(1 + 2) * 3") == 9
    assert ev("-2 * 3") == -6


def test_series_arithmetic_keeps_common_timestamps_and_drops_division_by_zero():
    assert ev("m1 * 100") == {0: 1000.0, 60: 2000.0, 120: 3000.0}
    assert ev("m1 / m2") == {0: 10.0, 120: 10.0}
    assert evaluate(parse("a + b"), {"a": {0: 1.0, 60: 2.0}, "b": {60: 5.0}}) == {60: 7.0}


def test_functions():
    assert ev("SUM([m1, m2])") == {0: 11.0, 60: 20.0, 120: 33.0}
    assert ev("MAX(m1)") == 30
    assert ev("AVG(m1)") == 20


def test_references():
    assert references(parse("100 * m2 / (m1 + m2)")) == {"m1", "m2"}


@pytest.mark.parametrize("bad", ["1 +", "m1 ** 2", "(m1", "FOO(m1)", "m1 m2", "x" * 2000, "import os"])
def test_bad_expressions_raise_math_error(bad):
    with pytest.raises(MathError):
        ev(bad)
