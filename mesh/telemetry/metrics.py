"""The metrics side of telemetry inside one platform: the store, the sidecars' collector, the
CloudWatch metrics and alarms APIs, the alarm evaluation loop and ``/metrics``.

:func:`install` (called by :func:`mesh.part.install`) registers the CloudWatch operations
(``GraniteServiceVersion20100801``, checked against botocore's model first: a bad request is
``InvalidParameterValue``), adds the metrics service to the xDS gRPC servers, and while the
platform serves evaluates every alarm each ``alarm_evaluation_interval`` seconds and drops
what is past retention every minute. The nodes (task ARN -> cluster, service, revision) come
from the mesh's Service Connect view, read again at most once a second.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import REGISTRY

from dockyard.periodic import every
from mesh.seams import MeshedTask, UsageView
from mesh.telemetry import metrics_prometheus, metrics_usage
from mesh.telemetry.alarms import Alarms
from mesh.telemetry.cloudwatch import TARGET, Metrics
from mesh.telemetry.cloudwatch_errors import InvalidParameterValue
from mesh.telemetry.metrics_collector import Collector, record
from mesh.telemetry.metrics_envoy import NAMESPACE, Node
from mesh.telemetry.metrics_store import Store, key
from mesh.telemetry.metrics_store import statistic as stat

if TYPE_CHECKING:
    from dockyard.platform import Platform
    from mesh.server import AdsServer

__all__ = ["MetricPut", "Nodes", "Telemetry", "install"]


class Nodes:
    """Task ARN -> :class:`Node`, from ``tasks()`` (the Service Connect view), cached for
    ``ttl`` seconds."""

    def __init__(self, tasks: Callable[[], Sequence[MeshedTask]], ttl: float = 1.0) -> None:
        self.tasks = tasks
        self.ttl = ttl
        self._at = -1e9
        self._nodes: dict[str, Node] = {}

    def __call__(self, task_arn: str) -> Node | None:
        now = time.monotonic()
        if now - self._at > self.ttl or (task_arn not in self._nodes and now - self._at > 0.1):
            self._nodes = {
                t.task_arn: Node(t.task_arn, t.cluster.rsplit("/", 1)[-1], t.service, t.revision,
                                 tuple((i.port_name, i.discovery_name or i.port_name) for i in t.ingress))
                for t in self.tasks()
            }
            self._at = now
        return self._nodes.get(task_arn)

    def all(self) -> Iterable[Node]:
        self("")
        return list(self._nodes.values())


class _Exporter:
    def __init__(self, collector: Collector, nodes: Nodes) -> None:
        self.collector, self.nodes = collector, nodes

    def collect(self) -> Iterable[Any]:
        return metrics_prometheus.families(dict(self.collector.last), self.nodes)


class Engine:
    """The runner's container readings (``usage()``, a :class:`mesh.seams.UsageView` or None)
    recorded as ``CPUUtilization``/``MemoryUtilization`` (:mod:`mesh.telemetry.metrics_usage`)."""

    def __init__(self, store: Store, usage: Callable[[], UsageView | None],
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.usage, self.clock = store, usage, clock
        self.previous: dict[str, tuple[float, float]] = {}

    async def sample(self) -> int:
        view = self.usage()
        if view is None:
            return 0
        items, self.previous = metrics_usage.samples(self.previous, await view.usage())
        record(self.store, items, self.clock(), NAMESPACE)
        return len(items)


class MetricPoints:
    """The store read as the autoscaling loop reads it (``runner.seams.MetricSource``): one
    statistic per ``period`` from ``start`` to ``end``, None for a period without data."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def points(self, namespace: str, name: str, dimensions: dict[str, str], statistic: str,
                     period: float, start: float, end: float) -> list[float | None]:
        step = max(1, int(period))
        got = dict(self.store.periods(key(namespace, name, dimensions), start, end, step))
        slots = range(int(start), int(end), step)
        return [stat(got[slot], statistic) if slot in got else None for slot in slots]


class MetricPut:
    """Another part's datapoints into the store (``edge.seams.MetricSink``): each a sample."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def put(self, namespace: str, name: str, dimensions: Mapping[str, str], value: float, unit: str,
            at: float) -> None:
        agg = self.store.bucket(key(namespace, name, dict(dimensions)), at)
        agg.unit = unit
        agg.add_stats(1.0, value, value, value)


@dataclass
class Telemetry:
    store: Store
    collector: Collector
    metrics: Metrics
    alarms: Alarms
    nodes: Nodes
    engine: Engine


def install(platform: Platform, ads: AdsServer, tasks: Callable[[], Sequence[MeshedTask]],
            usage: Callable[[], UsageView | None] = lambda: None) -> Telemetry:
    store = Store()
    nodes = Nodes(tasks)
    collector = Collector(store, nodes)
    metrics = Metrics(store)
    alarms = Alarms(metrics, platform.config.region, platform.config.account_id)
    ads.handlers.append(collector.handler())
    platform.ops.validate(TARGET, InvalidParameterValue)
    for name, handler in {**metrics.operations(), **alarms.operations()}.items():
        platform.ops.add(TARGET, name, handler)  # in memory: answered by the main process
    exporter = _Exporter(collector, nodes)
    interval = platform.config.alarm_evaluation_interval
    engine = Engine(store, usage)
    sampling = platform.config.mesh_stats_flush_interval or 10.0

    async def evaluate() -> None:
        alarms.evaluate()

    async def expire() -> None:
        store.expire(time.time())

    async def serve(p: Platform) -> AsyncIterator[None]:
        REGISTRY.register(exporter)  # type: ignore[arg-type]
        try:
            async with (
                every(interval, evaluate, name="alarms", what="alarm evaluation"),
                every(60.0, expire, name="metrics-expire", what="metrics expiry"),
                every(sampling, engine.sample, name="container-usage", what="container CPU and memory"),
            ):
                yield
        finally:
            with contextlib.suppress(KeyError):
                REGISTRY.unregister(exporter)  # type: ignore[arg-type]

    platform.contexts.append(serve)
    return Telemetry(store, collector, metrics, alarms, nodes, engine)
