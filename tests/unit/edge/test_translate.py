"""The pure ALB → Envoy translation and the checks of rules, actions and certificates."""

from __future__ import annotations

import datetime
import re

import pytest

from dockyard.aws.errors import ValidationException
from edge import checks
from edge.errors import InvalidConfigurationRequest, TargetGroupNotFound, ValidationError
from edge.health import HEALTHY, INITIAL, UNHEALTHY, Health, describe, judge, matches, parse_matcher
from edge.pem import inspect, self_signed
from edge.translate import Group, Listener, Rule, glob_regex, source_regex, translate
from edge.xds import messages

A, B = Group("arn:a", "a", endpoints=(("10.0.0.1", 80),)), Group("arn:b", "b", version="HTTP2")
FWD_A = ({"Type": "forward", "TargetGroupArn": "arn:a"},)


def listener(*rules: Rule, default: tuple = FWD_A, **kw: object) -> Listener:
    return Listener("l1", "127.0.0.1", 8080, "HTTP", default, rules, **kw)  # type: ignore[arg-type]


def routes(out: dict) -> list[dict]:
    return out["routes"][0]["virtual_hosts"][0]["routes"]


def test_rules_in_priority_order_then_the_default() -> None:
    out = translate(
        [
            listener(
                Rule(20, ({"Field": "path-pattern", "PathPatternConfig": {"Values": ["/b/*"]}},), FWD_A),
                Rule(
                    10, ({"Field": "host-header", "HostHeaderConfig": {"Values": ["*.example.com"]}},), FWD_A
                ),
            )
        ],
        [A, B],
    )
    assert [r["name"] for r in routes(out)] == ["rule_10_0", "rule_20_0", "default"]
    assert routes(out)[1]["match"] == {"safe_regex": {"regex": "/b/.*"}}
    assert [c["name"] for c in out["clusters"]] == ["tg_a"]  # b is named by no rule
    assert out["endpoints"][0]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"][
        "socket_address"
    ] == {"address": "10.0.0.1", "port_value": 80}
    assert out["listeners"][0]["address"]["socket_address"] == {"address": "127.0.0.1", "port_value": 8080}
    messages(out)  # valid Envoy protobuf


def test_values_of_a_condition_are_alternatives_conditions_all_apply() -> None:
    rule = Rule(
        1,
        (
            {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/x", "/y"]}},
            {"Field": "http-request-method", "HttpRequestMethodConfig": {"Values": ["GET", "POST"]}},
        ),
        FWD_A,
    )
    got = routes(translate([listener(rule)], [A]))[:-1]
    assert len(got) == 4
    assert {
        (r["match"]["safe_regex"]["regex"], r["match"]["headers"][0]["string_match"]["exact"]) for r in got
    } == {("/x", "GET"), ("/x", "POST"), ("/y", "GET"), ("/y", "POST")}


def test_weighted_forward_leaves_out_zero_weights() -> None:
    act = (
        {
            "Type": "forward",
            "ForwardConfig": {
                "TargetGroups": [
                    {"TargetGroupArn": "arn:a", "Weight": 1},
                    {"TargetGroupArn": "arn:b", "Weight": 3},
                ]
            },
        },
    )
    r = routes(translate([listener(default=act)], [A, B]))[-1]["route"]
    assert r["weighted_clusters"] == {
        "clusters": [{"name": "tg_a", "weight": 1}, {"name": "tg_b", "weight": 3}]
    }
    none = (
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": "arn:a", "Weight": 0}]}},
    )
    assert routes(translate([listener(default=none)], [A]))[-1]["direct_response"] == {"status": 503}


def test_http2_and_grpc_groups_speak_http2_upstream() -> None:
    act = ({"Type": "forward", "TargetGroupArn": "arn:b"},)
    cluster = translate([listener(default=act)], [B])["clusters"][0]
    assert "http2_protocol_options" in str(cluster["typed_extension_protocol_options"])


def test_redirect_and_fixed_response() -> None:
    red = (
        {
            "Type": "redirect",
            "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
        },
    )
    assert routes(translate([listener(default=red)], []))[-1]["redirect"] == {
        "response_code": "MOVED_PERMANENTLY",
        "https_redirect": True,
    }
    red2 = (
        {
            "Type": "redirect",
            "RedirectConfig": {
                "Host": "x.example",
                "Port": "8443",
                "Path": "/n",
                "Query": "",
                "StatusCode": "HTTP_302",
            },
        },
    )
    assert routes(translate([listener(default=red2)], []))[-1]["redirect"] == {
        "response_code": "FOUND",
        "port_redirect": 8443,
        "host_redirect": "x.example",
        "path_redirect": "/n",
        "strip_query": True,
    }
    fixed = (
        {
            "Type": "fixed-response",
            "FixedResponseConfig": {"StatusCode": "418", "MessageBody": "tea", "ContentType": "text/plain"},
        },
    )
    r = routes(translate([listener(default=fixed)], []))[-1]
    assert r["direct_response"] == {"status": 418, "body": {"inline_string": "tea"}}
    assert r["response_headers_to_add"][0]["header"] == {"key": "content-type", "value": "text/plain"}


def test_https_listener_carries_its_certificate() -> None:
    out = translate([Listener("l2", "127.0.0.1", 8443, "HTTPS", FWD_A, (), ("CHAIN", "KEY"))], [A])
    tls = out["listeners"][0]["filter_chains"][0]["transport_socket"]["typed_config"]["common_tls_context"]
    assert tls["tls_certificates"][0]["certificate_chain"] == {"inline_string": "CHAIN"}


def hcm(out: dict) -> dict:
    return out["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def test_load_balancer_attributes_and_edge_hardening_reach_the_listener() -> None:
    plain = translate([listener()], [A])
    h = hcm(plain)
    assert (h["codec_type"], h["normalize_path"], h["merge_slashes"]) == ("HTTP1", True, True)
    assert h["common_http_protocol_options"] == {"idle_timeout": "60s",
                                                 "headers_with_underscores_action": "REJECT_REQUEST"}
    assert plain["listeners"][0]["per_connection_buffer_limit_bytes"] == 32768
    assert plain["clusters"][0]["per_connection_buffer_limit_bytes"] == 32768
    tuned = hcm(translate([listener(idle_timeout=5, drop_invalid_headers=True)], [A]))
    assert tuned["common_http_protocol_options"] == {"idle_timeout": "5s",
                                                     "headers_with_underscores_action": "DROP_HEADER"}
    https = Listener("l2", "127.0.0.1", 8443, "HTTPS", FWD_A, (), ("CHAIN", "KEY"))
    for h2, codec, alpn in ((True, "AUTO", ["h2", "http/1.1"]), (False, "HTTP1", ["http/1.1"])):
        out = translate([Listener(**{**https.__dict__, "http2": h2})], [A])
        chain = out["listeners"][0]["filter_chains"][0]
        tls = chain["transport_socket"]["typed_config"]["common_tls_context"]
        assert (hcm(out)["codec_type"], tls["alpn_protocols"]) == (codec, alpn)


def test_sticky_groups_hash_on_the_cookie() -> None:
    sticky = Group("arn:a", "a", stickiness=60.0)
    out = translate([listener()], [sticky])
    assert routes(out)[-1]["route"]["hash_policy"] == [{"cookie": {"name": "AWSALB", "ttl": "60s"}}]
    assert out["clusters"][0]["lb_policy"] == "RING_HASH"


@pytest.mark.parametrize(
    ("pattern", "text", "host", "hit"),
    [
        ("*.example.com", "API.example.com:8080", True, True),
        ("*.example.com", "example.com", True, False),
        ("/img/?.png", "/img/a.png", False, True),
        ("/img/?.png", "/img/ab.png", False, False),
        ("/a.b", "/aXb", False, False),
    ],
)
def test_glob_regex(pattern: str, text: str, host: bool, hit: bool) -> None:
    assert bool(re.fullmatch(glob_regex(pattern, host=host), text)) is hit


@pytest.mark.parametrize(
    ("cidr", "xff", "hit"),
    [
        ("10.0.0.0/8", "10.9.8.7", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.168.4.0/22", "1.2.3.4, 192.168.7.255", True),
        ("192.168.4.0/22", "192.168.8.1", False),
        ("192.168.4.0/22", "192.168.5.1, 8.8.8.8", False),  # only the address Envoy saw counts
        ("127.0.0.1/32", "127.0.0.1", True),
        ("0.0.0.0/0", "8.8.8.8", True),
    ],
)
def test_source_regex(cidr: str, xff: str, hit: bool) -> None:
    assert bool(re.fullmatch(source_regex(cidr), xff)) is hit


def test_health_judgement() -> None:
    h = judge(Health(), "ok", 200, 2, 2)
    assert h.state == INITIAL
    h = judge(h, "ok", 200, 2, 2)
    assert h.state == HEALTHY and describe(h) == {"State": "healthy"}
    h = judge(h, "mismatch", 500, 2, 2)
    assert h.state == HEALTHY
    h = judge(h, "mismatch", 500, 2, 2)
    assert describe(h) == {
        "State": UNHEALTHY,
        "Reason": "Target.ResponseCodeMismatch",
        "Description": "Health checks failed with these codes: [500]",
    }
    assert judge(h, "refused", 0, 2, 2).reason == "Target.FailedHealthChecks"
    assert judge(Health(), "timeout", 0, 2, 1).reason == "Target.Timeout"


def test_matcher() -> None:
    assert parse_matcher("200,202-204") == [(200, 200), (202, 204)]
    assert matches("200-299", 204) and not matches("200", 204)
    for bad in ("", "abc", "600", "300-200"):
        with pytest.raises(ValueError):
            parse_matcher(bad)


def test_condition_checks() -> None:
    with pytest.raises(ValidationError, match="5"):
        checks.check_conditions(
            [
                {"Field": "path-pattern", "Values": ["/1", "/2", "/3"]},
                {"Field": "host-header", "Values": ["a", "b", "c"]},
            ]
        )
    with pytest.raises(ValidationError):
        checks.check_conditions([{"Field": "path-pattern", "Values": ["/1"]}] * 2)
    with pytest.raises(ValidationError):
        checks.check_conditions([{"Field": "nope", "Values": ["x"]}])
    with pytest.raises(ValidationError):
        checks.check_conditions([{"Field": "source-ip", "SourceIpConfig": {"Values": ["nope"]}}])
    with pytest.raises(InvalidConfigurationRequest):
        checks.check_conditions([{"Field": "source-ip", "SourceIpConfig": {"Values": ["::1/128"]}}])
    checks.check_conditions(
        [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X", "Values": ["y"]}}]
    )


def test_action_checks() -> None:
    with pytest.raises(TargetGroupNotFound):
        checks.check_actions(FWD_A, lambda arn: False)
    with pytest.raises(ValidationError):
        checks.check_actions([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "302"}}], bool)
    with pytest.raises(ValidationError):
        checks.check_actions([{"Type": "redirect", "RedirectConfig": {}}], bool)
    with pytest.raises(InvalidConfigurationRequest):
        checks.check_actions([{"Type": "authenticate-oidc"}], bool)
    with pytest.raises(ValidationError):
        checks.check_actions([], bool)
    checks.check_actions(FWD_A, lambda arn: True)


def test_attributes_and_ports() -> None:
    out = checks.attributes(
        checks.TG_ATTRIBUTES, [{"Key": "stickiness.enabled", "Value": "true"}], checks.TG_ATTRIBUTES
    )
    assert out["stickiness.enabled"] == "true"
    for bad in (
        {"Key": "nope", "Value": "1"},
        {"Key": "stickiness.enabled", "Value": "yes"},
        {"Key": "deregistration_delay.timeout_seconds", "Value": "4000"},
    ):
        with pytest.raises(ValidationError):
            checks.attributes(checks.TG_ATTRIBUTES, [bad], checks.TG_ATTRIBUTES)
    assert checks.parse_ports("8000-8999, 443") == [(8000, 8999), (443, 443)]
    assert checks.port_allowed([(8000, 8999)], 8080) and not checks.port_allowed([(8000, 8999)], 80)
    with pytest.raises(ValueError):
        checks.parse_ports("9-1")


def test_certificate_inspection() -> None:
    cert, key = self_signed(["example.test", "127.0.0.1"])
    info = inspect(cert, key)
    assert info["DomainName"] == "example.test" and info["KeyAlgorithm"] == "EC_prime256v1"
    assert info["SubjectAlternativeNames"] == ["example.test"]
    _, other = self_signed(["x"])
    with pytest.raises(ValidationException, match="does not match"):
        inspect(cert, other)
    with pytest.raises(ValidationException):
        inspect(b"garbage", key)
    with pytest.raises(ValidationException):
        inspect(cert + cert, key)
    with pytest.raises(ValidationException, match="expired"):
        inspect(cert, key, now=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=400))
