"""The sidecars' tracer: the settings read, the HTTP connection managers' tracing, the listeners'
directions and the bootstrap's collector cluster."""

from __future__ import annotations

import pytest
from envoy.config.core.v3 import base_pb2
from envoy.config.trace.v3 import zipkin_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from mesh.bootstrap import XDS_CLUSTER, bootstrap
from mesh.model import Client, Ingress, MeshConfig, Node
from mesh.snapshot import LISTENER, compute
from mesh.telemetry.traces_envoy import (
    COLLECTOR_CLUSTER,
    SPANS_PATH,
    ZIPKIN,
    Tracing,
    collector_cluster,
    external,
    tracing_of,
)
from tests.unit.mesh.fixtures import sample_config, sample_endpoints


def managers(listener) -> list[hcm.HttpConnectionManager]:
    out = []
    for chain in listener.filter_chains:
        for f in chain.filters:
            if f.typed_config.Is(hcm.HttpConnectionManager.DESCRIPTOR):
                m = hcm.HttpConnectionManager()
                f.typed_config.Unpack(m)
                out.append(m)
    return out


def test_settings_become_a_tracer_or_none():
    assert tracing_of("", 100) == Tracing(100.0, SPANS_PATH, "")
    assert tracing_of("", 0) is None
    assert tracing_of("http://zipkin.example:9411", 5) == Tracing(5, SPANS_PATH, "zipkin.example")
    assert tracing_of("http://jaeger/api/v2/spans", 1) == Tracing(1, "/api/v2/spans", "jaeger")
    assert external("http://10.1.2.3:19411/custom") == ("10.1.2.3", 19411, "/custom")
    assert external("http://zipkin") == ("zipkin", 9411, SPANS_PATH)
    with pytest.raises(ValueError):
        tracing_of("", 101)
    with pytest.raises(ValueError):
        external("https://zipkin")


def test_the_connection_manager_sends_zipkin_json_with_shared_span_context():
    t = Tracing(25.0, "/api/v2/spans", "zipkin.example").hcm()
    assert t.provider.name == ZIPKIN and t.random_sampling.value == 25.0
    z = zipkin_pb2.ZipkinConfig()
    assert t.provider.typed_config.Unpack(z)
    assert z.collector_cluster == COLLECTOR_CLUSTER and z.collector_endpoint == "/api/v2/spans"
    assert z.collector_endpoint_version == zipkin_pb2.ZipkinConfig.HTTP_JSON
    assert z.shared_span_context.value and z.trace_id_128bit and z.collector_hostname == "zipkin.example"


def test_with_tracing_every_http_listener_traces_and_says_its_direction():
    base = sample_config()
    config = MeshConfig(base.services, base.routes, (
        base.clients[0], Client("task-b", ("db.shop.local",), ingress=(Ingress("web", 8080, 18080),))))
    tracing = Tracing(100.0)
    for node, direction in (("task-a", base_pb2.OUTBOUND), ("task-b", None)):
        snap = compute(config, sample_endpoints(), Node(node), tracing=tracing)
        assert snap.consistent()
        for listener in snap.resources[LISTENER]:
            want = direction if direction is not None else (
                base_pb2.INBOUND if listener.name.startswith("ingress_") else base_pb2.OUTBOUND)
            assert listener.traffic_direction == want, listener.name
            for m in managers(listener):
                assert m.tracing.provider.name == ZIPKIN
        plain = compute(config, sample_endpoints(), Node(node))
        for listener in plain.resources[LISTENER]:
            assert listener.traffic_direction == base_pb2.UNSPECIFIED
            assert all(not m.HasField("tracing") for m in managers(listener))
        assert plain.versions[LISTENER] != snap.versions[LISTENER]


def test_the_bootstrap_names_the_collector_cluster_only_when_given_one():
    arn = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef"
    (only,) = bootstrap(arn, "web", "172.17.0.1", 18000, 15000)["static_resources"]["clusters"]
    assert only["name"] == XDS_CLUSTER
    xds, traces = bootstrap(arn, "web", "172.17.0.1", 18000, 15000,
                            collector=("172.17.0.1", 8080))["static_resources"]["clusters"]
    assert xds == only and traces == collector_cluster("172.17.0.1", 8080)
    assert traces["name"] == COLLECTOR_CLUSTER and traces["type"] == "STATIC"
    address = traces["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert address == {"socket_address": {"address": "172.17.0.1", "port_value": 8080}}
    assert collector_cluster("zipkin.example", 9411)["type"] == "STRICT_DNS"
    with pytest.raises(ValueError):
        collector_cluster("zipkin", 0)
