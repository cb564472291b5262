"""CloudWatch's metrics API on the control port (target ``GraniteServiceVersion20100801``,
served in RPC v2 CBOR as the pinned CLI sends it, and in AWS JSON 1.0): GetMetricData,
GetMetricStatistics, ListMetrics, PutMetricData over the :class:`~mesh.telemetry.metrics_store.Store`
the sidecars' stats go to. The alarm operations are in :mod:`mesh.telemetry.alarms`.

The checks CloudWatch makes beyond the model: a ``Period`` of 1, 5, 10, 30 or a multiple of 60
(:func:`check_period`), ``StartTime`` before ``EndTime``, at most 1,440 datapoints per
GetMetricStatistics, 500 queries per GetMetricData, ids that start with a lower-case letter,
exactly one of ``MetricStat``/``Expression`` per query, ``Value``/``Values``/``StatisticValues``
not mixed, no ``AWS/`` namespace in PutMetricData. :func:`query` is the pure core of both reads.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from typing import Any

from dockyard.aws.paging import page
from dockyard.aws.protocol import Call, Handler
from mesh.telemetry import metrics_math
from mesh.telemetry.cloudwatch_errors import (
    InvalidNextToken,
    InvalidParameterCombination,
    InvalidParameterValue,
    LimitExceeded,
    MissingParameter,
)
from mesh.telemetry.metrics_store import Agg, Key, Store, key, merged, statistic

__all__ = ["TARGET", "Metrics", "check_period", "metric_key", "series"]

TARGET = "GraniteServiceVersion20100801"
STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d{1,2})?|100)$")
_ID = re.compile(r"^[a-z][a-zA-Z0-9_]*$")
MAX_QUERIES = 500
MAX_DATAPOINTS = 1440


def check_period(period: Any, name: str = "Period") -> int:
    """A CloudWatch period: 1, 5, 10, 30 or a multiple of 60 (InvalidParameterValue)."""
    if (
        not isinstance(period, int)
        or isinstance(period, bool)
        or period <= 0
        or (period not in (1, 5, 10, 30) and period % 60)
    ):
        raise InvalidParameterValue(f"The parameter {name} must be 1, 5, 10, 30 or a multiple of 60.")
    return period


def check_stat(stat: Any) -> str:
    if isinstance(stat, str) and (stat in STATISTICS or PERCENTILE.match(stat)):
        return stat
    raise InvalidParameterValue(f"The value {stat} for parameter Stat is not a supported statistic.")


def metric_key(metric: Mapping[str, Any]) -> Key:
    dims = {d.get("Name", ""): d.get("Value", "") for d in metric.get("Dimensions") or []}
    return key(metric.get("Namespace", ""), metric.get("MetricName", ""), dims)


def _time(value: Any, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise InvalidParameterValue(f"The parameter {name} must be a timestamp.")


def series(store: Store, k: Key, start: float, end: float, period: int, stat: str) -> dict[int, float]:
    """``stat`` of series ``k`` per ``period`` in ``[start, end)``, the periods with data only."""
    out: dict[int, float] = {}
    for t, agg in store.periods(k, start, end, period):
        v = statistic(agg, stat)
        if v is not None:
            out[t] = v
    return out


def _dims(k: Key) -> list[dict[str, str]]:
    return [{"Name": n, "Value": v} for n, v in k[2]]


class Metrics:
    """The metric operations over one store (``clock`` says now)."""

    def __init__(self, store: Store, clock: Any = time.time) -> None:
        self.store = store
        self.clock = clock

    # --- writes -------------------------------------------------------------------------

    async def put_metric_data(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        self.put(params)
        return {}

    def put(self, params: Mapping[str, Any]) -> None:
        namespace = params.get("Namespace") or ""
        if not namespace:
            raise MissingParameter("The parameter Namespace is required.")
        if namespace.startswith("AWS/"):
            raise InvalidParameterValue(
                f"The value {namespace} for parameter Namespace is invalid: "
                "the AWS/ namespaces are reserved for AWS's own metrics."
            )
        data = params.get("MetricData") or []
        if not data:
            raise MissingParameter("The parameter MetricData is required.")
        now = self.clock()
        checked = []
        for i, d in enumerate(data, 1):
            where = f"MetricData.member.{i}"
            given = [f for f in ("Value", "Values", "StatisticValues") if d.get(f) is not None]
            if len(given) > 1:
                raise InvalidParameterCombination(
                    f"The parameters {where}.{given[0]} and {where}.{given[1]} "
                    "are mutually exclusive and you have specified both."
                )
            if not given:
                raise MissingParameter(f"The parameter {where}.Value is required.")
            ts = _time(d["Timestamp"], f"{where}.Timestamp") if d.get("Timestamp") is not None else now
            if ts < now - 14 * 86400 or ts > now + 2 * 3600:
                raise InvalidParameterValue(
                    f"The parameter {where}.Timestamp must be within the last two "
                    "weeks and at most two hours in the future."
                )
            for v in [d.get("Value")] if d.get("Value") is not None else d.get("Values") or []:
                if not math.isfinite(v):
                    raise InvalidParameterValue(f"The value {v} for parameter {where}.Value is invalid.")
            counts = d.get("Counts")
            if counts is not None and len(counts) != len(d.get("Values") or []):
                raise InvalidParameterValue(
                    f"The parameters {where}.Values and {where}.Counts must have the same number of members."
                )
            sv = d.get("StatisticValues")
            if sv is not None and (sv["SampleCount"] <= 0 or sv["Minimum"] > sv["Maximum"]):
                raise InvalidParameterValue(f"The parameter {where}.StatisticValues is invalid.")
            checked.append((ts, d))
        for ts, d in checked:
            agg = self.store.bucket(metric_key({**d, "Namespace": namespace}), ts)
            if d.get("Unit"):
                agg.unit = d["Unit"]
            if d.get("Value") is not None:
                agg.add(float(d["Value"]))
            elif d.get("Values") is not None:
                for v, c in zip(d["Values"], d.get("Counts") or [1.0] * len(d["Values"]), strict=True):
                    agg.add(float(v), float(c))
            else:
                sv = d["StatisticValues"]
                agg.add_stats(sv["SampleCount"], sv["Sum"], sv["Minimum"], sv["Maximum"])

    # --- reads --------------------------------------------------------------------------

    def _range(self, params: Mapping[str, Any]) -> tuple[float, float]:
        start, end = _time(params.get("StartTime"), "StartTime"), _time(params.get("EndTime"), "EndTime")
        if start >= end:
            raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")
        return start, end

    async def get_metric_statistics(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        start, end = self._range(params)
        period = check_period(params.get("Period"))
        stats = list(params.get("Statistics") or [])
        extended = list(params.get("ExtendedStatistics") or [])
        if not stats and not extended:
            raise MissingParameter("The parameter Statistics or ExtendedStatistics is required.")
        for s in stats:
            if s not in STATISTICS:
                raise InvalidParameterValue(
                    f"The value {s} for parameter Statistics is not a valid statistic."
                )
        for s in extended:
            if not PERCENTILE.match(s):
                raise InvalidParameterValue(
                    f"The value {s} for parameter ExtendedStatistics is not a valid percentile."
                )
        if (end - start) / period > MAX_DATAPOINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {math.ceil((end - start) / period)} "
                f"datapoints, which exceeds the limit of {MAX_DATAPOINTS}."
            )
        k = metric_key(params)
        unit = params.get("Unit")
        points = []
        for t, agg in self.store.periods(k, start, end, period):
            if unit and agg.unit != unit:
                continue
            p: dict[str, Any] = {"Timestamp": float(t), "Unit": agg.unit}
            for s in stats:
                p[s] = statistic(agg, s)
            if extended:
                p["ExtendedStatistics"] = {s: v for s in extended if (v := statistic(agg, s)) is not None}
            points.append(p)
        return {"Label": params.get("MetricName", ""), "Datapoints": points}

    async def get_metric_data(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        start, end = self._range(params)
        queries = params.get("MetricDataQueries") or []
        if not queries:
            raise MissingParameter("The parameter MetricDataQueries is required.")
        if len(queries) > MAX_QUERIES:
            raise LimitExceeded(
                f"The collection MetricDataQueries must not have a size greater than {MAX_QUERIES}."
            )
        results = self.query(queries, start, end)
        if params.get("ScanBy", "TimestampDescending") == "TimestampDescending":
            for r in results:
                r["Timestamps"].reverse()
                r["Values"].reverse()
        limit = params.get("MaxDatapoints", 100_800)
        total = 0
        for r in results:
            keep = max(0, limit - total)
            r["Timestamps"], r["Values"] = r["Timestamps"][:keep], r["Values"][:keep]
            total += len(r["Values"])
        if params.get("NextToken"):
            raise InvalidNextToken("The NextToken is not valid: every result fits one page here.")
        return {"MetricDataResults": results, "Messages": []}

    def query(self, queries: list[Mapping[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
        """The MetricDataQueries' results (ReturnData ones), oldest first (pure over the store)."""
        values: dict[str, dict[int, float]] = {}
        labels: dict[str, str] = {}
        expressions: list[tuple[str, metrics_math.Node]] = []
        ids: list[str] = []
        for q in queries:
            qid = q.get("Id", "")
            if not _ID.match(qid):
                raise InvalidParameterValue(
                    f"The value {qid} for parameter MetricDataQueries.Id is invalid: "
                    "an id starts with a lower-case letter and holds letters, digits "
                    "and underscores."
                )
            if qid in values or qid in dict(expressions):
                raise InvalidParameterValue(
                    f"The value {qid} for parameter MetricDataQueries.Id is not unique."
                )
            has_stat, has_expr = q.get("MetricStat") is not None, q.get("Expression") is not None
            if has_stat == has_expr:
                raise InvalidParameterCombination(
                    f"The query {qid} needs exactly one of MetricStat and Expression."
                )
            ids.append(qid)
            if has_stat:
                ms = q["MetricStat"]
                period = check_period(ms.get("Period"), "MetricStat.Period")
                stat = check_stat(ms.get("Stat"))
                values[qid] = series(self.store, metric_key(ms.get("Metric") or {}), start, end, period, stat)
                labels[qid] = q.get("Label") or (ms.get("Metric") or {}).get("MetricName", qid)
            else:
                try:
                    expressions.append((qid, metrics_math.parse(q["Expression"])))
                except metrics_math.MathError as e:
                    raise InvalidParameterValue(f"Error in expression {qid}: {e}") from None
                labels[qid] = q.get("Label") or qid
        metric_ids = dict(labels)
        for e in expressions:
            metric_ids.pop(e[0], None)
        pending = dict(expressions)
        while pending:  # expressions may use each other: evaluate in dependency order
            ready = [i for i, n in pending.items() if not (metrics_math.references(n) & pending.keys())]
            if not ready:
                raise InvalidParameterValue("The expressions refer to each other in a cycle.")
            for i in ready:
                try:
                    v = metrics_math.evaluate(pending.pop(i), values, metric_ids)
                except metrics_math.MathError as e:
                    raise InvalidParameterValue(f"Error in expression {i}: {e}") from None
                if isinstance(v, list):
                    if len(v) != 1:
                        raise InvalidParameterValue(
                            f"Error in expression {i}: it returns {len(v)} time series; a query returns one."
                        )
                    v = v[0]
                values[i] = v if isinstance(v, dict) else {int(start): float(v)}
        out = []
        for q in queries:
            if q.get("ReturnData", True) is False:
                continue
            s = values[q["Id"]]
            ts = sorted(s)
            out.append(
                {
                    "Id": q["Id"],
                    "Label": labels[q["Id"]],
                    "Timestamps": [float(t) for t in ts],
                    "Values": [s[t] for t in ts],
                    "StatusCode": "Complete",
                }
            )
        return out

    async def list_metrics(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        namespace, name = params.get("Namespace"), params.get("MetricName")
        filters = params.get("Dimensions") or []
        recent = params.get("RecentlyActive")
        if recent is not None and recent != "PT3H":
            raise InvalidParameterValue(f"The value {recent} for parameter RecentlyActive is invalid.")
        out = []
        for k in sorted(self.store.keys()):
            if (namespace and k[0] != namespace) or (name and k[1] != name):
                continue
            dims = dict(k[2])
            if any(
                f.get("Name") not in dims or ("Value" in f and dims[f["Name"]] != f["Value"]) for f in filters
            ):
                continue
            out.append({"Namespace": k[0], "MetricName": k[1], "Dimensions": _dims(k)})
        chunk, token = page(
            out,
            params,
            InvalidNextToken,
            default=500,
            maximum=500,
            token_key="NextToken",
            max_key="MaxResults",
        )
        answer: dict[str, Any] = {"Metrics": chunk}
        if token:
            answer["NextToken"] = token
        return answer

    def operations(self) -> dict[str, Handler]:
        return {
            "PutMetricData": self.put_metric_data,
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
            "ListMetrics": self.list_metrics,
        }


def total(store: Store, k: Key, start: float, end: float) -> Agg:
    """Every sample of ``k`` in ``[start, end)`` merged."""
    return merged(a for _, a in store.points(k, start, end))
