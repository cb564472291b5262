from __future__ import annotations

import json

import pytest

from mesh.bootstrap import XDS_CLUSTER, bootstrap

ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/0123456789abcdef"


def boot(**kw):
    args = {"task_arn": ARN, "service": "web", "xds_host": "10.0.0.1", "xds_port": 18000, "admin_port": 9901}
    args.update(kw)
    return bootstrap(**args)


def test_the_node_is_the_task_and_its_service():
    b = boot()
    assert b["node"]["id"] == ARN and b["node"]["cluster"] == "web"
    json.dumps(b)  # JSON-able


def test_ads_over_grpc_state_of_the_world_by_default_and_delta_on_request():
    ads = boot()["dynamic_resources"]["ads_config"]
    assert ads["api_type"] == "GRPC" and ads["transport_api_version"] == "V3"
    assert ads["grpc_services"] == [{"envoy_grpc": {"cluster_name": XDS_CLUSTER, "retry_policy": {
        "retry_back_off": {"base_interval": "0.1s", "max_interval": "5s"}}}}]
    assert boot(delta=True)["dynamic_resources"]["ads_config"]["api_type"] == "DELTA_GRPC"


def test_cds_and_lds_come_from_ads_and_the_only_static_cluster_is_the_control_plane():
    b = boot()
    for key in ("cds_config", "lds_config"):
        assert b["dynamic_resources"][key]["ads"] == {}
        assert b["dynamic_resources"][key]["resource_api_version"] == "V3"
    (xds,) = b["static_resources"]["clusters"]
    assert xds["name"] == XDS_CLUSTER and xds["type"] == "STATIC"
    ep = xds["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert ep == {"address": "10.0.0.1", "port_value": 18000}
    assert "listeners" not in b["static_resources"]


def test_a_host_name_is_resolved_by_dns():
    (xds,) = boot(xds_host="dockyard.internal")["static_resources"]["clusters"]
    assert xds["type"] == "STRICT_DNS"


def test_the_xds_connection_has_timeouts_and_keepalive():
    b = boot(connect_timeout=2, keepalive_interval=10, keepalive_timeout=3)
    (xds,) = b["static_resources"]["clusters"]
    assert xds["connect_timeout"] == "2s"
    opts = xds["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    h2 = opts["explicit_http_config"]["http2_protocol_options"]
    assert h2["connection_keepalive"] == {"interval": "10s", "timeout": "3s"}
    assert xds["upstream_connection_options"]["tcp_keepalive"]["keepalive_time"] == 10


def test_the_admin_interface_is_on_loopback_only():
    b = boot(admin_port=19000)
    assert b["admin"]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 19000}
    for bad in ("0.0.0.0", "10.0.0.1", "localhost", "::"):
        with pytest.raises(ValueError):
            boot(admin_host=bad)


@pytest.mark.parametrize("kw", [{"task_arn": ""}, {"service": ""}, {"xds_host": ""}, {"xds_port": 0},
                                {"admin_port": 70000}, {"xds_port": "18000"}, {"connect_timeout": 0},
                                {"keepalive_timeout": -1}])
def test_bad_input_raises_value_error(kw):
    with pytest.raises(ValueError):
        boot(**kw)


def test_cluster_stats_are_made_on_first_use():
    assert boot()["deferred_stat_options"] == {"enable_deferred_creation_stats": True}
