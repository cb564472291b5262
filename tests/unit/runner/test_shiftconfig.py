"""runner.shiftconfig: the strategy fields of deploymentConfiguration, checked with ECS's error."""

from __future__ import annotations

import pytest

from runner.errors import InvalidParameterException
from runner.shiftconfig import check

GOOD = [
    {"strategy": "ROLLING"},
    {"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.1, "canaryBakeTimeInMinutes": 0}},
    {"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 100, "stepBakeTimeInMinutes": 1440}},
    {"strategy": "BLUE_GREEN", "bakeTimeInMinutes": 5, "lifecycleHooks": [
        {"targetType": "PAUSE", "lifecycleStages": ["RECONCILE_SERVICE", "POST_TEST_TRAFFIC_SHIFT"],
         "timeoutConfiguration": {"timeoutInMinutes": 1440, "action": "CONTINUE"}}]},
    {"strategy": "CANARY", "alarms": {"alarmNames": ["known"], "enable": True, "rollback": True}},
]


@pytest.mark.parametrize("config", GOOD)
def test_configurations_that_fit(config):
    check(config, connect=True, exists=lambda n: n == "known")


BAD = {
    "canary with linear": ({"strategy": "LINEAR", "canaryConfiguration": {}}, "only be used with the CANARY"),
    "linear with canary": ({"strategy": "CANARY", "linearConfiguration": {}}, "only be used with the LINEAR"),
    "linear on rolling": ({"linearConfiguration": {"stepPercent": 5}}, "not ROLLING"),
    "tiny percent": ({"strategy": "CANARY", "canaryConfiguration": {"canaryPercent": 0.01}}, "0.1 to 100"),
    "huge percent": ({"strategy": "LINEAR", "linearConfiguration": {"stepPercent": 100.5}}, "0.1 to 100"),
    "negative bake": ({"strategy": "BLUE_GREEN", "bakeTimeInMinutes": -1}, "0 to 1440"),
    "long step": ({"strategy": "LINEAR", "linearConfiguration": {"stepBakeTimeInMinutes": 1441}},
                  "0 to 1440"),
    "long canary": ({"strategy": "CANARY", "canaryConfiguration": {"canaryBakeTimeInMinutes": 2000}},
                    "0 to 1440"),
    "lambda": ({"strategy": "CANARY", "lifecycleHooks": [{"targetType": "AWS_LAMBDA",
                                                        "lifecycleStages": ["POST_SCALE_UP"]}]}, "no Lambda"),
    "no stage": ({"strategy": "CANARY", "lifecycleHooks": [{"targetType": "PAUSE"}]}, "at least one stage"),
    "bad stage": ({"strategy": "CANARY", "lifecycleHooks": [{"targetType": "PAUSE",
                                                           "lifecycleStages": ["CLEAN_UP"]}]},
                  "cannot run at"),
    "hooks on rolling": ({"lifecycleHooks": [{"targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"]}]},
                         "need a BLUE_GREEN"),
    "hook timeout": ({"strategy": "CANARY", "lifecycleHooks": [{
        "targetType": "PAUSE", "lifecycleStages": ["POST_SCALE_UP"],
        "timeoutConfiguration": {"timeoutInMinutes": 0}}]}, "1 to 1440"),
    "unknown alarm": ({"strategy": "CANARY", "alarms": {"alarmNames": ["known", "nope"], "enable": True,
                                                        "rollback": True}}, "no CloudWatch alarm named nope"),
}


@pytest.mark.parametrize("config,words", BAD.values(), ids=list(BAD))
def test_configurations_that_do_not_fit(config, words):
    with pytest.raises(InvalidParameterException, match=words):
        check(config, connect=True, exists=lambda n: n == "known")


def test_traffic_shifting_needs_service_connect_and_replicas():
    with pytest.raises(InvalidParameterException, match="needs a serviceConnectConfiguration"):
        check({"strategy": "LINEAR"}, connect=False)
    with pytest.raises(InvalidParameterException, match="DAEMON"):
        check({"strategy": "BLUE_GREEN"}, connect=True, scheduling="DAEMON")
    check({"strategy": "ROLLING"}, connect=False)
    check({"strategy": "CANARY"}, connect=False, balanced=True)  # a listener rule to shift instead
