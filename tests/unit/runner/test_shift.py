"""The traffic-shifting stage machine (runner.shift), pure."""

from __future__ import annotations

from dataclasses import replace

from runner.shift import (
    Alarms,
    Hook,
    Observed,
    State,
    Strategy,
    advance,
    next_wake,
    state_from_json,
    state_json,
    strategy_of,
    traffic,
)

MIN = 1.0  # one API minute is one second here


def run(strategy: Strategy, state: State, now: float, **obs: object) -> State:
    return advance(strategy, state, Observed(now, **obs), minute=MIN)  # type: ignore[arg-type]


def test_steps_of_each_strategy():
    assert Strategy("BLUE_GREEN").steps() == (100.0,)
    assert Strategy("CANARY", canary_percent=5).steps() == (5.0, 100.0)
    assert Strategy("LINEAR", step_percent=25).steps() == (25.0, 50.0, 75.0, 100.0)
    assert Strategy("LINEAR", step_percent=30).steps() == (30.0, 60.0, 90.0, 100.0)
    assert Strategy("LINEAR", step_percent=100).steps() == (100.0,)
    assert Strategy("CANARY", canary_percent=100).steps() == (100.0,)


def test_scale_up_waits_for_green_then_test_traffic_and_the_first_step_come_at_once():
    s = Strategy("LINEAR", step_percent=50, step_bake=10)
    st = run(s, State(), 0)
    assert st.stage == "SCALE_UP" and traffic(s, st) == traffic(s, State())
    assert traffic(s, st).green == 0 and not traffic(s, st).test
    st = run(s, st, 1, green_ready=True)
    assert (st.stage, st.step) == ("PRODUCTION_TRAFFIC_SHIFT", 0)
    assert traffic(s, st).green == 50 and traffic(s, st).test
    assert next_wake(s, st, MIN) == 11


def test_linear_holds_each_step_its_bake_time_then_bakes_then_cleans_up():
    s = Strategy("LINEAR", step_percent=50, step_bake=10, bake=5)
    st = run(s, run(s, State(), 0), 1, green_ready=True)
    assert run(s, st, 10.9, green_ready=True).step == 0
    st = run(s, st, 11, green_ready=True)
    assert st.stage == "BAKE_TIME" and traffic(s, st).green == 100
    assert run(s, st, 15.9).stage == "BAKE_TIME"
    st = run(s, st, 16)
    assert st.stage == "CLEAN_UP" and not st.outcome
    assert run(s, st, 17).outcome == ""  # blue still has tasks
    st = run(s, st, 18, blue_drained=True)
    assert st.outcome == "SUCCESSFUL" and traffic(s, st).green == 100 and st.ended_at == 18


def test_blue_green_moves_all_production_traffic_at_once_with_no_bake():
    s = Strategy("BLUE_GREEN")
    st = run(s, State(), 0, green_ready=True)
    assert st.stage == "CLEAN_UP" and traffic(s, st).green == 100


def test_canary_percent_then_all():
    s = Strategy("CANARY", canary_percent=10, canary_bake=3)
    st = run(s, State(), 0, green_ready=True)
    assert traffic(s, st).green == 10
    st = run(s, st, 3, green_ready=True)
    assert st.stage == "CLEAN_UP"


def test_an_alarm_in_alarm_rolls_back_with_its_name_and_moves_all_traffic_to_blue():
    s = Strategy("CANARY", canary_bake=30, alarms=Alarms(("errors", "latency"), True, True))
    st = run(s, State(), 0, green_ready=True)
    assert traffic(s, st).green == 10
    assert run(s, st, 1, in_alarm=("something-else",)).outcome == ""
    st = run(s, st, 2, in_alarm=("latency",))
    assert st.outcome == "ROLLBACK" and st.triggered == ("latency",) and "latency" in st.reason
    assert traffic(s, st) == traffic(s, State(outcome="ROLLBACK"))
    assert traffic(s, st).green == 0 and not traffic(s, st).test
    assert run(s, st, 3).outcome == "ROLLBACK"  # final


def test_alarms_not_enabled_or_without_rollback():
    off = Strategy("CANARY", alarms=Alarms(("errors",), False, True))
    assert run(off, State(), 0, green_ready=True, in_alarm=("errors",)).outcome == ""
    fail = Strategy("CANARY", alarms=Alarms(("errors",), True, False))
    st = run(fail, State(), 0, green_ready=True, in_alarm=("errors",))
    assert st.outcome == "FAILED" and st.triggered == ("errors",)


def test_an_alarm_during_clean_up_does_not_roll_back():
    s = Strategy("BLUE_GREEN", alarms=Alarms(("errors",), True, True))
    st = run(s, State(), 0, green_ready=True)
    assert st.stage == "CLEAN_UP"
    assert run(s, st, 1, in_alarm=("errors",), blue_drained=True).outcome == "SUCCESSFUL"


def test_a_pause_hook_holds_its_stage_after_its_work_until_continued():
    s = Strategy("BLUE_GREEN", hooks=(Hook("hook-1", ("POST_TEST_TRAFFIC_SHIFT",)),))
    st = run(s, State(), 0, green_ready=True)
    assert (st.stage, st.hook) == ("POST_TEST_TRAFFIC_SHIFT", "hook-1")
    assert traffic(s, st).test and traffic(s, st).green == 0
    assert run(s, st, 500, green_ready=True) == st
    st = run(s, replace(st, action="CONTINUE"), 501, green_ready=True)
    assert st.stage == "CLEAN_UP" and st.passed == ("hook-1@POST_TEST_TRAFFIC_SHIFT",)


def test_a_hook_asking_rollback_and_a_hook_timing_out():
    s = Strategy("LINEAR", hooks=(Hook("hook-1", ("PRE_SCALE_UP",), timeout_minutes=5),))
    st = run(s, State(), 0)
    assert (st.stage, st.hook) == ("PRE_SCALE_UP", "hook-1")
    assert run(s, replace(st, action="ROLLBACK"), 1).outcome == "ROLLBACK"
    assert run(s, st, 4.9).outcome == ""
    assert next_wake(s, st, MIN) == 5
    assert run(s, st, 5).outcome == "ROLLBACK"
    go = Strategy("LINEAR", hooks=(Hook("hook-1", ("RECONCILE_SERVICE",), 5, "CONTINUE"),))
    assert run(go, run(go, State(), 0), 5).stage == "SCALE_UP"


def test_stop_requests():
    s = Strategy("LINEAR")
    st = run(s, State(), 0, green_ready=True)
    assert run(s, replace(st, stop="ROLLBACK"), 1).outcome == "ROLLBACK"
    aborted = run(s, replace(st, stop="ABORT"), 1)
    assert aborted.outcome == "STOPPED" and traffic(s, aborted).green == traffic(s, st).green


def test_strategy_from_the_api_and_state_round_trip():
    s = strategy_of({
        "strategy": "LINEAR", "linearConfiguration": {"stepPercent": 20.5, "stepBakeTimeInMinutes": 2},
        "bakeTimeInMinutes": 3, "alarms": {"alarmNames": ["a"], "enable": True, "rollback": True},
        "lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["SCALE_UP", "POST_SCALE_UP"]}],
    })
    assert s is not None and s.step_percent == 20.5 and s.step_bake == 2 and s.bake == 3
    assert s.alarms == Alarms(("a",), True, True) and s.hooks[0].id == "hook-1"
    assert strategy_of({"strategy": "ROLLING"}) is None and strategy_of({}) is None
    st = State(stage="BAKE_TIME", step=2, passed=("hook-1@POST_SCALE_UP",), triggered=("a",))
    assert state_from_json(state_json(st)) == st
