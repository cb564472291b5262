"""Route specs beyond App Mesh's model: every match and action feature accepted, bad input refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mesh.appmesh_checks import MAX_PROGRAM_SIZE, check_regex, program_size
from mesh.appmesh_errors import BadRequestException
from mesh.appmesh_routespec import check_route_spec

TARGETS = {"weightedTargets": [{"virtualNode": "v1", "weight": 90}, {"virtualNode": "v2", "weight": 10}]}
SECONDS = {"unit": "s", "value": 2}
FULL_HTTP = {"priority": 5, "httpRoute": {
    "match": {
        "path": {"regex": "^/api/v[0-9]+/.*$"}, "method": "POST", "scheme": "http", "port": 8080,
        "headers": [{"name": "x-canary", "match": {"exact": "yes"}},
                    {"name": "x-user", "match": {"prefix": "beta-"}, "invert": True},
                    {"name": "x-host", "match": {"suffix": ".local"}},
                    {"name": "x-re", "match": {"regex": "a+b"}},
                    {"name": "x-n", "match": {"range": {"start": 1, "end": 10}}},
                    {"name": "x-present"}],
        "queryParameters": [{"name": "debug", "match": {"exact": "1"}}, {"name": "trace"}]},
    "action": TARGETS,
    "retryPolicy": {"maxRetries": 3, "perRetryTimeout": {"unit": "ms", "value": 500},
                    "httpRetryEvents": ["server-error", "gateway-error"],
                    "tcpRetryEvents": ["connection-error"]},
    "timeout": {"perRequest": SECONDS, "idle": {"unit": "s", "value": 60}}}}
GRPC = {"grpcRoute": {
    "match": {"serviceName": "shop.Cart", "methodName": "Add",
              "metadata": [{"name": "tenant", "match": {"exact": "a"}}]},
    "action": TARGETS,
    "retryPolicy": {"maxRetries": 2, "perRetryTimeout": SECONDS, "grpcRetryEvents": ["unavailable"]},
    "timeout": {"perRequest": SECONDS}}}
TCP = {"tcpRoute": {"action": TARGETS, "timeout": {"idle": SECONDS}}}


def with_(spec: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of ``spec`` with the dotted ``path`` set to ``value`` (None deletes it)."""
    out = copy.deepcopy(spec)
    node: Any = out
    *parents, last = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return out


@pytest.mark.parametrize("spec", [
    FULL_HTTP, with_(FULL_HTTP, "httpRoute.match.path", {"exact": "/health"}),
    {"http2Route": {"match": {"prefix": "/"}, "action": TARGETS}}, GRPC,
    {"grpcRoute": {"match": {}, "action": TARGETS}}, TCP,
])
def test_every_route_kind_and_match_app_mesh_has_is_accepted(spec: dict[str, Any]):
    assert check_route_spec(copy.deepcopy(spec)) == spec


HTTP_MATCH = "httpRoute.match"


@pytest.mark.parametrize("spec, words", [
    (with_(FULL_HTTP, f"{HTTP_MATCH}.prefix", "/"), "exactly one of prefix, path"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", None), "exactly one of prefix, path"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", {"exact": "no-slash"}), "must start with '/'"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", {"exact": "/a", "regex": "a"}), "exactly one of exact, regex"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", {"regex": "(unclosed"}), "missing ): (unclosed"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", {"regex": r"(a)\1"}), "invalid escape sequence: \\1"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.3.match", {"regex": "foo(?=bar)"}),
     "invalid perl operator: (?="),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.3.match", {"regex": r"\u0041"}), "invalid escape sequence: \\u"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.3.match", {"regex": r"[\U00000041-\U00000043]"}),
     "invalid escape sequence: \\U"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.path", {"regex": r"/\N{LATIN SMALL LETTER A}"}),
     "invalid escape sequence: \\N"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.0.match", {"exact": "a", "prefix": "b"}), "exactly one of"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.4.match", {"range": {"start": 5, "end": 5}}), "start below"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.headers.0.name", " "), "must not be empty"),
    (with_(FULL_HTTP, f"{HTTP_MATCH}.queryParameters.0.match", {}), "must have exact"),
    (with_(FULL_HTTP, "httpRoute.retryPolicy.httpRetryEvents", ["bad-event"]), "not one of"),
    (with_(with_(FULL_HTTP, "httpRoute.retryPolicy.httpRetryEvents", None),
           "httpRoute.retryPolicy.tcpRetryEvents", None), "at least one retry event"),
    (with_(FULL_HTTP, "httpRoute.retryPolicy.perRetryTimeout", {"value": 3}), "unit (s or ms)"),
    (with_(FULL_HTTP, "httpRoute.timeout.idle", {"unit": "s"}), "unit (s or ms) and a value"),
    (with_(GRPC, "grpcRoute.match.serviceName", None), "methodName needs a serviceName"),
    (with_(GRPC, "grpcRoute.match.metadata.0.match", {"regex": "(?<=x)y"}), "invalid perl operator: (?<="),
    (with_(TCP, "tcpRoute.retryPolicy", FULL_HTTP["httpRoute"]["retryPolicy"]), "no retryPolicy"),
    (with_(TCP, "tcpRoute.timeout", {"perRequest": SECONDS}), "only idle"),
    (with_(TCP, "tcpRoute.action.weightedTargets",
           [{"virtualNode": f"n{i}", "weight": 1} for i in range(11)]), "at most 10"),
    (with_(TCP, "tcpRoute.action.weightedTargets", [{"virtualNode": "a", "weight": 0}]), "above 0"),
    (with_(TCP, "tcpRoute.action.weightedTargets", [{"virtualNode": "a", "weight": 60},
                                                   {"virtualNode": "b", "weight": 60}]), "at most 100"),
    (with_(TCP, "tcpRoute.action.weightedTargets", [{"virtualNode": "a", "weight": 10},
                                                   {"virtualNode": "a", "weight": 10}]), "twice"),
])
def test_bad_routes_are_refused_with_a_message_naming_the_fault(spec: dict[str, Any], words: str):
    with pytest.raises(BadRequestException) as e:
        check_route_spec(spec)
    assert words in str(e.value)


@pytest.mark.parametrize("pattern", [
    r"(a)\1", r"(?P<x>a)(?P=x)", "a(?=b)", "a(?!b)", "(?<=a)b", "(?<!a)b", "(?>ab)", "a*+", "a++", "a?+",
    "a{2}+", "(?(1)a|b)", "(?#note)a", r"a\Z", "a{1001}", "a{1,2000}", "(?x)a b", "(?a:x)",
    r"\u0041", r"\N{DASH}", "[", "a)",
])
def test_what_re2_refuses_is_refused(pattern: str):
    with pytest.raises(BadRequestException) as e:
        check_regex(pattern, "regex")
    assert "RE2" in str(e.value)


@pytest.mark.parametrize(("pattern", "size"), [(".{49}", 102), (".{98}", 200), ("(abc|def|ghi){30}", 334),
                                               ("[a-z]{1,1000}", None)])
def test_a_regex_over_envoys_program_size_is_refused_with_its_size(pattern: str, size: int | None):
    # the sizes are Envoy 1.40's own, from its NACKs ("RE2 program size of 200 > max program size of 100")
    assert program_size(pattern) > MAX_PROGRAM_SIZE
    if size is not None:
        assert program_size(pattern) == size
    with pytest.raises(BadRequestException) as e:
        check_regex(pattern, "regex")
    assert f"size {program_size(pattern)}" in str(e.value)


@pytest.mark.parametrize("pattern", [
    "^/api/.*$", "a+?", "[(?=]x", r"\(\?=", "[a-z]{1,20}", ".{48}", "(?P<name>x)", "(?i)abc", "(?ms:a.b)",
    "(?:x)", r"a\+\+", "}+",
    r"[\]1]\d",
])
def test_what_re2_accepts_passes(pattern: str):
    check_regex(pattern, "regex")
