"""Application Auto Scaling's decisions (pure): target tracking, step scaling, several policies."""

from __future__ import annotations

from runner.autoscaling.decide import (
    HIGH_POINTS,
    LOW_POINTS,
    History,
    Step,
    StepScaling,
    Target,
    TargetTracking,
    decide,
    step_decision,
    tracking_decision,
)

T = Target("service/c/web", capacity=4, min_capacity=1, max_capacity=10)
NOW = 10_000.0


def tt(values: list[float | None], target: float = 50.0, **kw: object) -> TargetTracking:
    return TargetTracking("cpu50", target, values, **kw)  # type: ignore[arg-type]


def test_three_periods_above_the_target_scale_out_proportionally():
    d = tracking_decision(T, tt([40, 90, 95, 100]), History(), NOW)
    assert (d.desired, d.direction) == (8, "out")  # ceil(4 x 100 / 50)
    assert d.cause == ("monitor alarm TargetTracking-service/c/web-AlarmHigh-cpu50 in state ALARM triggered "
                       "policy cpu50 changing the desired capacity from 4 to 8")
    assert tracking_decision(T, tt([40, 90, 95]), History(), NOW).direction == ""  # 2 of the last 3
    assert tracking_decision(T, tt([90, 40, 95]), History(), NOW).direction == ""  # not 3 in a row
    assert tracking_decision(T, tt([90, None, 95]), History(), NOW).direction == ""  # a gap breaks it


def test_a_small_excess_still_adds_a_task_and_max_capacity_bounds_it():
    assert tracking_decision(T, tt([51] * HIGH_POINTS), History(), NOW).desired == 5
    d = tracking_decision(T, tt([500] * HIGH_POINTS), History(), NOW)
    assert d.desired == 10
    at_max = Target("service/c/web", 10, 1, 10)
    assert tracking_decision(at_max, tt([500] * HIGH_POINTS), History(), NOW).waits


def test_scale_in_needs_fifteen_periods_below_ninety_percent_of_the_target():
    below = [20.0] * LOW_POINTS
    d = tracking_decision(T, tt(below), History(), NOW)
    assert (d.desired, d.direction) == (2, "in")  # ceil(4 x 20 / 50)
    assert "AlarmLow" in d.cause
    assert tracking_decision(T, tt(below[1:]), History(), NOW).direction == ""  # 14 periods
    assert tracking_decision(T, tt([46.0] * LOW_POINTS), History(), NOW).direction == ""  # above 45 = 90 %
    assert tracking_decision(T, tt([44.0] * LOW_POINTS), History(), NOW).desired == 3  # at least one fewer


def test_cooldowns_and_disable_scale_in():
    hot = tt([100] * HIGH_POINTS, scale_out_cooldown=300)
    just_out = History(last_out_at=NOW - 60, last_out_to=8)
    assert tracking_decision(T, hot, just_out, NOW).desired == 4  # 8 is not more than the last one set
    hotter = tt([200] * HIGH_POINTS, scale_out_cooldown=300)
    assert tracking_decision(T, hotter, just_out, NOW).desired == 10  # more than the last: goes on
    assert tracking_decision(T, hot, History(last_out_at=NOW - 301, last_out_to=8), NOW).desired == 8
    cold = tt([10.0] * LOW_POINTS, scale_in_cooldown=300)
    assert tracking_decision(T, cold, History(last_in_at=NOW - 100), NOW).desired == 4
    assert tracking_decision(T, cold, History(last_out_at=NOW - 100), NOW).desired == 4  # a scale-out too
    assert tracking_decision(T, cold, History(last_in_at=NOW - 301), NOW).desired == 1
    assert tracking_decision(T, tt([10.0] * LOW_POINTS, disable_scale_in=True), History(), NOW).desired == 4


def test_suspended_directions_hold():
    out_off = Target("service/c/web", 4, 1, 10, out_suspended=True)
    assert tracking_decision(out_off, tt([100] * 3), History(), NOW).desired == 4
    in_off = Target("service/c/web", 4, 1, 10, in_suspended=True)
    assert tracking_decision(in_off, tt([1.0] * LOW_POINTS), History(), NOW).desired == 4


def test_several_policies_the_largest_scale_out_wins_and_all_must_agree_to_scale_in():
    cpu, mem = tt([100] * 15), TargetTracking("mem70", 70, [75] * 15)
    d = decide(T, [cpu, mem], [], History(), NOW)
    assert (d.desired, d.policy) == (8, "cpu50")
    low_cpu, ok_mem = tt([10.0] * 15), TargetTracking("mem70", 70, [66] * 15)  # above 63 = 90 % of 70
    assert decide(T, [low_cpu, ok_mem], [], History(), NOW).desired == 4  # memory is not ready to scale in
    both_low = TargetTracking("mem70", 70, [30.0] * 15)
    d = decide(T, [low_cpu, both_low], [], History(), NOW)
    assert (d.desired, d.direction) == (2, "in")  # max(ceil(4x10/50)=1, ceil(4x30/70)=2)
    never_in = TargetTracking("mem70", 70, [66] * 15, disable_scale_in=True)
    assert decide(T, [low_cpu, never_in], [], History(), NOW).desired == 1  # it has no say


def _step(breach: float, steps: list[Step], kind: str = "ChangeInCapacity", **kw: object) -> StepScaling:
    return StepScaling("steps", "high-queue", 100.0, breach, steps, kind, **kw)  # type: ignore[arg-type]


STEPS = [Step(1, lower=0, upper=50), Step(3, lower=50)]


def test_step_scaling_picks_the_step_of_the_breach():
    assert step_decision(T, _step(120, STEPS), History(), NOW).desired == 5
    assert step_decision(T, _step(150, STEPS), History(), NOW).desired == 7  # lower bound inclusive
    d = step_decision(T, _step(149.9, STEPS), History(), NOW)
    assert d.desired == 5
    assert d.cause.startswith("monitor alarm high-queue in state ALARM triggered policy steps")
    assert step_decision(T, _step(90, STEPS), History(), NOW).desired == 4  # no step below the threshold
    assert step_decision(T, _step(200, STEPS, cooldown=300), History(last_out_at=NOW - 10), NOW).desired == 4


def test_step_adjustment_types():
    assert step_decision(T, _step(120, [Step(6, lower=0)], "ExactCapacity"), History(), NOW).desired == 6
    pct = "PercentChangeInCapacity"
    assert step_decision(T, _step(120, [Step(50, lower=0)], pct), History(), NOW).desired == 6
    assert step_decision(T, _step(120, [Step(10, lower=0)], pct), History(), NOW).desired == 5  # 0.4 -> 1
    big = Target("service/c/web", 20, 1, 100)
    assert step_decision(big, _step(120, [Step(10, lower=0)], "PercentChangeInCapacity", min_magnitude=5),
                         History(), NOW).desired == 25
    shrink = _step(120, [Step(-2, lower=0)])
    assert step_decision(T, shrink, History(), NOW).direction == "in"
    two = Target("service/c/web", 2, 1, 10)
    assert step_decision(two, shrink, History(), NOW).desired == 1  # MinCapacity


def test_a_capacity_outside_new_bounds_is_brought_inside():
    d = decide(Target("service/c/web", 12, 1, 10), [], [], History(), NOW)
    assert (d.desired, d.direction) == (10, "in")
    d = decide(Target("service/c/web", 0, 2, 10), [], [], History(), NOW)
    assert (d.desired, d.direction) == (2, "out")


def test_the_breach_is_the_alarms_datapoints_aggregated_by_metric_aggregation_type():
    from runner.autoscaling.decide import breach

    assert breach([10.0, 20.0, 60.0], "Average", 5.0) == 30.0
    assert breach([10.0, 20.0, 60.0], "Minimum", 5.0) == 10.0
    assert breach([10.0, 20.0, 60.0], "Maximum", 5.0) == 60.0
    assert breach([], "Average", 5.0) == 5.0  # SetAlarmState: no datapoints, the threshold's step


def test_the_metric_each_predefined_policy_follows():
    from runner.autoscaling.loop import metric_query

    label = "app/edge/0123456789abcdef/targetgroup/web-tg/fedcba9876543210"
    alb = {"PredefinedMetricSpecification": {"PredefinedMetricType": "ALBRequestCountPerTarget",
                                             "ResourceLabel": label}}
    assert metric_query("service/c/web", alb) == (
        "AWS/ApplicationELB", "RequestCountPerTarget", {"TargetGroup": "targetgroup/web-tg/fedcba9876543210"},
        "Sum")
    cpu = {"PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
    assert metric_query("service/c/web", cpu) == (
        "AWS/ECS", "CPUUtilization", {"ClusterName": "c", "ServiceName": "web"}, "Average")
