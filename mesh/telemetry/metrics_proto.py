"""The messages of Envoy's metrics service (``envoy.service.metrics.v3.MetricsService``), which
``xds-protos`` does not ship: ``StreamMetricsMessage`` and Prometheus' client model
(``io.prometheus.client.MetricFamily``), built here from their field numbers with protobuf's own
descriptor machinery (no generated code, no hand-written wire decoding).

``decode(data)`` parses one message Envoy streams; ``METHOD`` is the gRPC method path.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

__all__ = ["METHOD", "MetricFamily", "StreamMetricsMessage", "decode"]

METHOD = "/envoy.service.metrics.v3.MetricsService/StreamMetrics"

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED


def _message(
    file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple[str, int, int, int, str]]
) -> None:
    msg = file.message_type.add(name=name)
    for fname, number, ftype, label, type_name in fields:
        f = msg.field.add(name=fname, number=number, type=ftype, label=label)
        if type_name:
            f.type_name = type_name


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    prom = descriptor_pb2.FileDescriptorProto(
        name="dockyard/prometheus_client.proto", package="io.prometheus.client", syntax="proto2"
    )
    P = ".io.prometheus.client."
    _message(
        prom, "LabelPair", [("name", 1, _F.TYPE_STRING, _OPT, ""), ("value", 2, _F.TYPE_STRING, _OPT, "")]
    )
    _message(prom, "Gauge", [("value", 1, _F.TYPE_DOUBLE, _OPT, "")])
    _message(prom, "Counter", [("value", 1, _F.TYPE_DOUBLE, _OPT, "")])
    _message(
        prom, "Quantile", [("quantile", 1, _F.TYPE_DOUBLE, _OPT, ""), ("value", 2, _F.TYPE_DOUBLE, _OPT, "")]
    )
    _message(
        prom,
        "Summary",
        [
            ("sample_count", 1, _F.TYPE_UINT64, _OPT, ""),
            ("sample_sum", 2, _F.TYPE_DOUBLE, _OPT, ""),
            ("quantile", 3, _F.TYPE_MESSAGE, _REP, P + "Quantile"),
        ],
    )
    _message(prom, "Untyped", [("value", 1, _F.TYPE_DOUBLE, _OPT, "")])
    _message(
        prom,
        "Bucket",
        [("cumulative_count", 1, _F.TYPE_UINT64, _OPT, ""), ("upper_bound", 2, _F.TYPE_DOUBLE, _OPT, "")],
    )
    _message(
        prom,
        "Histogram",
        [
            ("sample_count", 1, _F.TYPE_UINT64, _OPT, ""),
            ("sample_sum", 2, _F.TYPE_DOUBLE, _OPT, ""),
            ("bucket", 3, _F.TYPE_MESSAGE, _REP, P + "Bucket"),
        ],
    )
    _message(
        prom,
        "Metric",
        [
            ("label", 1, _F.TYPE_MESSAGE, _REP, P + "LabelPair"),
            ("gauge", 2, _F.TYPE_MESSAGE, _OPT, P + "Gauge"),
            ("counter", 3, _F.TYPE_MESSAGE, _OPT, P + "Counter"),
            ("summary", 4, _F.TYPE_MESSAGE, _OPT, P + "Summary"),
            ("untyped", 5, _F.TYPE_MESSAGE, _OPT, P + "Untyped"),
            ("timestamp_ms", 6, _F.TYPE_INT64, _OPT, ""),
            ("histogram", 7, _F.TYPE_MESSAGE, _OPT, P + "Histogram"),
        ],
    )
    _message(
        prom,
        "MetricFamily",
        [
            ("name", 1, _F.TYPE_STRING, _OPT, ""),
            ("help", 2, _F.TYPE_STRING, _OPT, ""),
            ("type", 3, _F.TYPE_INT32, _OPT, ""),  # 0 counter, 1 gauge, 4 histogram
            ("metric", 4, _F.TYPE_MESSAGE, _REP, P + "Metric"),
        ],
    )
    pool.Add(prom)
    svc = descriptor_pb2.FileDescriptorProto(
        name="dockyard/metrics_service.proto",
        package="envoy.service.metrics.v3",
        syntax="proto3",
        dependency=[prom.name],
    )
    S = ".envoy.service.metrics.v3."
    # Identifier.node is envoy.config.core.v3.Node; only its id (field 1) is read here.
    _message(svc, "Node", [("id", 1, _F.TYPE_STRING, _OPT, ""), ("cluster", 2, _F.TYPE_STRING, _OPT, "")])
    _message(svc, "Identifier", [("node", 1, _F.TYPE_MESSAGE, _OPT, S + "Node")])
    _message(
        svc,
        "StreamMetricsMessage",
        [
            ("identifier", 1, _F.TYPE_MESSAGE, _OPT, S + "Identifier"),
            ("envoy_metrics", 2, _F.TYPE_MESSAGE, _REP, P + "MetricFamily"),
        ],
    )
    _message(svc, "StreamMetricsResponse", [])
    pool.Add(svc)
    return pool


_POOL = _pool()
StreamMetricsMessage = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("envoy.service.metrics.v3.StreamMetricsMessage")
)
StreamMetricsResponse = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("envoy.service.metrics.v3.StreamMetricsResponse")
)
MetricFamily = message_factory.GetMessageClass(
    _POOL.FindMessageTypeByName("io.prometheus.client.MetricFamily")
)


def decode(data: bytes) -> Message:
    """One ``StreamMetricsMessage`` (raises ``google.protobuf.message.DecodeError``)."""
    msg = StreamMetricsMessage()
    msg.ParseFromString(data)
    return msg
