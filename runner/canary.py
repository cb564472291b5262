"""Canary analysis, pure: Dockyard's relative judgement of a new revision against the old one.

ECS rolls a deployment back when an absolute alarm fires; nothing in ECS compares the canary
with the baseline. ``dockyard canary SERVICE --to TASKDEF --steps 10,50,100 --interval 30s
--max-error-rate 1% --max-p99 500ms`` (docs/deployments.md) does: the canary's share of
production traffic goes through ``steps``; each step is held ``interval`` and then judged over
that same window for both revisions (:class:`Window`: requests, 5xx answers, p99 latency):

* **error rate**: the canary fails when its 5xx rate exceeds the baseline's by more than
  ``max_error_rate`` (a fraction: ``1%`` is 0.01);
* **latency**: the canary fails when its p99 exceeds the baseline's by more than ``max_p99``
  (milliseconds);
* **no traffic**: a canary that served no request in its window fails (its share of traffic
  does not reach it); a baseline with no request in the window (the step at 100, or an idle
  service) is compared through the last window in which it served requests (:attr:`Run.reference`),
  or, when it never did, the canary is held to the limits alone (baseline rate and p99 0).

:func:`advance` is the step machine: a step whose window passed moves to the next (the last
step passed: PROMOTED); one that failed ends the run at once (ROLLED_BACK), with the reason
that goes into the service's events (each step's traffic split is ``runner.shift``'s, whose
steps are the policy's when a deployment has one; the service loop's ``_analyse`` drives it). The
``dockyardCanary`` field is read by :func:`policy_of`; the CLI's option syntax is parsed by
:func:`parse_steps`, :func:`parse_duration`, :func:`parse_percent` and
:func:`parse_milliseconds` (ValueError with a message naming the option).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = [
    "FIELD",
    "PROMOTED",
    "ROLLED_BACK",
    "Policy",
    "Run",
    "Verdict",
    "Window",
    "advance",
    "check_steps",
    "judge",
    "parse_duration",
    "parse_milliseconds",
    "parse_percent",
    "parse_steps",
    "policy_json",
    "policy_of",
]

PROMOTED = "PROMOTED"
ROLLED_BACK = "ROLLED_BACK"


@dataclass(frozen=True)
class Policy:
    """``steps``: the canary's percent of production traffic at each step, increasing, the last
    100; ``interval``: seconds each step is held and judged over; ``max_error_rate``: a fraction;
    ``max_p99``: milliseconds."""

    steps: tuple[float, ...]
    interval: float
    max_error_rate: float
    max_p99: float

    def __post_init__(self) -> None:
        check_steps(self.steps, "steps")
        if self.interval <= 0:
            raise ValueError("the interval must be positive")
        if not 0 <= self.max_error_rate <= 1:
            raise ValueError("the maximum error rate must be from 0% to 100%")
        if self.max_p99 < 0:
            raise ValueError("the maximum p99 must not be negative")


@dataclass(frozen=True)
class Window:
    """One revision's answers over a window: requests, 5xx answers, p99 in ms (None: no
    latency sample)."""

    requests: float = 0.0
    errors: float = 0.0
    p99: float | None = None

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests > 0 else 0.0


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str


@dataclass(frozen=True)
class Run:
    """Where a canary is: its ``step`` (index into ``Policy.steps``) held since ``since``;
    ``outcome`` "" while it runs, else PROMOTED or ROLLED_BACK, with ``reason``; ``reference``
    the baseline's last window with requests."""

    step: int = 0
    since: float = 0.0
    outcome: str = ""
    reason: str = ""
    reference: Window | None = None


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def judge(policy: Policy, baseline: Window, canary: Window) -> Verdict:
    """The canary's window against the baseline's (see the module docstring)."""
    if canary.requests <= 0:
        return Verdict(False, "the canary served no request in its window")
    rate, base_rate = canary.error_rate, baseline.error_rate
    if rate > base_rate + policy.max_error_rate + 1e-12:
        return Verdict(
            False,
            f"the canary's 5xx rate {_pct(rate)} exceeds the baseline's {_pct(base_rate)} "
            f"by more than {_pct(policy.max_error_rate)}",
        )
    base_p99 = baseline.p99 or 0.0
    if canary.p99 is not None and canary.p99 > base_p99 + policy.max_p99:
        return Verdict(
            False,
            f"the canary's p99 {_ms(canary.p99)} exceeds the baseline's {_ms(base_p99)} "
            f"by more than {_ms(policy.max_p99)}",
        )
    return Verdict(
        True,
        f"5xx {_pct(rate)} (baseline {_pct(base_rate)}), p99 {_ms(canary.p99)} "
        f"(baseline {_ms(baseline.p99)})",
    )


def advance(
    policy: Policy, run: Run, now: float, baseline: Window, canary: Window, lag: float = 0.0
) -> tuple[Run, Verdict | None]:
    """The run at ``now`` with the step's windows (``baseline``, ``canary``: from ``run.since``
    to ``now - lag``, ``lag`` being how late metrics arrive), and the verdict when the step was
    judged (None: still held). The next step begins at ``now``."""
    if run.outcome or now - lag - run.since < policy.interval:
        return run, None
    reference = baseline if baseline.requests > 0 else (run.reference or baseline)
    verdict = judge(policy, reference, canary)
    percent = policy.steps[run.step]
    if not verdict.passed:
        why = f"canary at {percent:g}% rolled back: {verdict.reason}"
        return replace(run, outcome=ROLLED_BACK, reason=why), verdict
    kept = baseline if baseline.requests > 0 else run.reference
    if run.step == len(policy.steps) - 1:
        why = f"canary promoted: every step passed ({verdict.reason} at {percent:g}%)"
        return replace(run, outcome=PROMOTED, reason=why, reference=kept), verdict
    return Run(run.step + 1, now, reference=kept), verdict


# -- the CLI's option syntax -------------------------------------------------------------------
def check_steps(steps: Sequence[float], name: str = "--steps") -> None:
    """ValueError naming ``name`` unless ``steps`` increase, each 0.1-100, to 100."""
    if not steps:
        raise ValueError(f"{name} needs at least one percent")
    if any(not 0.1 <= s <= 100 for s in steps):
        raise ValueError(f"{name}: each percent must be from 0.1 to 100")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValueError(f"{name} must increase")
    if steps[-1] != 100:
        raise ValueError(f"{name} must end at 100")


def parse_steps(text: str) -> tuple[float, ...]:
    """``10,50,100`` (percent signs allowed)."""
    try:
        steps = tuple(float(s.strip().rstrip("%")) for s in text.split(","))
    except ValueError:
        raise ValueError(f"--steps {text!r}: a comma-separated list of percents, e.g. 10,50,100") from None
    check_steps(steps)
    return steps


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, option: str = "--interval") -> float:
    """Seconds of ``30s``, ``2m``, ``500ms``, ``1h`` or a bare number of seconds."""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{option} {text!r}: a duration such as 30s, 2m or 500ms")
    return float(m.group(1)) * _SCALE[m.group(2)]


def parse_milliseconds(text: str, option: str = "--max-p99") -> float:
    """Milliseconds of ``500ms``, ``1.5s`` or a bare number of milliseconds."""
    if re.fullmatch(r"\s*\d+(?:\.\d+)?\s*", text):
        return float(text)
    return parse_duration(text, option) * 1000.0


def parse_percent(text: str, option: str = "--max-error-rate") -> float:
    """The fraction of ``1%`` or ``0.5%`` (a bare number is a percent too)."""
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise ValueError(f"{option} {text!r}: a percent such as 1%") from None
    if not 0 <= value <= 100:
        raise ValueError(f"{option} {text!r}: a percent from 0% to 100%")
    return value / 100.0


# -- the stored field ---------------------------------------------------------------------------
FIELD = "dockyardCanary"
"""Dockyard's member of ``deploymentConfiguration`` (with strategy CANARY): ``steps``,
``intervalSeconds``, ``maxErrorRate`` (a fraction), ``maxP99Milliseconds``."""


def _number(raw: Mapping[str, Any], key: str, low: float, high: float) -> float:
    value = raw.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValueError(f"deploymentConfiguration.{FIELD}.{key} must be a number from {low:g} to {high:g}.")
    return float(value)


def policy_of(raw: Any) -> Policy:
    """The :class:`Policy` of a ``dockyardCanary`` value; ValueError with a message naming the
    member that is wrong (what the API answers as InvalidParameterException)."""
    where = f"deploymentConfiguration.{FIELD}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be an object.")
    unknown = sorted(set(raw) - {"steps", "intervalSeconds", "maxErrorRate", "maxP99Milliseconds"})
    if unknown:
        raise ValueError(f"{where} has no member {unknown[0]}.")
    steps = raw.get("steps", [10, 50, 100])
    if not isinstance(steps, list) or not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in steps
    ):
        raise ValueError(f"{where}.steps must be a list of percents.")
    check_steps([float(x) for x in steps], f"{where}.steps")
    return Policy(
        tuple(float(x) for x in steps),
        _number({"intervalSeconds": 30, **raw}, "intervalSeconds", 1, 86400),
        _number({"maxErrorRate": 0.01, **raw}, "maxErrorRate", 0, 1),
        _number({"maxP99Milliseconds": 500, **raw}, "maxP99Milliseconds", 0, 3_600_000),
    )


def policy_json(policy: Policy) -> dict[str, Any]:
    return {"steps": list(policy.steps), "intervalSeconds": policy.interval,
            "maxErrorRate": policy.max_error_rate, "maxP99Milliseconds": policy.max_p99}
