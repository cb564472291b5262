"""The canary's relative judgement and step machine (runner.canary), pure."""

from __future__ import annotations

import pytest

from runner import canary
from runner.canary import PROMOTED, ROLLED_BACK, Policy, Run, Window, advance, judge

POLICY = Policy(steps=(10.0, 50.0, 100.0), interval=30.0, max_error_rate=0.01, max_p99=500.0)


def test_a_canary_as_good_as_the_baseline_passes() -> None:
    v = judge(POLICY, Window(900, 9, 40.0), Window(100, 1, 45.0))
    assert v.passed and "1.00%" in v.reason


def test_the_error_rate_is_judged_relative_to_the_baseline() -> None:
    # 3% on both: an absolute 1% alarm would fire, the relative judgement does not
    assert judge(POLICY, Window(1000, 30), Window(100, 3)).passed
    # 20% against 0%: fails, and says by how much
    v = judge(POLICY, Window(900, 0), Window(100, 20))
    assert not v.passed
    assert v.reason == "the canary's 5xx rate 20.00% exceeds the baseline's 0.00% by more than 1.00%"


def test_just_within_the_error_margin_passes_just_past_it_fails() -> None:
    assert judge(POLICY, Window(1000, 0), Window(100, 1)).passed  # exactly +1 point
    assert not judge(POLICY, Window(1000, 0), Window(1000, 11)).passed  # +1.1 points


def test_the_p99_is_judged_relative_to_the_baseline() -> None:
    assert judge(POLICY, Window(100, 0, 900.0), Window(100, 0, 1300.0)).passed  # +400 ms
    v = judge(POLICY, Window(100, 0, 100.0), Window(100, 0, 700.0))
    assert not v.passed and "p99 700 ms exceeds the baseline's 100 ms by more than 500 ms" in v.reason


def test_a_canary_without_requests_fails() -> None:
    v = judge(POLICY, Window(1000, 0), Window(0, 0))
    assert not v.passed and "no request" in v.reason


def test_a_step_is_held_for_the_interval_then_judged() -> None:
    run = Run(since=100.0)
    same, verdict = advance(POLICY, run, 129.0, Window(90), Window(10))
    assert same == run and verdict is None
    nxt, verdict = advance(POLICY, run, 130.0, Window(90), Window(10))
    assert verdict is not None and verdict.passed
    assert (nxt.step, nxt.since, nxt.outcome) == (1, 130.0, "")


def test_every_step_passing_promotes() -> None:
    run, now = Run(since=0.0), 0.0
    seen = []
    while not run.outcome:
        now += 30.0
        base = Window(0) if POLICY.steps[run.step] == 100 else Window(100, 1, 50.0)
        run, _ = advance(POLICY, run, now, base, Window(100, 1, 60.0))
        seen.append((run.step, run.outcome))
    assert run.outcome == PROMOTED and run.reason.startswith("canary promoted: every step passed")
    assert seen == [(1, ""), (2, ""), (2, PROMOTED)]


def test_at_100_the_baseline_is_the_last_window_it_served() -> None:
    run = Run(step=2, since=0.0, reference=Window(100, 0, 50.0))
    run, verdict = advance(POLICY, run, 30.0, Window(0), Window(100, 20, 60.0))
    assert run.outcome == ROLLED_BACK and verdict is not None and "baseline's 0.00%" in verdict.reason


def test_a_failed_step_rolls_back_at_once_and_says_why() -> None:
    run, _ = advance(POLICY, Run(since=0.0), 30.0, Window(900, 0, 20.0), Window(100, 20, 20.0))
    assert run.outcome == ROLLED_BACK
    assert run.reason.startswith("canary at 10% rolled back: the canary's 5xx rate 20.00%")
    # an ended run stays ended
    assert advance(POLICY, run, 1000.0, Window(1), Window(1)) == (run, None)


@pytest.mark.parametrize(
    ("text", "steps"), [("10,50,100", (10.0, 50.0, 100.0)), ("5%, 100%", (5.0, 100.0)), ("100", (100.0,))]
)
def test_steps_parse(text: str, steps: tuple[float, ...]) -> None:
    assert canary.parse_steps(text) == steps


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("10,x", "comma-separated"),
        ("50,10,100", "must increase"),
        ("10,50", "must end at 100"),
        ("0.05,100", "from 0.1 to 100"),
        ("10,50,150", "from 0.1 to 100"),
    ],
)
def test_bad_steps_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        canary.parse_steps(text)


def test_durations_percents_and_milliseconds_parse() -> None:
    assert canary.parse_duration("30s") == 30.0
    assert canary.parse_duration("2m") == 120.0
    assert canary.parse_duration("250ms") == 0.25
    assert canary.parse_duration("5") == 5.0
    assert canary.parse_milliseconds("500ms") == 500.0
    assert canary.parse_milliseconds("1.5s") == 1500.0
    assert canary.parse_milliseconds("200") == 200.0
    assert canary.parse_percent("1%") == 0.01
    assert canary.parse_percent("0.5") == 0.005
    for bad, fn in (("soon", canary.parse_duration), ("ten%", canary.parse_percent),
                    ("150%", canary.parse_percent), ("fast", canary.parse_milliseconds)):
        with pytest.raises(ValueError):
            fn(bad)


def test_a_policy_refuses_values_out_of_range() -> None:
    with pytest.raises(ValueError):
        Policy((10.0, 100.0), 0.0, 0.01, 500.0)
    with pytest.raises(ValueError):
        Policy((10.0, 100.0), 30.0, 2.0, 500.0)


def test_the_cli_turns_its_options_into_the_dockyard_canary_field() -> None:
    import argparse

    from runner.canary_cli import canary_field

    args = argparse.Namespace(steps="10,50,100", interval="30s", max_error_rate="1%", max_p99="500ms")
    assert canary_field(args) == {"steps": [10.0, 50.0, 100.0], "intervalSeconds": 30.0,
                                  "maxErrorRate": 0.01, "maxP99Milliseconds": 500.0}
    with pytest.raises(ValueError, match="--steps"):
        canary_field(argparse.Namespace(steps="50,10", interval="30s", max_error_rate="1%", max_p99="1s"))


def test_the_live_figures_of_each_revision() -> None:
    from runner.canary_cli import figures, metric_queries

    qs = metric_queries("c", "web", ["1", "2"], 30)
    assert [q["Id"] for q in qs] == ["r0", "e0", "q0", "r1", "e1", "q1"]
    dims = {d["Name"]: d["Value"] for d in qs[3]["MetricStat"]["Metric"]["Dimensions"]}
    assert dims == {"ClusterName": "c", "ServiceName": "web", "TaskDefinitionRevision": "2"}
    results = [{"Id": "r0", "Values": [450.0, 450.0]}, {"Id": "e0", "Values": [0.0]},
               {"Id": "q0", "Values": [12.0]}, {"Id": "r1", "Values": [100.0]},
               {"Id": "e1", "Values": [20.0]},
               {"Id": "q1", "Values": []}]
    assert figures(["1", "2"], results) == (
        "rev 1: 900 req 0.00% 5xx p99 12 ms | rev 2: 100 req 20.00% 5xx p99 -"
    )


def test_the_stored_field_reads_back_and_bad_members_are_named() -> None:
    raw = {"steps": [10, 50, 100], "intervalSeconds": 30, "maxErrorRate": 0.01, "maxP99Milliseconds": 500}
    policy = canary.policy_of(raw)
    assert policy == POLICY and canary.policy_json(policy) == {**raw, "steps": [10.0, 50.0, 100.0],
                                                               "intervalSeconds": 30.0}
    assert canary.policy_of({}).steps == (10.0, 50.0, 100.0)
    for bad, message in [
        ({"steps": [50, 10, 100]}, "dockyardCanary.steps must increase"),
        ({"steps": "10,100"}, "dockyardCanary.steps must be a list of percents"),
        ({"steps": [0.01, 100]}, "dockyardCanary.steps: each percent must be from 0.1 to 100"),
        ({"intervalSeconds": 0}, "dockyardCanary.intervalSeconds must be a number from 1 to 86400"),
        ({"maxErrorRate": 5}, "dockyardCanary.maxErrorRate must be a number from 0 to 1"),
        ({"maxP99Milliseconds": -1}, "maxP99Milliseconds must be a number"),
        ({"stepz": [100]}, "dockyardCanary has no member stepz"),
        ([], "dockyardCanary must be an object"),
    ]:
        with pytest.raises(ValueError, match=message):
            canary.policy_of(bad)


def test_a_canary_analysis_drives_the_shift_machine_steps() -> None:
    from dataclasses import replace

    from runner import shift

    config = {"strategy": "CANARY", "dockyardCanary": {"steps": [10, 50, 100], "intervalSeconds": 30}}
    strategy = shift.strategy_of(config)
    assert strategy is not None and strategy.analysis is not None
    assert strategy.steps() == (10.0, 50.0, 100.0, 100.0)  # each step judged, then promoted
    # the machine never moves a judged step by itself: the analysis does
    state = shift.State(stage="PRODUCTION_TRAFFIC_SHIFT", step=0, since=0.0)
    held = shift.advance(strategy, state, shift.Observed(now=1e9), minute=1.0)
    assert (held.stage, held.step, held.outcome) == ("PRODUCTION_TRAFFIC_SHIFT", 0, "")
    at_100 = shift.advance(strategy, replace(state, step=2), shift.Observed(now=1e9), minute=1.0)
    assert (at_100.stage, at_100.step) == ("PRODUCTION_TRAFFIC_SHIFT", 2)  # judged before promotion
    promoted = shift.advance(strategy, replace(state, step=3), shift.Observed(now=1e9), minute=1.0)
    assert promoted.stage != "PRODUCTION_TRAFFIC_SHIFT"
    assert shift.traffic(strategy, held).green == 10.0
    # a failed analysis rolls back at once, with its reason
    why = "canary at 10% rolled back: the canary's 5xx rate 20.00% exceeds the baseline's 0.00%"
    back = shift.advance(strategy, held, shift.Observed(now=1e9, failed_analysis=why), minute=1.0)
    assert (back.outcome, back.reason) == ("ROLLBACK", why)
    assert shift.traffic(strategy, back).green == 0.0


def test_the_dockyard_canary_field_is_checked_with_the_strategy() -> None:
    from runner import shiftconfig
    from runner.errors import InvalidParameterException

    good = {"strategy": "CANARY", "dockyardCanary": {"steps": [10, 100]}}
    shiftconfig.check(good, connect=True)
    with pytest.raises(InvalidParameterException, match="dockyardCanary can only be used with the CANARY"):
        shiftconfig.check({**good, "strategy": "LINEAR"}, connect=True)
    with pytest.raises(InvalidParameterException, match=r"dockyardCanary\.steps must end at 100"):
        shiftconfig.check({**good, "dockyardCanary": {"steps": [10, 50]}}, connect=True)
