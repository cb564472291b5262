"""The sidecars' stats, pushed: Envoy's metrics service (``envoy.stat_sinks.metrics_service``)
served by Dockyard's xDS gRPC servers, recorded in the :class:`~mesh.telemetry.metrics_store.Store`.

Each sidecar opens one ``StreamMetrics`` stream to the control-plane cluster its bootstrap
names and sends its stats every ``stats_flush_interval`` (:func:`sink_config` is the
bootstrap's part of it). The first message names the node (the task ARN); ``nodes`` maps it to
the task's ECS cluster, service and revision (:class:`~mesh.telemetry.metrics_envoy.Node`),
from the runner's Service Connect view. A node the view does not know is ignored (not a task,
or one that stopped); a message that is not protobuf ends that stream only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc

from mesh.telemetry import metrics_envoy, metrics_proto
from mesh.telemetry.metrics_envoy import NAMESPACE, Node, Reading, Sample
from mesh.telemetry.metrics_store import Store, key

__all__ = ["Collector", "record", "sink_config"]

log = logging.getLogger("dockyard.mesh")

FLUSH_INTERVAL = 10.0


def sink_config(cluster: str, flush_interval: float = FLUSH_INTERVAL) -> dict[str, Any]:
    """The bootstrap's ``stats_sinks``, ``stats_flush_interval`` and ``stats_config`` (the
    inclusion list that bounds the stats to :data:`metrics_envoy.INCLUDED`)."""
    return {
        "stats_sinks": [
            {
                "name": "envoy.stat_sinks.metrics_service",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.metrics.v3.MetricsServiceConfig",
                    "transport_api_version": "V3",
                    "grpc_service": {"envoy_grpc": {"cluster_name": cluster}},
                },
            }
        ],
        "stats_flush_interval": f"{flush_interval:g}s",
        "stats_config": {
            "use_all_default_tags": False,
            "stats_matcher": {
                "inclusion_list": {"patterns": [{"safe_regex": {"regex": metrics_envoy.INCLUDED}}]}
            },
        },
    }


def record(store: Store, items: list[Sample], now: float, namespace: str = NAMESPACE) -> None:
    """Add one flush's samples to ``store`` at ``now``."""
    for s in items:
        agg = store.bucket(key(namespace, s.name, dict(s.dimensions)), now)
        agg.unit = s.unit
        if s.kind == "histogram":
            agg.add_histogram(s.count, s.total, dict(s.buckets))
        else:  # one flush's delta: summary statistics only (no percentiles of counts)
            agg.add_stats(1.0, s.value, s.value, s.value)


class Collector:
    """The metrics service of the xDS servers: ``handler()`` is added to each gRPC server."""

    def __init__(
        self, store: Store, nodes: Callable[[str], Node | None], clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.nodes = nodes
        self.clock = clock
        self.messages = 0
        self.last: dict[str, dict[str, Reading]] = {}  # node -> its previous readings

    def handler(self) -> grpc.GenericRpcHandler:
        service, _, method = metrics_proto.METHOD.strip("/").partition("/")
        return grpc.method_handlers_generic_handler(
            service,
            {
                method: grpc.stream_unary_rpc_method_handler(
                    self.stream,
                    request_deserializer=metrics_proto.decode,
                    response_serializer=lambda m: m.SerializeToString(),
                )
            },
        )

    def flush(self, node_id: str, message: Any) -> int:
        """Record one message of ``node_id``; the number of samples kept."""
        self.messages += 1
        now = metrics_envoy.readings(message)
        changes = metrics_envoy.deltas(self.last.get(node_id, {}), now)
        self.last[node_id] = now
        node = self.nodes(node_id)
        if node is None:
            self.last.pop(node_id, None)  # bounded by the live tasks
            return 0
        items = metrics_envoy.samples(node, changes)
        record(self.store, items, self.clock())
        return len(items)

    async def stream(self, requests: AsyncIterator[Any], context: grpc.aio.ServicerContext) -> Any:
        node_id = ""  # the previous readings outlive a stream: a reconnect is no spike
        async for message in requests:
            if message.identifier.node.id:
                node_id = message.identifier.node.id
            if node_id:
                self.flush(node_id, message)
        return metrics_proto.StreamMetricsResponse()
