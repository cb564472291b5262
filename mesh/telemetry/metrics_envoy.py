"""From what a sidecar's Envoy streams (``StreamMetricsMessage``) to CloudWatch samples: pure.

Envoy sends every stat the bootstrap's ``stats_matcher`` lets through (:data:`INCLUDED`),
cumulative, under its full name (``cluster.<cluster>.upstream_rq_2xx``), every
``stats_flush_interval``. :func:`readings` turns one message into ``{stat: Reading}``;
:func:`deltas` subtracts the node's previous readings (a counter that went down means Envoy
restarted: the new value is the delta); :func:`samples` names the result as ECS Service Connect
does (:data:`COUNTERS`, :data:`GAUGES`, ``TargetResponseTime``) with its dimensions:

* a task's own ingress (cluster ``local_<port name>``: requests the task served):
  ``DiscoveryName`` = the Service Connect ``discoveryName`` of that port (ECS's default: the
  port name), ``ClusterName``/``ServiceName`` (ECS's), and Dockyard's
  ``TaskDefinitionRevision`` (canary and baseline apart);
* an upstream (cluster ``sc/<namespace>/<discovery name>`` or App Mesh's weighted target
  ``am/<mesh>/<virtual node>``): ``TargetDiscoveryName`` = the discovery name or virtual node,
  with the caller's ``ClusterName``/``ServiceName`` and ``DiscoveryName`` (its first
  discovery name; its service name when it serves none).

Each sample is kept under a few dimension sets (:func:`dimension_sets`), as CloudWatch keeps a
metric per exact dimension set.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.protobuf.message import Message

__all__ = [
    "COUNTERS",
    "GAUGES",
    "INCLUDED",
    "NAMESPACE",
    "Node",
    "Reading",
    "Sample",
    "deltas",
    "readings",
    "samples",
    "split",
]

NAMESPACE = "AWS/ECS"
XDS_CLUSTER = "dockyard_xds"

# Envoy stat (under cluster.<name>.) -> CloudWatch metric
COUNTERS = {
    "upstream_rq_total": "RequestCount",
    "upstream_rq_1xx": "HTTPCode_Target_1XX_Count",
    "upstream_rq_2xx": "HTTPCode_Target_2XX_Count",
    "upstream_rq_3xx": "HTTPCode_Target_3XX_Count",
    "upstream_rq_4xx": "HTTPCode_Target_4XX_Count",
    "upstream_rq_5xx": "HTTPCode_Target_5XX_Count",
    "upstream_cx_total": "NewConnectionCount",
    "upstream_cx_rx_bytes_total": "ProcessedBytes",
    "upstream_cx_tx_bytes_total": "ProcessedBytes",
    "upstream_rq_retry": "RetryCount",  # Dockyard's
    "outlier_detection.ejections_enforced_total": "OutlierEjectionCount",  # Dockyard's
    "upstream_rq_pending_overflow": "OverflowCount",  # Dockyard's
    "upstream_cx_overflow": "OverflowCount",
}
GAUGES = {"upstream_cx_active": "ActiveConnectionCount"}
HISTOGRAMS = {"upstream_rq_time": "TargetResponseTime"}
UNITS = {"TargetResponseTime": "Milliseconds", "ProcessedBytes": "Bytes", "ActiveConnectionCount": "Count"}

_SUFFIXES = sorted([*COUNTERS, *GAUGES, *HISTOGRAMS], key=len, reverse=True)
_STAT = re.compile(r"^cluster\.(.+)\.(" + "|".join(re.escape(s) for s in _SUFFIXES) + r")$")

# Envoy also counts a cluster's requests again under sub-scopes: ``cluster.<c>.internal.`` /
# ``.external.`` (by the x-envoy-internal header), ``.canary.``, ``.zone.<from>.<to>.``: not kept
_SCOPES = re.compile(r"\.(internal|external|canary)$|\.zone\.")


def split(stat: str) -> tuple[str, str] | None:
    """``(cluster, stat suffix)`` of a kept Envoy stat; None for the others (sub-scopes)."""
    m = _STAT.match(stat)
    if m is None or _SCOPES.search(m.group(1)):
        return None
    return m.group(1), m.group(2)


INCLUDED = r"^cluster\..+\.(" + "|".join(re.escape(s) for s in _SUFFIXES) + r")$"
"""The bootstrap's ``stats_matcher`` inclusion regex: only these stats exist in the sidecar
(bounded cardinality: a dozen per cluster)."""


@dataclass(frozen=True)
class Reading:
    """One cumulative stat: ``value`` (counter, gauge) or a histogram's ``count``, ``total`` and
    cumulative ``buckets`` (upper bound -> samples at most that)."""

    kind: str  # counter, gauge, histogram
    value: float = 0.0
    count: float = 0.0
    total: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Node:
    """What the sidecar's node id (its task ARN) stands for."""

    task_arn: str
    cluster: str  # the ECS cluster's name
    service: str
    revision: int
    discovery: tuple[tuple[str, str], ...] = ()  # (port name, Service Connect discoveryName)

    def discovery_name(self, port_name: str) -> str:
        """The ``DiscoveryName`` of the ingress ``port_name`` (ECS's default: the port name)."""
        return dict(self.discovery).get(port_name) or port_name

    @property
    def caller_name(self) -> str:
        """The ``DiscoveryName`` of what the task calls: its first, or its service name."""
        return self.discovery[0][1] if self.discovery else self.service


@dataclass(frozen=True)
class Sample:
    name: str
    dimensions: tuple[tuple[str, str], ...]
    kind: str  # counter, gauge, histogram
    value: float = 0.0
    count: float = 0.0
    total: float = 0.0
    buckets: tuple[tuple[float, float], ...] = ()  # per bucket, not cumulative
    unit: str = "Count"


def readings(message: Message) -> dict[str, Reading]:
    """The stats of one ``StreamMetricsMessage`` (types 0 counter, 1 gauge, 4 histogram)."""
    out: dict[str, Reading] = {}
    for family in message.envoy_metrics:
        for metric in family.metric[:1]:  # no labels: one metric per family
            if family.type == 0:
                out[family.name] = Reading("counter", value=metric.counter.value)
            elif family.type == 1:
                out[family.name] = Reading("gauge", value=metric.gauge.value)
            elif family.type == 4:
                h = metric.histogram
                out[family.name] = Reading(
                    "histogram",
                    count=float(h.sample_count),
                    total=h.sample_sum,
                    buckets=tuple((b.upper_bound, float(b.cumulative_count)) for b in h.bucket),
                )
    return out


def deltas(previous: Mapping[str, Reading], now: Mapping[str, Reading]) -> dict[str, Reading]:
    """What happened since ``previous``: counters and histograms subtracted (a value that went
    down is a restart: taken whole), gauges as they are; histogram buckets per bucket."""
    out: dict[str, Reading] = {}
    for name, r in now.items():
        p = previous.get(name)
        if r.kind == "gauge":
            out[name] = r
        elif r.kind == "counter":
            d = r.value - p.value if p is not None and p.kind == "counter" and r.value >= p.value else r.value
            out[name] = Reading("counter", value=d)
        else:
            reset = p is None or p.kind != "histogram" or r.count < p.count
            base = dict(p.buckets) if not reset and p is not None else {}
            cum = [(b, c - base.get(b, 0.0)) for b, c in r.buckets]
            per: list[tuple[float, float]] = []
            last = 0.0
            for b, c in cum:
                per.append((b, max(0.0, c - last)))
                last = c
            count = r.count - (0.0 if reset or p is None else p.count)
            total = r.total - (0.0 if reset or p is None else p.total)
            if count > last:  # samples above the last bound
                per.append((float("inf"), count - last))
            out[name] = Reading("histogram", count=count, total=total, buckets=tuple(per))
    return out


def target(cluster: str) -> tuple[str, str] | None:
    """``("DiscoveryName", service)`` for nothing here; ``("TargetDiscoveryName", name)`` of an
    upstream cluster, ``("local", port)`` of an ingress, None for the control plane's."""
    if cluster == XDS_CLUSTER:
        return None
    if cluster.startswith("local_"):
        return "local", cluster[len("local_") :]
    parts = cluster.split("/")
    if len(parts) == 3 and parts[0] in ("sc", "am"):
        return "TargetDiscoveryName", parts[2]
    return "TargetDiscoveryName", cluster


def dimension_sets(node: Node, cluster: str) -> list[dict[str, str]]:
    """The dimension sets a sample of ``cluster`` on ``node`` is kept under (empty: none):
    ECS Service Connect's (``DiscoveryName``; ``ClusterName``+``ServiceName``;
    ``TargetDiscoveryName`` alone and with ``ClusterName``+``ServiceName``), with
    ``DiscoveryName`` added, and per ``TaskDefinitionRevision`` (Dockyard's)."""
    t = target(cluster)
    if t is None:
        return []
    svc = {"ClusterName": node.cluster, "ServiceName": node.service}
    rev = {"TaskDefinitionRevision": str(node.revision)}
    if t[0] == "local":
        name = {"DiscoveryName": node.discovery_name(t[1])}
        return [name, svc, {**svc, **name}, {**name, **rev}, {**svc, **rev}]
    aimed = {"TargetDiscoveryName": t[1]}
    return [aimed, {"DiscoveryName": node.caller_name, **aimed}, {**svc, **aimed}]


def samples(node: Node, changes: Mapping[str, Reading]) -> list[Sample]:
    """The CloudWatch samples of one flush's ``changes`` on ``node`` (zero counters included:
    a service that served nothing shows 0, not missing data)."""
    out: list[Sample] = []
    for stat, r in changes.items():
        found = split(stat)
        if found is None:
            continue
        cluster, suffix = found
        name = COUNTERS.get(suffix) or GAUGES.get(suffix) or HISTOGRAMS[suffix]
        unit = UNITS.get(name, "Count")
        for dims in dimension_sets(node, cluster):
            d = tuple(sorted(dims.items()))
            out.append(
                Sample(
                    name, d, r.kind, value=r.value, count=r.count, total=r.total, buckets=r.buckets, unit=unit
                )
            )
    return out


def labels(sample: Sample) -> dict[str, str]:
    return dict(sample.dimensions)


def by_name(items: Iterable[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for s in items:
        out.setdefault(s.name, []).append(s)
    return out
