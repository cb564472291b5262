"""Traffic-shifting deployments, pure: ECS's ``BLUE_GREEN``, ``LINEAR`` and ``CANARY`` as a
stage machine (docs/deployments.md).

A deployment of a Service Connect service whose ``deploymentConfiguration.strategy`` shifts
traffic goes through ECS's lifecycle stages in order::

    PRE_SCALE_UP -> SCALE_UP -> POST_SCALE_UP -> TEST_TRAFFIC_SHIFT -> POST_TEST_TRAFFIC_SHIFT
      -> PRODUCTION_TRAFFIC_SHIFT -> POST_PRODUCTION_TRAFFIC_SHIFT -> BAKE_TIME -> CLEAN_UP

* SCALE_UP: the new revision (green) is started at the full desired count beside the old one
  (blue), which keeps all its tasks until CLEAN_UP; the stage ends once green has the desired
  count of healthy tasks.
* TEST_TRAFFIC_SHIFT: from here on, requests carrying a client alias's
  ``testTrafficRules`` header go to green.
* PRODUCTION_TRAFFIC_SHIFT: green's share of production traffic goes through
  :meth:`Strategy.steps`: BLUE_GREEN 100 at once; CANARY ``canaryPercent``, then after
  ``canaryBakeTimeInMinutes`` 100; LINEAR ``stepPercent``, ``2 * stepPercent``, ... each held
  ``stepBakeTimeInMinutes``, then 100.
* BAKE_TIME: all traffic on green for ``bakeTimeInMinutes``, blue still running (a rollback
  is a route change, no task starts).
* CLEAN_UP: blue is stopped; once it has no live task the deployment is SUCCESSFUL.

A lifecycle hook (``targetType`` PAUSE) on a stage holds the deployment at the end of that
stage (its traffic already shifted) until ContinueServiceDeployment gives its ``hookId`` an
action (CONTINUE: go on; ROLLBACK: roll back), or its timeout passes (then its
``timeoutConfiguration.action``, ROLLBACK by default).

Rolled back (outcome ROLLBACK): all production traffic on blue at once, no test traffic,
green is then stopped. The causes: an alarm of ``deploymentConfiguration.alarms`` in ALARM
(when ``enable`` and ``rollback``) at any stage before CLEAN_UP, a hook's ROLLBACK, a
StopServiceDeployment ``ROLLBACK``. An alarm with ``rollback`` false fails the deployment
(outcome FAILED: it stays where it is); StopServiceDeployment ``ABORT`` stops it likewise
(outcome STOPPED).

:func:`advance` is the whole machine: (strategy, state, what the loop observed) -> next state;
:func:`traffic` what the mesh should do in a state. Times are seconds; the API's minutes
become seconds through ``minute`` (the ``deployment_minute_seconds`` setting).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from runner.canary import FIELD as CANARY_FIELD
from runner.canary import Policy as CanaryPolicy
from runner.canary import policy_of as canary_policy

__all__ = ["HOOK_STAGES", "SHIFTING", "STAGES", "Alarms", "Hook", "Observed", "State", "Strategy", "Traffic",
           "advance", "alarms_of", "hook_id", "next_wake", "state_from_json", "state_json", "strategy_of",
           "traffic"]

STAGES = ("PRE_SCALE_UP", "SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT", "POST_TEST_TRAFFIC_SHIFT",
          "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT", "BAKE_TIME", "CLEAN_UP")
HOOK_STAGES = ("RECONCILE_SERVICE", "PRE_SCALE_UP", "POST_SCALE_UP", "TEST_TRAFFIC_SHIFT",
               "POST_TEST_TRAFFIC_SHIFT", "PRODUCTION_TRAFFIC_SHIFT", "POST_PRODUCTION_TRAFFIC_SHIFT")
SHIFTING = ("BLUE_GREEN", "LINEAR", "CANARY")
_HOOK_AT = {"RECONCILE_SERVICE": "PRE_SCALE_UP"}  # no stage of its own here: held with PRE_SCALE_UP
_MAX_HOOK_MINUTES = 1440


@dataclass(frozen=True)
class Hook:
    """A PAUSE lifecycle hook: its id (what ContinueServiceDeployment names), the stages it
    holds, its timeout in minutes and what happens then."""

    id: str
    stages: tuple[str, ...]
    timeout_minutes: float = _MAX_HOOK_MINUTES
    timeout_action: str = "ROLLBACK"

    def holds(self, stage: str) -> bool:
        return any(_HOOK_AT.get(s, s) == stage for s in self.stages)


@dataclass(frozen=True)
class Alarms:
    names: tuple[str, ...] = ()
    enable: bool = False
    rollback: bool = False


@dataclass(frozen=True)
class Strategy:
    """A deployment's ``deploymentConfiguration`` as the machine reads it (percents 0.1-100,
    minutes 0-1440, checked by the API)."""

    kind: str  # BLUE_GREEN | LINEAR | CANARY
    canary_percent: float = 10.0
    canary_bake: float = 10.0
    step_percent: float = 10.0
    step_bake: float = 6.0
    bake: float = 0.0
    hooks: tuple[Hook, ...] = ()
    alarms: Alarms = Alarms()
    analysis: CanaryPolicy | None = None  # Dockyard's canary analysis (dockyardCanary)

    def steps(self) -> tuple[float, ...]:
        """Green's share of production traffic (percent) at each step, the last 100 (with a
        canary analysis: its steps, each judged, then one more 100 that stands for "promoted")."""
        if self.analysis is not None:
            return (*self.analysis.steps, 100.0)
        if self.kind == "CANARY" and self.canary_percent < 100:
            return (self.canary_percent, 100.0)
        if self.kind == "LINEAR" and self.step_percent < 100:
            n = math.ceil(100 / self.step_percent - 1e-9)
            return (*(round(self.step_percent * i, 6) for i in range(1, n)), 100.0)
        return (100.0,)

    def hold(self, step: int) -> float:
        """Minutes step ``step`` is held before the next (the last step: none; with a canary
        analysis, until the analysis moves it: the service loop judges each step)."""
        if step >= len(self.steps()) - 1:
            return 0.0
        if self.analysis is not None:
            return math.inf
        return self.canary_bake if self.kind == "CANARY" else self.step_bake


@dataclass(frozen=True)
class State:
    """Where a deployment is. ``since``: when the stage (in PRODUCTION_TRAFFIC_SHIFT: the
    step) began; ``hook``/``hook_since``: the hook awaiting action and since when; ``action``:
    the action ContinueServiceDeployment gave it (consumed by :func:`advance`); ``passed``:
    ``hookId@stage`` of the hooks done; ``stop``: StopServiceDeployment's ``stopType``;
    ``outcome``: "" while it runs, else SUCCESSFUL, ROLLBACK, FAILED or STOPPED."""

    stage: str = STAGES[0]
    step: int = -1
    since: float = 0.0
    hook: str = ""
    hook_since: float = 0.0
    action: str = ""
    passed: tuple[str, ...] = ()
    stop: str = ""
    outcome: str = ""
    reason: str = ""
    triggered: tuple[str, ...] = ()
    ended_at: float | None = None


@dataclass(frozen=True)
class Observed:
    """What the loop saw: green has the desired count of healthy tasks; blue has no live task;
    the deployment's alarms now in ALARM; why Dockyard's canary analysis failed it."""

    now: float
    green_ready: bool = False
    blue_drained: bool = False
    in_alarm: Sequence[str] = ()
    failed_analysis: str = ""  # why the canary analysis failed the new revision ("": it did not)


@dataclass(frozen=True)
class Traffic:
    """Green's share of production traffic (percent) and whether test traffic goes to it."""

    green: float
    test: bool


def _end(state: State, outcome: str, reason: str, now: float, **more: Any) -> State:
    return replace(state, outcome=outcome, reason=reason, hook="", action="", ended_at=now, **more)


def _stage_done(strategy: Strategy, state: State, obs: Observed, minute: float) -> tuple[State, bool]:
    """The state after the stage's own work this pass, and whether that work is done."""
    stage, now = state.stage, obs.now
    if stage == "SCALE_UP":
        return state, obs.green_ready
    if stage == "PRODUCTION_TRAFFIC_SHIFT":
        last = len(strategy.steps()) - 1
        if state.step < 0:
            state = replace(state, step=0, since=now)
        while state.step < last and now - state.since >= strategy.hold(state.step) * minute:
            state = replace(state, step=state.step + 1, since=now)
        return state, state.step == last
    if stage == "BAKE_TIME":
        return state, now - state.since >= strategy.bake * minute
    if stage == "CLEAN_UP":
        return state, obs.blue_drained
    return state, True


def advance(strategy: Strategy, state: State, obs: Observed, minute: float = 60.0) -> State:
    """The next state (see the module docstring); a state with an outcome stays as it is,
    except that a ROLLBACK or STOP request cannot change it."""
    now = obs.now
    for _ in range(4 * len(STAGES)):
        if state.outcome:
            return state
        if obs.failed_analysis:
            return _end(state, "ROLLBACK", obs.failed_analysis, now)
        if state.stop:
            if state.stop == "ROLLBACK":
                why = "Service deployment rolled back by StopServiceDeployment."
                return _end(state, "ROLLBACK", why, now)
            return _end(state, "STOPPED", "Service deployment stopped by StopServiceDeployment.", now)
        alarms = strategy.alarms
        fired = tuple(n for n in alarms.names if n in set(obs.in_alarm))
        if alarms.enable and fired and state.stage != "CLEAN_UP":
            why = f"Alarm(s) {', '.join(fired)} went into ALARM state during the service deployment."
            if alarms.rollback:
                return _end(state, "ROLLBACK", f"{why} Rolling back.", now, triggered=fired)
            return _end(state, "FAILED", why, now, triggered=fired)
        state, done = _stage_done(strategy, state, obs, minute)
        if not done:
            return state
        waiting = next((h for h in strategy.hooks
                        if h.holds(state.stage) and f"{h.id}@{state.stage}" not in state.passed), None)
        if waiting is not None:
            if state.hook != waiting.id:
                state = replace(state, hook=waiting.id, hook_since=now, action="")
            action = state.action
            if not action and now - state.hook_since >= waiting.timeout_minutes * minute:
                action = waiting.timeout_action
            if not action:
                return state
            if action == "ROLLBACK":
                return _end(state, "ROLLBACK", f"Lifecycle hook {waiting.id} asked for a rollback at "
                            f"{state.stage}.", now)
            state = replace(state, hook="", action="", passed=(*state.passed, f"{waiting.id}@{state.stage}"))
            continue
        if state.stage == STAGES[-1]:
            return _end(state, "SUCCESSFUL", "Service deployment completed successfully.", now)
        state = replace(state, stage=STAGES[STAGES.index(state.stage) + 1], since=now, hook="", action="")
    return state


def traffic(strategy: Strategy, state: State) -> Traffic:
    """What the mesh does in ``state``: green's production share and test traffic."""
    if state.outcome == "ROLLBACK":
        return Traffic(0.0, False)
    if state.outcome == "SUCCESSFUL":
        return Traffic(100.0, False)
    at = STAGES.index(state.stage)
    test = at >= STAGES.index("TEST_TRAFFIC_SHIFT")
    if at < STAGES.index("PRODUCTION_TRAFFIC_SHIFT"):
        return Traffic(0.0, test)
    if state.stage == "PRODUCTION_TRAFFIC_SHIFT":
        return Traffic(strategy.steps()[state.step] if state.step >= 0 else 0.0, test)
    return Traffic(100.0, test)


def next_wake(strategy: Strategy, state: State, minute: float = 60.0) -> float | None:
    """When a timer of ``state`` ends (a step's or the bake's, a hook's timeout), None: none."""
    if state.outcome:
        return None
    if state.hook:
        hook = next((h for h in strategy.hooks if h.id == state.hook), None)
        return state.hook_since + hook.timeout_minutes * minute if hook else None
    if state.stage == "PRODUCTION_TRAFFIC_SHIFT" and state.step >= 0:
        return state.since + strategy.hold(state.step) * minute
    if state.stage == "BAKE_TIME":
        return state.since + strategy.bake * minute
    return None


# -- stored forms -----------------------------------------------------------------------------
def strategy_of(config: Mapping[str, Any]) -> Strategy | None:
    """The machine's :class:`Strategy` of a (checked) ``deploymentConfiguration``; None for
    ROLLING."""
    kind = config.get("strategy") or "ROLLING"
    if kind not in SHIFTING:
        return None
    canary = config.get("canaryConfiguration") or {}
    linear = config.get("linearConfiguration") or {}
    hooks = tuple(
        Hook(hook_id(i), tuple(h.get("lifecycleStages") or ()),
             float((h.get("timeoutConfiguration") or {}).get("timeoutInMinutes", _MAX_HOOK_MINUTES)),
             str((h.get("timeoutConfiguration") or {}).get("action", "ROLLBACK")))
        for i, h in enumerate(config.get("lifecycleHooks") or [])
    )
    return Strategy(
        kind,
        canary_percent=float(canary.get("canaryPercent", 10.0)),
        canary_bake=float(canary.get("canaryBakeTimeInMinutes", 10)),
        step_percent=float(linear.get("stepPercent", 10.0)),
        step_bake=float(linear.get("stepBakeTimeInMinutes", 6)),
        bake=float(config.get("bakeTimeInMinutes") or 0),
        hooks=hooks,
        alarms=alarms_of(config),
        analysis=canary_policy(config[CANARY_FIELD]) if config.get(CANARY_FIELD) is not None else None,
    )


def alarms_of(config: Mapping[str, Any]) -> Alarms:
    """The :class:`Alarms` of a (checked) ``deploymentConfiguration``, whatever its strategy."""
    alarms = config.get("alarms") or {}
    return Alarms(tuple(alarms.get("alarmNames") or ()), bool(alarms.get("enable")),
                  bool(alarms.get("rollback")))


def hook_id(index: int) -> str:
    """The ``hookId`` of the ``index``-th hook of ``lifecycleHooks`` (stable for a deployment)."""
    return f"hook-{index + 1}"


_FIELDS = ("stage", "step", "since", "hook", "hook_since", "action", "passed", "stop", "outcome", "reason",
           "triggered", "ended_at")


def state_json(state: State) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in
            ((k, getattr(state, k)) for k in _FIELDS)}


def state_from_json(raw: Mapping[str, Any]) -> State:
    values = {k: raw[k] for k in _FIELDS if k in raw}
    for k in ("passed", "triggered"):
        if k in values:
            values[k] = tuple(values[k])
    return State(**values)

