"""An alarm's judgement: pure, from the datapoints of its evaluation range to its state.

:func:`judge` takes the newest ``EvaluationPeriods`` datapoints (None for a period without
data, oldest first) and decides as CloudWatch documents ("Evaluating an alarm",
"Configuring how CloudWatch alarms treat missing data"):

* each present datapoint is breaching or not by ``ComparisonOperator`` and ``Threshold``;
* missing ones count by ``TreatMissingData``: ``breaching`` as breaching, ``notBreaching`` as
  not, ``ignore`` and ``missing`` not at all;
* ``DatapointsToAlarm`` (M) breaching datapoints of the ``EvaluationPeriods`` (N) make ALARM;
  otherwise OK, except when every datapoint is missing: ``missing`` gives INSUFFICIENT_DATA,
  ``ignore`` keeps the current state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["COMPARISONS", "TREAT_MISSING", "Judgement", "breaches", "judge"]

COMPARISONS = {
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "GreaterThanThreshold": lambda v, t: v > t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
TREAT_MISSING = ("breaching", "notBreaching", "ignore", "missing")
_SYMBOL = {
    "GreaterThanOrEqualToThreshold": ">=",
    "GreaterThanThreshold": ">",
    "LessThanThreshold": "<",
    "LessThanOrEqualToThreshold": "<=",
}


@dataclass(frozen=True)
class Judgement:
    state: str  # OK, ALARM, INSUFFICIENT_DATA
    reason: str
    breaching: int
    present: int


def breaches(value: float, comparison: str, threshold: float) -> bool:
    return bool(COMPARISONS[comparison](value, threshold))


def judge(
    points: Sequence[float | None],
    comparison: str,
    threshold: float,
    datapoints_to_alarm: int,
    treat_missing: str = "missing",
    current: str = "INSUFFICIENT_DATA",
) -> Judgement:
    """The state of an alarm whose evaluation range holds ``points`` (module doc)."""
    if comparison not in COMPARISONS:
        raise ValueError(f"unknown comparison {comparison}")
    if treat_missing not in TREAT_MISSING:
        raise ValueError(f"unknown TreatMissingData {treat_missing}")
    n = len(points)
    present = [p for p in points if p is not None]
    missing = n - len(present)
    hits = sum(1 for p in present if breaches(p, comparison, threshold))
    if treat_missing == "breaching":
        hits += missing
    shown = ", ".join("missing" if p is None else f"{p:g}" for p in points)
    symbol = _SYMBOL[comparison]
    if not present and treat_missing in ("missing", "ignore"):
        if treat_missing == "ignore":
            return Judgement(current, f"No datapoints in the last {n} periods: state kept.", 0, 0)
        return Judgement(
            "INSUFFICIENT_DATA",
            f"Insufficient Data: {n} datapoint{'s were' if n > 1 else ' was'} unknown.",
            0,
            0,
        )
    if hits >= datapoints_to_alarm:
        return Judgement(
            "ALARM",
            f"Threshold Crossed: {hits} out of the last {n} datapoints [{shown}] were "
            f"{symbol} the threshold ({threshold:g}) (minimum {datapoints_to_alarm} "
            "datapoints for OK -> ALARM transition).",
            hits,
            len(present),
        )
    return Judgement(
        "OK",
        f"Threshold Crossed: {n - hits} out of the last {n} datapoints [{shown}] were not "
        f"{symbol} the threshold ({threshold:g}) (minimum {n - datapoints_to_alarm + 1} "
        "datapoints for ALARM -> OK transition).",
        hits,
        len(present),
    )
