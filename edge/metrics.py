"""The edge Envoy's admin stats -> CloudWatch ``AWS/ApplicationELB`` datapoints: pure.

Every flush interval the edge reads its Envoy's ``/stats?format=json`` (cumulative counters
under their full names); :func:`deltas` subtracts the previous scrape (a counter that went down
means Envoy restarted: the new value is the delta) and :func:`datapoints` names the result as
ALB does:

* per target group (cluster ``tg_<id>``) ``RequestCount``, ``RequestCountPerTarget``
  (requests / healthy targets; all registered ones when none is healthy, as ALB fails open),
  ``HTTPCode_Target_{2,3,4,5}XX_Count``, ``HealthyHostCount``/``UnHealthyHostCount`` (the
  edge's own prober) by ``TargetGroup`` and by ``TargetGroup``+``LoadBalancer``;
* per load balancer ``RequestCount`` (its listeners' downstream requests) and
  ``HTTPCode_ELB_{4,5}XX_Count`` (its listeners' answers of that class that no target gave:
  fixed responses, no target, timeouts) by ``LoadBalancer``.

A group no listener routes to has no ``LoadBalancer`` and is left out (ALB reports no data).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "INCLUDED", "NAMESPACE", "Datum", "Group", "Topology", "datapoints", "deltas", "dimension", "parse",
]

NAMESPACE = "AWS/ApplicationELB"
CLASSES = ("2xx", "3xx", "4xx", "5xx")
INCLUDED = r"^http\..+\.downstream_rq_(total|[1-5]xx)$"
"""What the edge adds to its bootstrap's stats inclusion list (the listeners' answers)."""


@dataclass(frozen=True)
class Group:
    dimension: str  # targetgroup/<name>/<id>
    cluster: str  # tg_<id>
    healthy: int
    unhealthy: int


@dataclass(frozen=True)
class Topology:
    """What the counters stand for: each load balancer (``app/<name>/<id>``) with its
    listeners (their Envoy stat prefixes, ``edge_<listener id>``) and the groups they route to."""

    balancers: tuple[tuple[str, tuple[str, ...], tuple[Group, ...]], ...]


@dataclass(frozen=True)
class Datum:
    name: str
    dimensions: tuple[tuple[str, str], ...]
    value: float
    unit: str = "Count"


def dimension(arn: str) -> str:
    """ALB's dimension value of a load balancer or target group ARN: ``app/<name>/<id>``,
    ``targetgroup/<name>/<id>``."""
    resource = arn.split(":", 5)[-1]
    return resource.split("/", 1)[1] if resource.startswith("loadbalancer/") else resource


def parse(body: Mapping[str, object]) -> dict[str, float]:
    """The counters and gauges of ``/stats?format=json`` (histograms left out)."""
    out: dict[str, float] = {}
    for item in body.get("stats", []) or []:  # type: ignore[union-attr]
        if isinstance(item, dict) and isinstance(item.get("value"), int | float):
            out[str(item["name"])] = float(item["value"])
    return out


def deltas(previous: Mapping[str, float], now: Mapping[str, float]) -> dict[str, float]:
    """What the counters counted since ``previous`` (one that went down: restarted, whole)."""
    out: dict[str, float] = {}
    for name, v in now.items():
        p = previous.get(name)
        out[name] = v - p if p is not None and v >= p else v
    return out


_DOWN = re.compile(r"^http\.(.+)\.downstream_rq_(total|[1-5]xx)$")


def _dims(**kv: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kv.items()))


def datapoints(topology: Topology, changes: Mapping[str, float]) -> list[Datum]:
    """One flush's datapoints (zero included: an idle group shows 0, not missing data)."""
    down: dict[tuple[str, str], float] = {}
    for name, v in changes.items():
        if m := _DOWN.match(name):
            down[(m.group(1), m.group(2))] = v
    out: list[Datum] = []
    for lb, listeners, groups in topology.balancers:
        target_classes = {c: 0.0 for c in CLASSES}
        for g in groups:
            stat = f"cluster.{g.cluster}."
            values = {"RequestCount": changes.get(stat + "upstream_rq_total", 0.0)}
            for c in CLASSES:
                n = changes.get(stat + f"upstream_rq_{c}", 0.0)
                target_classes[c] += n
                values[f"HTTPCode_Target_{c.upper()}_Count"] = n
            hosts = g.healthy or g.healthy + g.unhealthy
            if hosts:
                values["RequestCountPerTarget"] = values["RequestCount"] / hosts
            values["HealthyHostCount"] = float(g.healthy)
            values["UnHealthyHostCount"] = float(g.unhealthy)
            for dims in (_dims(TargetGroup=g.dimension), _dims(TargetGroup=g.dimension, LoadBalancer=lb)):
                out.extend(Datum(name, dims, v) for name, v in values.items())
        by_lb = _dims(LoadBalancer=lb)
        out.append(Datum("RequestCount", by_lb, _total(down, listeners, "total")))
        for c in ("4xx", "5xx"):
            elb = max(0.0, _total(down, listeners, c) - target_classes[c])
            out.append(Datum(f"HTTPCode_ELB_{c.upper()}_Count", by_lb, elb))
    return out


def _total(down: Mapping[tuple[str, str], float], listeners: Iterable[str], what: str) -> float:
    return sum(down.get((lst, what), 0.0) for lst in listeners)
