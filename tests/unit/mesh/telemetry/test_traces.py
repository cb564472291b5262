"""The pure pieces of traces: span validation, the bounded store and its queries, the tree."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mesh.telemetry.traces import (
    BadQuery,
    BadSpans,
    Bounds,
    Query,
    TraceStore,
    parse_spans,
    query_of,
    render,
    summary,
    tree,
)

TRACE = "6762eb058a29c3de627d3547f2081295"
T0 = 1_796_219_774_707_929  # epoch microseconds


def span(id: str = "627d3547f2081295", trace: str = TRACE, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"traceId": trace, "id": id, "name": "web.shop.local", "kind": "CLIENT",
                           "timestamp": T0, "duration": 1126,
                           "localEndpoint": {"serviceName": "front", "ipv4": "192.0.2.2", "port": 0}}
    out.update(kw)
    return {k: v for k, v in out.items() if v is not None}


def body(*spans: dict[str, Any]) -> bytes:
    return json.dumps(list(spans)).encode()


class Clock:
    def __init__(self, now: float = T0 / 1e6) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- validation -----------------------------------------------------------------------------

def test_what_envoy_sends_is_a_list_of_valid_spans():
    envoy = span(annotations=[{"timestamp": T0 + 1269, "value": "cr"}],
                 tags={"http.status_code": "200", "node_id": "arn:task", "upstream_cluster": "web"})
    server = span(kind="SERVER", shared=True, localEndpoint={"serviceName": "web"})
    assert parse_spans(body(envoy, server)) == [envoy, server]


def test_ids_are_lower_cased_as_zipkin_keeps_them():
    (s,) = parse_spans(body(span(id="627D3547F2081295", trace=TRACE.upper(), parentId="ABCDEF0123456789")))
    assert (s["traceId"], s["id"], s["parentId"]) == (TRACE, "627d3547f2081295", "abcdef0123456789")


@pytest.mark.parametrize("raw, where", [
    (b"{not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b'{"traceId": "x"}', "spans: "),  # an object, not a list
    (body(span(id="627d3547f208129")), "spans[0].id"),  # 15 characters
    (body(span(id="627d3547f208129g")), "spans[0].id"),  # not hex
    (body(span(trace="6762eb058a29c3de627d")), "spans[0].traceId"),  # 20: neither 16 nor 32
    (body(span(parentId="12")), "spans[0].parentId"),
    (body(span(), span(kind="SERVERISH")), "spans[1].kind"),
    (body(span(timestamp=-1)), "spans[0].timestamp"),
    (body(span(timestamp="1796219774707929")), "spans[0].timestamp"),  # a string
    (body(span(duration=1.5)), "spans[0].duration"),
    (body(span(tags={"a": 1})), "spans[0].tags.a"),  # tag values are strings
    (body(span(annotations=[{"value": "cr"}])), "spans[0].annotations[0]"),
    (body(span(localEndpoint={"port": 70000})), "spans[0].localEndpoint.port"),
    (body(span(spanId="x")), "spans[0]"),  # an unknown field: a typo is not a span
    (body({"id": "627d3547f2081295"}), "spans[0]"),  # no trace id
    (body(span(name="x" * 300)), "spans[0].name"),
])
def test_what_is_not_a_zipkin_v2_span_is_refused_saying_where(raw: bytes, where: str):
    with pytest.raises(BadSpans) as e:
        parse_spans(raw)
    assert str(e.value).startswith(where)


def test_an_empty_list_is_valid_and_deep_nesting_is_refused_not_crashed():
    assert parse_spans(b"[]") == []
    with pytest.raises(BadSpans):
        parse_spans(b"[" * 100_000 + b"]" * 100_000)


# --- the store ------------------------------------------------------------------------------

def test_spans_of_one_trace_are_kept_together_and_a_repeat_is_kept_once():
    store = TraceStore(clock=Clock())
    client, server = span(), span(kind="SERVER", shared=True, localEndpoint={"serviceName": "web"})
    assert store.add([client, server]) == 2
    assert store.add([dict(client)]) == 0
    assert store.trace(TRACE) == [client, server]
    assert store.trace(TRACE[16:]) == [client, server]  # a 64-bit id finds its 128-bit trace
    assert store.trace("0" * 32) is None
    assert store.stats()["duplicates"] == 1 and store.span_count == 2


def test_the_store_drops_whole_traces_oldest_first_past_its_span_bound():
    clock = Clock()
    store = TraceStore(Bounds(spans=4), clock=clock)
    for i in range(3):
        clock.now += 1
        trace = f"{i:032x}"
        store.add([span(id=f"{i:015x}a", trace=trace), span(id=f"{i:015x}b", trace=trace)])
    assert store.trace(f"{0:032x}") is None  # 6 spans > 4: the first trace went
    assert store.trace(f"{1:032x}") is not None and store.trace(f"{2:032x}") is not None
    assert store.span_count == 4 and store.evicted == 2


def test_the_store_keeps_its_byte_bound():
    one = len(json.dumps(span(), separators=(",", ":")))
    store = TraceStore(Bounds(bytes=one * 3), clock=Clock())
    for i in range(10):
        store.add([span(trace=f"{i:032x}")])
        assert store.byte_count <= one * 3
    assert len(store) == 3 and store.trace(f"{9:032x}") is not None


def test_traces_older_than_the_age_bound_are_gone_and_their_names_with_them():
    clock = Clock()
    store = TraceStore(Bounds(age=60), clock=clock)
    store.add([span()])
    assert store.services() == ["front"] and store.span_names("front") == ["web.shop.local"]
    clock.now += 61
    assert store.trace(TRACE) is None
    assert store.services() == [] and store.span_names("front") == [] and store.span_count == 0


def test_bounds_must_be_positive():
    with pytest.raises(ValueError):
        Bounds(spans=0)


def test_services_span_names_and_remote_services():
    store = TraceStore(clock=Clock())
    store.add([span(), span(id="1" * 16, name="get /cart", remoteEndpoint={"serviceName": "web"}),
               span(id="2" * 16, kind="SERVER", localEndpoint={"serviceName": "web"})])
    assert store.services() == ["front", "web"]
    assert store.span_names("front") == ["get /cart", "web.shop.local"]
    assert store.span_names("FRONT") == ["get /cart", "web.shop.local"]
    assert store.remote_services("front") == ["web"]


# --- queries --------------------------------------------------------------------------------

def test_query_parameters_are_zipkins_and_bad_ones_are_refused():
    q = query_of({"serviceName": "Web", "spanName": "all", "minDuration": "1000", "limit": "5000",
                  "endTs": "1796219774708", "lookback": "60000"})
    assert q == Query(service="web", min_duration=1000, end_ts=1796219774708, lookback=60000, limit=1000)
    assert query_of({}) == Query()
    for bad in ({"limit": "0"}, {"limit": "ten"}, {"minDuration": "-1"}, {"endTs": "1e9"}, {"lookback": "0"}):
        with pytest.raises(BadQuery):
            query_of(bad)


def test_traces_are_found_by_service_name_duration_and_window_newest_first():
    clock = Clock(T0 / 1e6 + 10)
    store = TraceStore(clock=clock)
    store.add([span(trace="a" * 32, timestamp=T0, duration=500),
               span(trace="a" * 32, id="1" * 16, kind="SERVER", shared=True,
                    localEndpoint={"serviceName": "web"}, timestamp=T0 + 100, duration=300)])
    store.add([span(trace="b" * 32, timestamp=T0 + 5_000_000, duration=90_000, name="get /slow")])
    ids = [t[0]["traceId"] for t in store.traces(Query())]
    assert ids == ["b" * 32, "a" * 32]
    assert [t[0]["traceId"] for t in store.traces(Query(service="web"))] == ["a" * 32]
    assert [t[0]["traceId"] for t in store.traces(Query(span_name="get /slow"))] == ["b" * 32]
    assert [t[0]["traceId"] for t in store.traces(Query(min_duration=50_000))] == ["b" * 32]
    assert [t[0]["traceId"] for t in store.traces(Query(max_duration=1_000))] == ["a" * 32]
    assert len(store.traces(Query(limit=1))) == 1
    # a window that ends before the second trace began: only the first
    end_ms = (T0 + 1_000_000) // 1000
    assert [t[0]["traceId"] for t in store.traces(Query(end_ts=end_ms, lookback=2000))] == ["a" * 32]
    assert store.traces(Query(end_ts=end_ms, lookback=1)) == []
    assert store.traces(Query(service="nobody")) == []


# --- the tree -------------------------------------------------------------------------------

def shaped(nodes) -> list:
    return [(n.span["id"], n.span.get("kind"), shaped(n.children)) for n in nodes]


def test_the_shared_server_half_hangs_under_the_client_half_and_children_under_the_server():
    root = span(id="a" * 16, kind="SERVER", localEndpoint={"serviceName": "front"})
    client = span(id="b" * 16, parentId="a" * 16, timestamp=T0 + 10)
    server = span(id="b" * 16, parentId="a" * 16, kind="SERVER", shared=True, timestamp=T0 + 20,
                  localEndpoint={"serviceName": "web"})
    downstream = span(id="c" * 16, parentId="b" * 16, timestamp=T0 + 30)
    roots = tree([downstream, server, client, root])
    assert shaped(roots) == [("a" * 16, "SERVER", [("b" * 16, "CLIENT", [("b" * 16, "SERVER", [
        ("c" * 16, "CLIENT", [])])])])]


def test_spans_whose_parent_is_missing_are_roots_in_start_order_and_cycles_end():
    late = span(id="1" * 16, parentId="f" * 16, timestamp=T0 + 50)
    early = span(id="2" * 16, parentId="e" * 16, timestamp=T0)
    assert [n.span["id"] for n in tree([late, early])] == ["2" * 16, "1" * 16]
    x = span(id="3" * 16, parentId="4" * 16)
    y = span(id="4" * 16, parentId="3" * 16, timestamp=T0 + 1)
    roots = tree([x, y])
    assert sum(1 for r in roots for _ in r.walk()) == 2  # nothing lost, nothing twice


def test_render_draws_services_kinds_offsets_and_durations():
    client = span(tags={"http.status_code": "200"})
    server = span(kind="SERVER", shared=True, timestamp=T0 + 250, duration=819,
                  localEndpoint={"serviceName": "web"}, tags={"http.status_code": "503", "error": "true"})
    assert render([server, client]) == [
        "front CLIENT web.shop.local 200  +0.000ms 1.126ms",
        "  web SERVER web.shop.local 503 error  +0.250ms 0.819ms",
    ]
    assert render([]) == []


def test_summary_spans_first_start_to_last_end():
    client = span(duration=1000)
    server = span(kind="SERVER", shared=True, timestamp=T0 + 100, duration=2000,
                  localEndpoint={"serviceName": "web"})
    assert summary([server, client]) == {
        "traceId": TRACE, "service": "front", "name": "web.shop.local", "timestamp": T0,
        "duration": 2100, "spans": 2, "services": ["front", "web"]}


def test_the_cli_reads_durations_and_prints_each_trace_under_a_header():
    from mesh.telemetry.traces_cli import micros, show

    assert (micros("10ms"), micros("1.5s"), micros("15m", "s"), micros("250")) == (
        10_000, 1_500_000, 900_000_000, 250_000)
    for bad in ("soon", "-1s", "5 parsecs", ""):
        with pytest.raises(ValueError):
            micros(bad)
    client = span(tags={"http.status_code": "200"})
    server = span(kind="SERVER", shared=True, timestamp=T0 + 250, duration=819,
                  localEndpoint={"serviceName": "web"})
    assert show([[client, server], []]) == [
        f"trace {TRACE}  front web.shop.local  2 spans (front, web)  1.126ms  2026-12-02 13:56:14.707Z",
        "  front CLIENT web.shop.local 200  +0.000ms 1.126ms",
        "    web SERVER web.shop.local  +0.250ms 0.819ms",
        "",
    ]


def test_times_are_made_integers_and_deeply_nested_values_are_refused():
    (s,) = parse_spans(b'[{"traceId": "%s", "id": "%s", "timestamp": 1e3, "duration": 2.0, '
                       b'"annotations": [{"timestamp": 5e0, "value": "cr"}]}]' % (TRACE.encode(), b"a" * 16))
    assert (s["timestamp"], s["duration"], s["annotations"][0]["timestamp"]) == (1000, 2, 5)
    assert type(s["timestamp"]) is int
    deep = b'[{"traceId": "%s", "id": "%s", "tags": ' % (TRACE.encode(), b"a" * 16)
    with pytest.raises(BadSpans):
        parse_spans(deep + b'{"a": ' * 900 + b'"x"' + b"}" * 900 + b"}]")
