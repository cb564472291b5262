"""CloudWatch's metric alarms on the control port: PutMetricAlarm, DescribeAlarms,
DeleteAlarms, SetAlarmState, DescribeAlarmHistory, evaluated every
``alarm_evaluation_interval`` seconds over the metric store.

An alarm watches one metric (``Namespace``/``MetricName``/``Dimensions``/``Period``/
``Statistic`` or ``ExtendedStatistic``) or a metric-math ``Metrics`` list (the one query with
``ReturnData`` true is judged). :meth:`Alarms.evaluate` reads the newest ``EvaluationPeriods``
whole periods and lets :func:`mesh.telemetry.alarms_eval.judge` decide; a state change is
kept in the alarm's history (the newest 100 items of each alarm) and handed to every
subscriber: the seam deployments consume (:class:`mesh.seams.Alarms`): ``state(name)``,
``evaluation_seconds(name)`` and ``subscribe()``, an ``asyncio.Queue`` of :class:`StateChange`.

Alarms live in memory (not across a restart; docs/telemetry.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dockyard.aws.errors import AwsError
from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.telemetry import alarms_eval
from mesh.telemetry.cloudwatch import PERCENTILE, STATISTICS, Metrics, check_period, metric_key, series
from mesh.telemetry.cloudwatch_errors import (
    InvalidFormat,
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    LimitExceeded,
    MissingParameter,
    ResourceNotFound,
)

__all__ = ["Alarm", "Alarms", "Firing", "StateChange"]

log = logging.getLogger("dockyard.mesh")

MAX_ALARMS = 5000
MAX_HISTORY = 100
STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


@dataclass(frozen=True)
class StateChange:
    """An alarm that changed state (what a deployment waits for)."""

    name: str
    old: str
    new: str
    reason: str
    at: float


@dataclass(frozen=True)
class Firing:
    """An alarm in ALARM that names an action (``mesh.seams.AlarmFiring``)."""

    name: str
    threshold: float
    datapoints: tuple[float, ...]


@dataclass
class Alarm:
    name: str
    arn: str
    spec: dict[str, Any]  # PutMetricAlarm's parameters as given
    state: str = "INSUFFICIENT_DATA"
    reason: str = "Unchecked: Initial alarm creation"
    reason_data: str = ""
    state_updated: float = 0.0
    updated: float = 0.0
    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))
    points: tuple[float, ...] = ()  # the datapoints the last evaluation judged (None left out)

    @property
    def period(self) -> int:
        if self.spec.get("Metrics"):
            return int(
                next(q for q in self.spec["Metrics"] if q.get("ReturnData", True) is not False).get("Period")
                or _stat_period(self.spec["Metrics"])
            )
        return int(self.spec["Period"])


def _stat_period(queries: list[dict[str, Any]]) -> int:
    return min(int(q["MetricStat"]["Period"]) for q in queries if q.get("MetricStat"))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class Alarms:
    """The alarms of one platform, judged over ``metrics``' store."""

    def __init__(
        self, metrics: Metrics, region: str, account: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.metrics = metrics
        self.region = region
        self.account = account
        self.clock = clock
        self.alarms: dict[str, Alarm] = {}
        self._subscribers: set[asyncio.Queue[StateChange]] = set()

    # --- the seam (mesh.seams.Alarms) ---------------------------------------------------

    def state(self, name: str) -> str | None:
        """The alarm's state, None when there is no such alarm."""
        alarm = self.alarms.get(name)
        return alarm.state if alarm else None

    def evaluation_seconds(self, name: str) -> float | None:
        """``(EvaluationPeriods + 1) * Period`` of the alarm (the periods it judges, and the one
        a breach fills first), None when there is no such alarm."""
        alarm = self.alarms.get(name)
        return float(alarm.period * (int(alarm.spec["EvaluationPeriods"]) + 1)) if alarm else None

    def firing(self, action: str) -> list[Firing]:
        """The alarms in ALARM with actions enabled whose ``AlarmActions`` name ``action``
        (CloudWatch invokes an Application Auto Scaling action as long as its alarm stays in
        ALARM; the policy's cooldown paces it)."""
        return [Firing(a.name, float(a.spec["Threshold"]), a.points) for a in self.alarms.values()
                if a.state == "ALARM" and a.spec.get("ActionsEnabled", True) is not False
                and action in (a.spec.get("AlarmActions") or [])]

    def subscribe(self) -> asyncio.Queue[StateChange]:
        """A queue that receives every state change from now on (bounded: the oldest are
        dropped when a subscriber does not read); :meth:`unsubscribe` it when done."""
        queue: asyncio.Queue[StateChange] = asyncio.Queue(maxsize=1000)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[StateChange]) -> None:
        self._subscribers.discard(queue)

    # --- state ---------------------------------------------------------------------------

    def _set(self, alarm: Alarm, state: str, reason: str, data: dict[str, Any] | None = None,
             now: float | None = None) -> None:
        now = self.clock() if now is None else now
        old = alarm.state
        alarm.state, alarm.reason, alarm.state_updated = state, reason, now
        alarm.reason_data = json.dumps(data) if data else ""
        summary = f"Alarm updated from {old} to {state}"
        alarm.history.append(
            {
                "AlarmName": alarm.name,
                "AlarmType": "MetricAlarm",
                "Timestamp": now,
                "HistoryItemType": "StateUpdate",
                "HistorySummary": summary,
                "HistoryData": json.dumps(
                    {
                        "version": "1.0",
                        "oldState": {"stateValue": old},
                        "newState": {"stateValue": state, "stateReason": reason},
                    }
                ),
            }
        )
        change = StateChange(alarm.name, old, state, reason, now)
        log.info("alarm state change",
                 extra={"alarm": alarm.name, "old": old, "new": state, "reason": reason})
        for q in list(self._subscribers):
            if q.full():
                q.get_nowait()
            q.put_nowait(change)

    def evaluate(self, now: float | None = None) -> list[StateChange]:
        """Judge every alarm over its newest whole periods; the state changes made."""
        now = self.clock() if now is None else now
        changes = []
        for alarm in list(self.alarms.values()):
            old = alarm.state
            try:
                points = self.datapoints(alarm, now)
            except AwsError as e:  # metric math that fails on this data: this alarm only
                log.warning("alarm not evaluated", extra={"alarm": alarm.name, "error": e.message})
                continue
            alarm.points = tuple(p for p in points if p is not None)
            s = alarm.spec
            n = int(s["EvaluationPeriods"])
            verdict = alarms_eval.judge(
                points,
                s["ComparisonOperator"],
                float(s["Threshold"]),
                int(s.get("DatapointsToAlarm") or n),
                s.get("TreatMissingData") or "missing",
                current=old,
            )
            if verdict.state != old:
                self._set(
                    alarm,
                    verdict.state,
                    verdict.reason,
                    {
                        "version": "1.0",
                        "queryDate": _iso(now),
                        "recentDatapoints": [p for p in points if p is not None],
                        "threshold": float(s["Threshold"]),
                    },
                    now,
                )
                changes.append(StateChange(alarm.name, old, verdict.state, verdict.reason, now))
        return changes

    def datapoints(self, alarm: Alarm, now: float) -> list[float | None]:
        """The alarm's value in each of its newest ``EvaluationPeriods`` whole periods (None: no
        data), oldest first."""
        period = alarm.period
        n = int(alarm.spec["EvaluationPeriods"])
        end = int(now // period * period)
        start = end - n * period
        s = alarm.spec
        if s.get("Metrics"):
            results = self.metrics.query(s["Metrics"], start, end)
            values = dict(zip(results[0]["Timestamps"], results[0]["Values"], strict=True)) if results else {}
        else:
            stat = s.get("Statistic") or s.get("ExtendedStatistic")
            values = series(self.metrics.store, metric_key(s), start, end, period, stat)
        return [
            values.get(t) if not isinstance(values.get(t), float) or math.isfinite(values[t]) else None
            for t in range(start, end, period)
        ]

    # --- operations ---------------------------------------------------------------------

    async def put_metric_alarm(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        self.put(params)
        return {}

    def put(self, params: dict[str, Any]) -> Alarm:
        """Check and keep ``PutMetricAlarm``'s parameters (a new alarm or an update)."""
        name = params.get("AlarmName") or ""
        if not name:
            raise MissingParameter("The parameter AlarmName is required.")
        single = [
            f
            for f in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Period", "Dimensions")
            if params.get(f) is not None
        ]
        if params.get("Metrics"):
            if single:
                raise InvalidParameterCombination(
                    f"The parameters Metrics and {single[0]} are mutually exclusive."
                )
            queries = params["Metrics"]
            returned = [q for q in queries if q.get("ReturnData", True) is not False]
            if len(returned) != 1:
                raise InvalidParameterValue("Exactly one element of the Metrics list must return data.")
            for q in queries:
                if q.get("MetricStat"):
                    check_period(q["MetricStat"].get("Period"), "Metrics.MetricStat.Period")
            self.metrics.query(queries, 0.0, 10.0)  # GetMetricData's parse and checks
        else:
            for f in ("MetricName", "Namespace", "Period"):
                if params.get(f) is None:
                    raise MissingParameter(f"The parameter {f} is required.")
            if (params.get("Statistic") is None) == (params.get("ExtendedStatistic") is None):
                raise InvalidParameterCombination(
                    "Exactly one of Statistic and ExtendedStatistic is required."
                )
            if params.get("Statistic") is not None and params["Statistic"] not in STATISTICS:
                raise InvalidParameterValue(
                    f"The value {params['Statistic']} for parameter Statistic is invalid."
                )
            ext = params.get("ExtendedStatistic")
            if ext is not None and not PERCENTILE.match(ext):
                raise InvalidParameterValue(f"The value {ext} for parameter ExtendedStatistic is invalid.")
            period = check_period(params["Period"])
            if period < 60 and period not in (10, 30):
                raise InvalidParameterValue(
                    "The parameter Period of an alarm must be 10, 30 or a multiple of 60."
                )
        if params.get("EvaluationPeriods") is None or params.get("ComparisonOperator") is None:
            raise MissingParameter("The parameters EvaluationPeriods and ComparisonOperator are required.")
        if params["ComparisonOperator"] not in alarms_eval.COMPARISONS:
            raise InvalidParameterValue(
                f"The value {params['ComparisonOperator']} for parameter "
                "ComparisonOperator is not supported here."
            )
        if params.get("Threshold") is None:
            raise MissingParameter("The parameter Threshold is required.")
        n = params["EvaluationPeriods"]
        m = params.get("DatapointsToAlarm") or n
        if not 1 <= m <= n:
            raise InvalidParameterValue("DatapointsToAlarm must be between 1 and EvaluationPeriods.")
        treat = params.get("TreatMissingData") or "missing"
        if treat not in alarms_eval.TREAT_MISSING:
            raise InvalidParameterValue(f"The value {treat} for parameter TreatMissingData is invalid.")
        alarm = self.alarms.get(name)
        now = self.clock()
        if alarm is None:
            if len(self.alarms) >= MAX_ALARMS:
                raise LimitExceeded(f"The maximum number of alarms ({MAX_ALARMS}) is reached.")
            alarm = Alarm(
                name,
                f"arn:aws:cloudwatch:{self.region}:{self.account}:alarm:{name}",
                dict(params),
                state_updated=now,
                updated=now,
            )
            self.alarms[name] = alarm
            kind = "created"
        else:
            alarm.spec, alarm.updated = dict(params), now
            kind = "updated"
        alarm.history.append(
            {
                "AlarmName": name,
                "AlarmType": "MetricAlarm",
                "Timestamp": now,
                "HistoryItemType": "ConfigurationUpdate",
                "HistorySummary": f'Alarm "{name}" {kind}',
                "HistoryData": json.dumps({"type": "Update", "version": "1.0"}),
            }
        )
        return alarm

    def _describe(self, alarm: Alarm) -> dict[str, Any]:
        s = alarm.spec
        out: dict[str, Any] = {
            "AlarmName": alarm.name,
            "AlarmArn": alarm.arn,
            "AlarmDescription": s.get("AlarmDescription", ""),
            "AlarmConfigurationUpdatedTimestamp": alarm.updated,
            "ActionsEnabled": s.get("ActionsEnabled", True),
            "OKActions": s.get("OKActions") or [],
            "AlarmActions": s.get("AlarmActions") or [],
            "InsufficientDataActions": s.get("InsufficientDataActions") or [],
            "StateValue": alarm.state,
            "StateReason": alarm.reason,
            "StateUpdatedTimestamp": alarm.state_updated,
            "StateTransitionedTimestamp": alarm.state_updated,
            "EvaluationPeriods": s["EvaluationPeriods"],
            "DatapointsToAlarm": s.get("DatapointsToAlarm") or s["EvaluationPeriods"],
            "Threshold": s["Threshold"],
            "ComparisonOperator": s["ComparisonOperator"],
            "TreatMissingData": s.get("TreatMissingData") or "missing",
        }
        if alarm.reason_data:
            out["StateReasonData"] = alarm.reason_data
        for f in ("MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Period", "Unit", "Metrics"):
            if s.get(f) is not None:
                out[f] = s[f]
        out["Dimensions"] = s.get("Dimensions") or []
        return out

    async def describe_alarms(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("AlarmNames") or []
        prefix = params.get("AlarmNamePrefix")
        if names and prefix:
            raise InvalidParameterCombination(
                "The parameters AlarmNames and AlarmNamePrefix are mutually exclusive."
            )
        state = params.get("StateValue")
        types = params.get("AlarmTypes")
        chosen = []
        for a in sorted(self.alarms.values(), key=lambda a: a.name):
            if (names and a.name not in names) or (prefix and not a.name.startswith(prefix)):
                continue
            if state and a.state != state:
                continue
            chosen.append(self._describe(a))
        if types and "MetricAlarm" not in types:
            chosen = []
        chunk, token = page(
            chosen,
            params,
            InvalidNextToken,
            default=50,
            maximum=100,
            token_key="NextToken",
            max_key="MaxRecords",
        )
        out: dict[str, Any] = {"MetricAlarms": chunk, "CompositeAlarms": []}
        if token:
            out["NextToken"] = token
        return out

    async def delete_alarms(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        names = params.get("AlarmNames") or []
        missing = [n for n in names if n not in self.alarms]
        if missing:
            raise ResourceNotFound(f"{len(missing)} of {len(names)} alarms not found: {', '.join(missing)}.")
        for n in names:
            del self.alarms[n]
        return {}

    async def set_alarm_state(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        alarm = self.alarms.get(params.get("AlarmName", ""))
        if alarm is None:
            raise ResourceNotFound(f"Alarm {params.get('AlarmName')} not found.")
        data = params.get("StateReasonData")
        parsed = None
        if data:
            try:
                parsed = json.loads(data)
            except ValueError:
                raise InvalidFormat("The parameter StateReasonData is not valid JSON.") from None
        if params["StateValue"] != alarm.state:
            self._set(alarm, params["StateValue"], params["StateReason"], parsed)
        else:
            alarm.reason = params["StateReason"]
        return {}

    async def describe_alarm_history(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        name = params.get("AlarmName")
        kind = params.get("HistoryItemType")
        start, end = params.get("StartDate"), params.get("EndDate")
        items = [
            h
            for a in self.alarms.values()
            if not name or a.name == name
            for h in a.history
            if (not kind or h["HistoryItemType"] == kind)
            and (start is None or h["Timestamp"] >= start)
            and (end is None or h["Timestamp"] <= end)
        ]
        items.sort(key=lambda h: h["Timestamp"], reverse=params.get("ScanBy") != "TimestampAscending")
        chunk, token = page(
            items,
            params,
            InvalidNextToken,
            default=100,
            maximum=100,
            token_key="NextToken",
            max_key="MaxRecords",
        )
        out: dict[str, Any] = {"AlarmHistoryItems": chunk}
        if token:
            out["NextToken"] = token
        return out

    def operations(self) -> dict[str, Handler]:
        return {
            "PutMetricAlarm": self.put_metric_alarm,
            "DescribeAlarms": self.describe_alarms,
            "DeleteAlarms": self.delete_alarms,
            "SetAlarmState": self.set_alarm_state,
            "DescribeAlarmHistory": self.describe_alarm_history,
        }
