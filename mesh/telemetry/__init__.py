"""Telemetry: what the sidecars and the engine measure, and the AWS APIs that serve it.

Metrics (sidecar stats and container CPU/memory, aggregated per service, revision and route; the
CloudWatch metrics API and alarms), logs (the CloudWatch Logs API over the output of
``awslogs`` containers) and traces (a Zipkin v2 collector). Each lives in its own modules here;
handlers only move data, the aggregation and the judgements are pure functions.
"""
