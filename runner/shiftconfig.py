"""The deployment strategy fields of ``deploymentConfiguration``, checked (pure).

:func:`check` takes the merged ``deploymentConfiguration`` of a CreateService or UpdateService
and raises ECS's InvalidParameterException for what does not fit (docs/deployments.md):

* a ``canaryConfiguration`` without ``strategy`` CANARY, a ``linearConfiguration`` without
  LINEAR; ``canaryPercent``/``stepPercent`` outside 0.1-100; ``canaryBakeTimeInMinutes``,
  ``stepBakeTimeInMinutes`` or ``bakeTimeInMinutes`` outside 0-1440 (whole minutes);
* ``lifecycleHooks`` on ROLLING, a hook with no ``lifecycleStages`` or a stage hooks cannot
  have, an ``AWS_LAMBDA`` hook (there is no Lambda in Dockyard: use PAUSE), a hook timeout
  outside 1-1440 minutes;
* Dockyard's ``dockyardCanary`` (docs/canary.md) without CANARY, or with a member that is
  wrong (:func:`runner.canary.policy_of`);
* ``alarms.alarmNames`` naming an alarm that does not exist (``exists``, when given);
* a traffic-shifting strategy on a service without Service Connect (``connect``: the service's
  Service Connect configuration serves at least one ``services[]`` entry) or a DAEMON service.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from runner.canary import FIELD as CANARY_FIELD
from runner.canary import policy_of as canary_policy
from runner.errors import InvalidParameterException
from runner.shift import HOOK_STAGES, SHIFTING

__all__ = ["check"]

MAX_MINUTES = 1440


def _bad(message: str) -> InvalidParameterException:
    return InvalidParameterException(message)


def _percent(raw: Mapping[str, Any], key: str, where: str) -> None:
    value = raw.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 100:
        raise _bad(f"{where}.{key} must be a number from 0.1 to 100.")


def _minutes(raw: Mapping[str, Any], key: str, where: str, low: int = 0) -> None:
    value = raw.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_MINUTES:
        raise _bad(f"{where}.{key} must be a whole number of minutes from {low} to {MAX_MINUTES}.")


def check(
    config: Mapping[str, Any],
    *,
    connect: bool,
    balanced: bool = False,
    scheduling: str = "REPLICA",
    exists: Callable[[str], bool] | None = None,
) -> None:
    """Raise InvalidParameterException when the strategy fields of ``config`` do not fit (see
    the module docstring)."""
    where = "deploymentConfiguration"
    strategy = config.get("strategy") or "ROLLING"
    for key, owner in (("canaryConfiguration", "CANARY"), ("linearConfiguration", "LINEAR")):
        raw = config.get(key)
        if raw is None:
            continue
        if strategy != owner:
            raise _bad(f"{where}.{key} can only be used with the {owner} deployment strategy, "
                       f"not {strategy}.")
        if not isinstance(raw, dict):
            raise _bad(f"{where}.{key} must be an object.")
    if config.get(CANARY_FIELD) is not None:
        if strategy != "CANARY":
            raise _bad(f"{where}.{CANARY_FIELD} can only be used with the CANARY deployment strategy, "
                       f"not {strategy}.")
        try:
            canary_policy(config[CANARY_FIELD])
        except ValueError as e:
            raise _bad(str(e)) from None
    canary = config.get("canaryConfiguration") or {}
    linear = config.get("linearConfiguration") or {}
    _percent(canary, "canaryPercent", f"{where}.canaryConfiguration")
    _minutes(canary, "canaryBakeTimeInMinutes", f"{where}.canaryConfiguration")
    _percent(linear, "stepPercent", f"{where}.linearConfiguration")
    _minutes(linear, "stepBakeTimeInMinutes", f"{where}.linearConfiguration")
    _minutes(config, "bakeTimeInMinutes", where)
    hooks = config.get("lifecycleHooks") or []
    if hooks and strategy not in SHIFTING:
        raise _bad(f"{where}.lifecycleHooks need a BLUE_GREEN, LINEAR or CANARY deployment strategy.")
    for i, hook in enumerate(hooks):
        at = f"{where}.lifecycleHooks[{i}]"
        if hook.get("targetType") == "AWS_LAMBDA":
            raise _bad(f"{at}: AWS_LAMBDA lifecycle hooks are not supported: Dockyard has no Lambda. "
                       "Use targetType PAUSE and ContinueServiceDeployment.")
        if hook.get("targetType") != "PAUSE":
            raise _bad(f"{at}.targetType must be PAUSE.")
        stages = hook.get("lifecycleStages") or []
        if not stages:
            raise _bad(f"{at}.lifecycleStages must name at least one stage.")
        for stage in stages:
            if stage not in HOOK_STAGES:
                raise _bad(f"{at}.lifecycleStages: a lifecycle hook cannot run at {stage}; it can at "
                           f"{', '.join(HOOK_STAGES)}.")
        _minutes(hook.get("timeoutConfiguration") or {}, "timeoutInMinutes", f"{at}.timeoutConfiguration", 1)
    alarms = config.get("alarms")
    if alarms is not None and exists is not None:
        unknown = [n for n in alarms.get("alarmNames") or [] if not exists(n)]
        if unknown:
            raise _bad(f"{where}.alarms.alarmNames: no CloudWatch alarm named {', '.join(unknown)}.")
    if strategy in SHIFTING:
        if scheduling == "DAEMON":
            raise _bad(f"The {strategy} deployment strategy cannot be used with the DAEMON scheduling "
                       "strategy.")
        if not connect and not balanced:
            raise _bad(f"The {strategy} deployment strategy shifts traffic through Service Connect or a "
                       "load balancer: the service needs a serviceConnectConfiguration with at least one "
                       "services[] entry, or a loadBalancers entry with an advancedConfiguration.")
