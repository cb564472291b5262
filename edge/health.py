"""Target health as ALB reports it: a pure judgement of each probe's outcome.

A target starts ``initial`` (``Elb.InitialHealthChecking``) and becomes ``healthy`` after
``HealthyThresholdCount`` passing checks in a row, ``unhealthy`` after
``UnhealthyThresholdCount`` failing ones (reason from the last failure:
``Target.ResponseCodeMismatch``, ``Target.Timeout``, ``Target.FailedHealthChecks`` for a
refused connection); the other states (``unused``, ``draining``) are decided by the caller
from the load balancer's configuration (:func:`describe`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = [
    "DRAINING",
    "HEALTHY",
    "INITIAL",
    "UNHEALTHY",
    "UNUSED",
    "Health",
    "describe",
    "judge",
    "matches",
    "parse_matcher",
]

INITIAL, HEALTHY, UNHEALTHY, UNUSED, DRAINING = "initial", "healthy", "unhealthy", "unused", "draining"
_DESCRIPTIONS = {
    "Elb.InitialHealthChecking": "Initial health checks in progress",
    "Target.ResponseCodeMismatch": "Health checks failed with these codes: [{code}]",
    "Target.Timeout": "Request timed out",
    "Target.FailedHealthChecks": "Health checks failed",
    "Target.NotInUse": "Target group is not configured to receive traffic from the load balancer",
    "Target.DeregistrationInProgress": "Target deregistration is in progress",
}


@dataclass(frozen=True)
class Health:
    state: str = INITIAL
    reason: str = "Elb.InitialHealthChecking"
    passes: int = 0  # consecutive
    fails: int = 0
    code: str = ""  # the last response's status


def parse_matcher(text: str) -> list[tuple[int, int]]:
    """``200``, ``200,202``, ``200-299`` → inclusive ranges; ValueError when malformed."""
    out = []
    for part in text.split(","):
        lo, _, hi = part.strip().partition("-")
        a, b = int(lo), int(hi or lo)
        if not (200 <= a <= b <= 499):
            raise ValueError(f"{part!r} is not a code or range of codes in 200-499")
        out.append((a, b))
    if not out:
        raise ValueError("empty matcher")
    return out


def matches(matcher: str, status: int) -> bool:
    return any(a <= status <= b for a, b in parse_matcher(matcher))


def judge(h: Health, outcome: str, status: int, healthy_threshold: int, unhealthy_threshold: int) -> Health:
    """The health after one check: ``outcome`` is ``ok``, ``mismatch`` (``status`` not
    matched), ``timeout`` or ``refused``."""
    if outcome == "ok":
        passes = h.passes + 1
        if passes >= healthy_threshold:
            return Health(HEALTHY, "", passes, 0, str(status))
        return replace(h, passes=passes, fails=0, code=str(status))
    fails = h.fails + 1
    reason = {"mismatch": "Target.ResponseCodeMismatch", "timeout": "Target.Timeout"}.get(
        outcome, "Target.FailedHealthChecks"
    )
    if fails >= unhealthy_threshold or h.state == UNHEALTHY:
        return Health(UNHEALTHY, reason, 0, fails, str(status) if status else "")
    return replace(h, passes=0, fails=fails, code=str(status) if status else "")


def describe(h: Health) -> dict[str, str]:
    """ELBv2's ``TargetHealth`` of ``h``."""
    out = {"State": h.state}
    if h.reason:
        out["Reason"] = h.reason
        out["Description"] = _DESCRIPTIONS[h.reason].format(code=h.code)
    return out
