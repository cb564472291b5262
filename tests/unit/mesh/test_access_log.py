"""Service Connect's access logs: Envoy's stdout access log on the sidecar's HTTP listeners."""

from __future__ import annotations

from envoy.extensions.access_loggers.stream.v3 import stream_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm

from mesh import resources as res
from mesh.desired import AppMeshSpecs, build
from mesh.model import Ingress, Node
from mesh.snapshot import LISTENER, compute
from tests.unit.mesh.desired_fakes import Alias, ConnectService, Task, TaskIngress


def _manager(listener) -> hcm.HttpConnectionManager:
    out = hcm.HttpConnectionManager()
    listener.filter_chains[0].filters[0].typed_config.Unpack(out)
    return out


def _stdout(manager: hcm.HttpConnectionManager) -> stream_pb2.StdoutAccessLog:
    [log] = manager.access_log
    out = stream_pb2.StdoutAccessLog()
    log.typed_config.Unpack(out)
    return out


def test_no_access_log_unless_a_format_is_given():
    assert res.access_logs(res.NO_ACCESS_LOG) == []
    assert list(_manager(res.ingress_listener(Ingress("web", 15080, 8080, "http"))).access_log) == []


def test_json_access_logs_name_ecs_fields_and_drop_the_query_unless_asked():
    listener = res.ingress_listener(Ingress("web", 15080, 8080, "http"), ("JSON", False))
    fields = _stdout(_manager(listener)).log_format.json_format.fields
    assert fields["response_code"].string_value == "%RESPONSE_CODE%"
    assert fields["path"].string_value == "%PATH(NQ)%"
    with_query = res.ingress_listener(Ingress("web", 15080, 8080, "http"), ("JSON", True))
    assert _stdout(_manager(with_query)).log_format.json_format.fields["path"].string_value == "%PATH(WQ)%"


def test_text_access_logs_are_one_line_per_request():
    text = _stdout(_manager(res.egress_listener("e", "127.0.0.1", 80, None, True, ("TEXT", False))))
    inline = text.log_format.text_format_source.inline_string
    assert inline.endswith("\n") and "%RESPONSE_CODE%" in inline and "%PATH(NQ)%" in inline


def test_a_task_asking_for_access_logs_gets_them_on_its_ingress_and_egress_listeners():
    web = ConnectService("shop.local", "web", aliases=(Alias("web.shop.local", 80),))
    task = Task(
        "arn:task/t1",
        alias_addresses={"web.shop.local": "127.255.0.1"},
        ingress=(TaskIngress("web", 15080, 8080),),
    )
    task_with = type("T", (), {**task.__dict__, "access_log": "JSON", "access_log_query": False})()
    for t, want in ((task, 0), (task_with, 1)):
        desired = build([t], {"shop.local": [web]}, AppMeshSpecs(), lambda ns, svc: [])
        snap = compute(desired.config, desired.endpoints, Node(t.task_arn))
        managers = [
            _manager(lst)
            for lst in snap.resources[LISTENER]
            if lst.filter_chains[0].filters[0].name == res.HCM_FILTER
        ]
        assert len(managers) == 2 and all(len(m.access_log) == want for m in managers)  # ingress, egress
