"""Application Auto Scaling's decisions, pure: metric history and policies in, the new desired
count of an ECS service and AWS's wording of why out. Nothing here reads a clock or a store;
the evaluation loop gives ``now``, the datapoints and what happened before.

**Target tracking** (:class:`TargetTracking`), as AWS runs it through the two alarms it
creates for a policy: *AlarmHigh*, the metric above the target for :data:`HIGH_POINTS`
consecutive periods, scales out; *AlarmLow*, the metric below 90 % of the target for
:data:`LOW_POINTS` consecutive periods, scales in (so out fast, in slowly). The new capacity is
proportional, ``ceil(capacity x metric / target)``, at least one task more on a scale-out and
one fewer on a scale-in. ``ScaleOutCooldown``: after a scale-out, another one waits out the
cooldown unless it asks for more than the capacity the last one set; ``ScaleInCooldown``: no
scale-in within it of the last scale-in, nor of a scale-out; ``DisableScaleIn`` keeps the policy
from ever scaling in. With several policies (:func:`decide`) the largest scale-out wins, and
the service scales in only when every target tracking policy would (to the largest of their
counts), as AWS does.

**Step scaling** (:class:`StepScaling`), from an alarm in ALARM: the aggregated breach value
minus the alarm's threshold picks the step whose bounds hold it (``MetricIntervalLowerBound``
inclusive, ``MetricIntervalUpperBound`` exclusive, as AWS documents); its
``ScalingAdjustment`` is applied by ``AdjustmentType`` (``ChangeInCapacity``,
``ExactCapacity``, ``PercentChangeInCapacity`` rounded away from zero below 1 and toward zero
above, then at least ``MinAdjustmentMagnitude``), once per ``Cooldown``.

The result is clamped to the scalable target's ``MinCapacity``/``MaxCapacity``; a target whose
``DynamicScalingOutSuspended``/``InSuspended`` is set does not move that way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = [
    "HIGH_POINTS",
    "LOW_POINTS",
    "LOW_RATIO",
    "Decision",
    "History",
    "Step",
    "StepScaling",
    "Target",
    "TargetTracking",
    "breach",
    "decide",
    "step_decision",
    "tracking_decision",
]

HIGH_POINTS = 3  # AlarmHigh: periods above the target (AWS: 3 of 3 one-minute datapoints)
LOW_POINTS = 15  # AlarmLow: periods below LOW_RATIO x target (AWS: 15 of 15)
LOW_RATIO = 0.9


@dataclass(frozen=True)
class Target:
    """A scalable target (``ecs:service:DesiredCount``) and what its service runs now."""

    resource: str  # service/<cluster>/<service>
    capacity: int
    min_capacity: int
    max_capacity: int
    out_suspended: bool = False
    in_suspended: bool = False

    def clamp(self, n: int) -> int:
        return max(self.min_capacity, min(self.max_capacity, n))


@dataclass(frozen=True)
class History:
    """What happened before: when the service last scaled out (and to what) and in."""

    last_out_at: float | None = None
    last_out_to: int = 0
    last_in_at: float | None = None


@dataclass(frozen=True)
class TargetTracking:
    name: str
    target: float
    points: Sequence[float | None]  # one value per period, oldest first (None: no data)
    scale_out_cooldown: float = 300.0
    scale_in_cooldown: float = 300.0
    disable_scale_in: bool = False
    metric: str = "ECSServiceAverageCPUUtilization"


@dataclass(frozen=True)
class Step:
    adjustment: int
    lower: float | None = None  # MetricIntervalLowerBound (relative to the alarm's threshold)
    upper: float | None = None  # MetricIntervalUpperBound


@dataclass(frozen=True)
class StepScaling:
    name: str
    alarm: str
    threshold: float
    breach: float  # the alarm's metric, aggregated by MetricAggregationType over its period
    steps: Sequence[Step]
    adjustment_type: str = "ChangeInCapacity"  # ExactCapacity | PercentChangeInCapacity
    min_magnitude: int = 0
    cooldown: float = 300.0


@dataclass(frozen=True)
class Decision:
    """The desired count to set (``desired == target.capacity``: nothing to do) and AWS's cause."""

    desired: int
    cause: str = ""
    policy: str = ""
    direction: str = ""  # "out" | "in" | ""
    waits: tuple[str, ...] = field(default_factory=tuple)  # why a wanted change is held back


def _alarm(resource: str, policy: str, kind: str) -> str:
    return f"TargetTracking-{resource}-{kind}-{policy}"


def _cause(alarm: str, policy: str, before: int, after: int) -> str:
    return (f"monitor alarm {alarm} in state ALARM triggered policy {policy} changing the desired "
            f"capacity from {before} to {after}")


def tracking_decision(t: Target, p: TargetTracking, h: History, now: float) -> Decision:
    """One target tracking policy on its own (see module docstring)."""
    pts = list(p.points)
    cap = t.capacity
    if p.target <= 0:
        return Decision(cap)
    high = len(pts) >= HIGH_POINTS and all(v is not None and v > p.target for v in pts[-HIGH_POINTS:])
    floor = p.target * LOW_RATIO
    low = len(pts) >= LOW_POINTS and all(v is not None and v < floor for v in pts[-LOW_POINTS:])
    last = pts[-1] if pts else None
    if high and last is not None:
        want = t.clamp(max(cap + 1, math.ceil(cap * last / p.target - 1e-9)) if cap else 1)
        if want <= cap:
            return Decision(cap, waits=(f"{p.name}: at MaxCapacity {t.max_capacity}",))
        if t.out_suspended:
            return Decision(cap, waits=(f"{p.name}: dynamic scale-out is suspended",))
        if h.last_out_at is not None and now - h.last_out_at < p.scale_out_cooldown and want <= h.last_out_to:
            return Decision(cap, waits=(f"{p.name}: in its scale-out cooldown",))
        alarm = _alarm(t.resource, p.name, "AlarmHigh")
        return Decision(want, _cause(alarm, p.name, cap, want), p.name, "out")
    if low and last is not None and not p.disable_scale_in:
        want = t.clamp(min(cap - 1, math.ceil(cap * last / p.target - 1e-9)))
        if want >= cap:
            return Decision(cap)
        if t.in_suspended:
            return Decision(cap, waits=(f"{p.name}: dynamic scale-in is suspended",))
        recent = [x for x in (h.last_in_at, h.last_out_at) if x is not None]
        if recent and now - max(recent) < p.scale_in_cooldown:
            return Decision(cap, waits=(f"{p.name}: in its scale-in cooldown",))
        alarm = _alarm(t.resource, p.name, "AlarmLow")
        return Decision(want, _cause(alarm, p.name, cap, want), p.name, "in")
    return Decision(cap)


def _step_of(p: StepScaling) -> Step | None:
    delta = p.breach - p.threshold
    for s in p.steps:
        lo = -math.inf if s.lower is None else s.lower
        hi = math.inf if s.upper is None else s.upper
        if lo <= delta < hi:
            return s
    return None


def breach(datapoints: Sequence[float], aggregation: str, threshold: float) -> float:
    """The value a step policy judges: the alarm's datapoints aggregated by
    ``MetricAggregationType`` (``Average``, ``Minimum``, ``Maximum``); the threshold itself when
    there are none (an alarm put in ALARM by SetAlarmState: the step at the threshold)."""
    if not datapoints:
        return threshold
    if aggregation == "Minimum":
        return min(datapoints)
    if aggregation == "Maximum":
        return max(datapoints)
    return sum(datapoints) / len(datapoints)


def step_decision(t: Target, p: StepScaling, h: History, now: float) -> Decision:
    """A step scaling policy whose alarm is in ALARM (see module docstring)."""
    cap = t.capacity
    step = _step_of(p)
    if step is None:
        return Decision(cap, waits=(f"{p.name}: no step holds a breach of {p.breach - p.threshold:g}",))
    if p.adjustment_type == "ExactCapacity":
        want = step.adjustment
    elif p.adjustment_type == "PercentChangeInCapacity":
        raw = cap * step.adjustment / 100
        change = math.trunc(raw) if abs(raw) >= 1 else (math.copysign(1, raw) if raw else 0)
        if p.min_magnitude and abs(change) < p.min_magnitude:
            change = math.copysign(p.min_magnitude, step.adjustment)
        want = cap + int(change)
    else:
        want = cap + step.adjustment
    want = t.clamp(want)
    if want == cap:
        return Decision(cap)
    direction = "out" if want > cap else "in"
    if (direction == "out" and t.out_suspended) or (direction == "in" and t.in_suspended):
        return Decision(cap, waits=(f"{p.name}: dynamic scale-{direction} is suspended",))
    recent = [x for x in (h.last_in_at, h.last_out_at) if x is not None]
    if recent and now - max(recent) < p.cooldown:
        return Decision(cap, waits=(f"{p.name}: in its cooldown",))
    return Decision(want, _cause(p.alarm, p.name, cap, want), p.name, direction)


def decide(t: Target, tracking: Sequence[TargetTracking], steps: Sequence[StepScaling], h: History,
           now: float) -> Decision:
    """Every policy of one scalable target together: the largest scale-out wins; a scale-in
    happens only when every target tracking policy scales in (the largest of their counts), or
    from a step policy when no policy scales out."""
    decisions = [tracking_decision(t, p, h, now) for p in tracking]
    decisions += [step_decision(t, p, h, now) for p in steps]
    waits = tuple(w for d in decisions for w in d.waits)
    outs = [d for d in decisions if d.direction == "out"]
    if outs:
        best = max(outs, key=lambda d: d.desired)
        return Decision(best.desired, best.cause, best.policy, "out", waits)
    voters = [p for p in tracking if not p.disable_scale_in]  # a policy that never scales in has no say
    tracked_in = [d for p, d in zip(tracking, decisions, strict=False)
                  if not p.disable_scale_in and d.direction == "in"]
    if voters and len(tracked_in) == len(voters):
        best = max(tracked_in, key=lambda d: d.desired)
        return Decision(best.desired, best.cause, best.policy, "in", waits)
    step_in = [d for d in decisions[len(tracking):] if d.direction == "in"]
    if step_in and not tracked_in:
        best = max(step_in, key=lambda d: d.desired)
        return Decision(best.desired, best.cause, best.policy, "in", waits)
    # out of range (MinCapacity raised, MaxCapacity lowered): the target's bounds move it
    bounded = t.clamp(t.capacity)
    if bounded != t.capacity:
        why = f"the desired count of {t.resource} was outside [{t.min_capacity}, {t.max_capacity}]; " \
              f"setting it to {bounded}"
        return Decision(bounded, why, "", "out" if bounded > t.capacity else "in", waits)
    return Decision(t.capacity, waits=waits)
