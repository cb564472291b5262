"""The sidecars' stats on ``/metrics`` (Prometheus text), summed per ECS cluster, service, task
definition revision and upstream (pure: :func:`families` of the collector's latest readings).

Labels: ``cluster`` (ECS cluster), ``service`` (ECS service), ``revision`` (task definition
revision), ``target`` (the upstream's discovery name or virtual node; ``self`` for the task's
own ingress: the requests it served) and ``route`` (the Envoy cluster: ``sc/<ns>/<name>``,
``am/<mesh>/<node>`` for a weighted target, ``local_<port>``). Counters are Envoy's cumulative
values; a task that stops takes its share with it (a counter reset, as Prometheus expects).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from mesh.telemetry.metrics_envoy import Node, Reading, split, target

__all__ = ["Exported", "families"]

LABELS = ["cluster", "service", "revision", "target", "route"]
COUNTERS = {
    "upstream_rq_total": ("dockyard_mesh_requests", "Requests"),
    "upstream_cx_total": ("dockyard_mesh_connections", "Connections opened"),
    "upstream_cx_rx_bytes_total": ("dockyard_mesh_received_bytes", "Bytes received from the upstream"),
    "upstream_cx_tx_bytes_total": ("dockyard_mesh_sent_bytes", "Bytes sent to the upstream"),
    "upstream_rq_retry": ("dockyard_mesh_retries", "Retries"),
    "outlier_detection.ejections_enforced_total": ("dockyard_mesh_outlier_ejections", "Outlier ejections"),
    "upstream_rq_pending_overflow": (
        "dockyard_mesh_pending_overflows",
        "Requests refused: pending queue full",
    ),
    "upstream_cx_overflow": ("dockyard_mesh_connection_overflows", "Connections refused: pool full"),
}
CLASSES = {f"upstream_rq_{n}xx": f"{n}xx" for n in range(1, 6)}

Exported = Mapping[str, Mapping[str, Reading]]  # node id -> its latest readings


def families(readings: Exported, nodes: Callable[[str], Node | None]) -> Iterable[Metric]:
    """The metric families of every known node's latest readings, summed per label set."""
    counters: dict[str, dict[tuple[str, ...], float]] = {}
    codes: dict[tuple[str, ...], float] = {}
    active: dict[tuple[str, ...], float] = {}
    hist: dict[tuple[str, ...], tuple[float, float, dict[float, float]]] = {}
    for node_id, stats in readings.items():
        node = nodes(node_id)
        if node is None:
            continue
        for stat, r in stats.items():
            found = split(stat)
            if found is None:
                continue
            cluster, suffix = found
            t = target(cluster)
            if t is None:
                continue
            labels = (
                node.cluster,
                node.service,
                str(node.revision),
                "self" if t[0] == "local" else t[1],
                cluster,
            )
            if suffix in COUNTERS:
                per = counters.setdefault(suffix, {})
                per[labels] = per.get(labels, 0.0) + r.value
            elif suffix in CLASSES:
                k = (*labels, CLASSES[suffix])
                codes[k] = codes.get(k, 0.0) + r.value
            elif suffix == "upstream_cx_active":
                active[labels] = active.get(labels, 0.0) + r.value
            elif r.kind == "histogram":
                total, count, buckets = hist.get(labels, (0.0, 0.0, {}))
                for bound, n in r.buckets:
                    buckets[bound] = buckets.get(bound, 0.0) + n
                hist[labels] = (total + r.total, count + r.count, buckets)
    for suffix, (name, doc) in COUNTERS.items():
        fam = CounterMetricFamily(name, doc, labels=LABELS)
        for labels, v in sorted(counters.get(suffix, {}).items()):
            fam.add_metric(list(labels), v)
        yield fam
    fam = CounterMetricFamily(
        "dockyard_mesh_responses", "Responses by status class", labels=[*LABELS, "code"]
    )
    for labels, v in sorted(codes.items()):
        fam.add_metric(list(labels), v)
    yield fam
    g = GaugeMetricFamily("dockyard_mesh_active_connections", "Open upstream connections", labels=LABELS)
    for labels, v in sorted(active.items()):
        g.add_metric(list(labels), v)
    yield g
    h = HistogramMetricFamily(
        "dockyard_mesh_request_duration_milliseconds", "Upstream request time", labels=LABELS
    )
    for labels, (total, count, buckets) in sorted(hist.items()):
        out = [(f"{b:g}", buckets[b]) for b in sorted(buckets) if math.isfinite(b)]
        out.append(("+Inf", count))
        h.add_metric(list(labels), out, total)
    yield h
