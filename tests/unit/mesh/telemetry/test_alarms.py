"""Alarms over a metric store with a given clock (``mesh.telemetry.alarms``): continuous
evaluation, state changes handed to subscribers (the ``mesh.seams.Alarms`` seam) and kept in
the history, metric-math alarms, and PutMetricAlarm's checks."""

from __future__ import annotations

import json

import pytest

from mesh.telemetry.alarms import Alarms
from mesh.telemetry.cloudwatch import Metrics
from mesh.telemetry.cloudwatch_errors import InvalidParameterCombination, InvalidParameterValue
from mesh.telemetry.metrics_store import Store, key

DIMS = [{"Name": "DiscoveryName", "Value": "web"}]


def setup() -> tuple[Store, Alarms]:
    store = Store()
    return store, Alarms(Metrics(store), "us-east-1", "000000000000", clock=lambda: 0.0)


def errors(store: Store, ts: float, value: float, name: str = "HTTPCode_Target_5XX_Count") -> None:
    store.bucket(key("AWS/ECS", name, {"DiscoveryName": "web"}), ts).add_stats(1, value, value, value)


def alarm(**extra) -> dict:
    return {"AlarmName": "web-5xx", "Namespace": "AWS/ECS", "MetricName": "HTTPCode_Target_5XX_Count",
            "Dimensions": DIMS, "Statistic": "Sum", "Period": 10, "EvaluationPeriods": 2,
            "DatapointsToAlarm": 1, "Threshold": 0.0, "ComparisonOperator": "GreaterThanThreshold",
            "TreatMissingData": "notBreaching", **extra}


async def test_an_alarm_fires_on_a_breaching_period_and_clears_after_it():
    store, alarms = setup()
    alarms.put(alarm())
    queue = alarms.subscribe()
    errors(store, 1000, 0)
    assert [c.new for c in alarms.evaluate(1020)] == ["OK"]
    errors(store, 1020, 3)
    assert [(c.old, c.new) for c in alarms.evaluate(1030)] == [("OK", "ALARM")]
    assert alarms.state("web-5xx") == "ALARM" and alarms.evaluate(1035) == []
    errors(store, 1030, 0)
    errors(store, 1040, 0)
    assert [c.new for c in alarms.evaluate(1050)] == ["OK"]  # both periods of the range clean
    assert [queue.get_nowait().new for _ in range(queue.qsize())] == ["OK", "ALARM", "OK"]
    alarms.unsubscribe(queue)
    history = await alarms.describe_alarm_history(None, {"AlarmName": "web-5xx",  # type: ignore[arg-type]
                                                         "HistoryItemType": "StateUpdate"})
    newest = json.loads(history["AlarmHistoryItems"][0]["HistoryData"])
    assert newest["oldState"]["stateValue"] == "ALARM" and newest["newState"]["stateValue"] == "OK"
    assert alarms.state("nope") is None


def test_a_metric_math_alarm_judges_the_error_rate():
    store, alarms = setup()
    stat = {"Metric": {"Namespace": "AWS/ECS", "MetricName": "", "Dimensions": DIMS},
            "Period": 10, "Stat": "Sum"}
    queries = [{"Id": "e", "ReturnData": False, "MetricStat": {
                   **stat, "Metric": {**stat["Metric"], "MetricName": "HTTPCode_Target_5XX_Count"}}},
               {"Id": "r", "ReturnData": False, "MetricStat": {
                   **stat, "Metric": {**stat["Metric"], "MetricName": "RequestCount"}}},
               {"Id": "rate", "Expression": "100 * e / r"}]
    spec = alarm(Metrics=queries, Threshold=10.0, EvaluationPeriods=1)
    for f in ("Namespace", "MetricName", "Dimensions", "Statistic", "Period"):
        spec.pop(f)
    alarms.put(spec)
    errors(store, 1000, 5)
    errors(store, 1000, 100, "RequestCount")  # 5 %
    assert alarms.evaluate(1010)[0].new == "OK"
    errors(store, 1010, 20)
    errors(store, 1010, 100, "RequestCount")  # 20 %
    assert alarms.evaluate(1020)[0].new == "ALARM"


@pytest.mark.parametrize(("change", "error"), [
    ({"Period": 5}, InvalidParameterValue),
    ({"Statistic": "Median"}, InvalidParameterValue),
    ({"ExtendedStatistic": "p99"}, InvalidParameterCombination),
    ({"DatapointsToAlarm": 3}, InvalidParameterValue),
    ({"TreatMissingData": "sometimes"}, InvalidParameterValue),
    ({"Metrics": [{"Id": "m", "Expression": "1 +"}]}, InvalidParameterCombination),
])
def test_put_metric_alarm_refuses_what_cloudwatch_refuses(change, error):
    _, alarms = setup()
    with pytest.raises(error):
        alarms.put(alarm(**change))


def test_an_alarm_in_alarm_names_its_actions_with_the_datapoints_it_judged():
    store, alarms = setup()
    policy = ("arn:aws:autoscaling:us-east-1:000000000000:scalingPolicy:x:resource/ecs/service/c/web:"
              "policyName/p")
    alarms.put(alarm(AlarmActions=[policy]))
    alarms.put(alarm(AlarmName="muted", AlarmActions=[policy], ActionsEnabled=False))
    assert alarms.evaluation_seconds("web-5xx") == 30.0 and alarms.evaluation_seconds("nope") is None
    errors(store, 1010, 2)
    errors(store, 1020, 5)
    alarms.evaluate(1030)
    [firing] = alarms.firing(policy)
    assert (firing.name, firing.threshold, firing.datapoints) == ("web-5xx", 0.0, (2.0, 5.0))
    assert alarms.firing("arn:aws:sns:us-east-1:000000000000:other") == []
    errors(store, 1030, 0)
    errors(store, 1040, 0)
    alarms.evaluate(1050)
    assert alarms.firing(policy) == []  # back to OK: nothing invoked
