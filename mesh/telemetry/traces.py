"""Traces: Zipkin v2 spans checked, kept in a bounded store, queried and drawn as a tree (pure).

* :func:`parse_spans` turns a request body into spans or raises :class:`BadSpans` (not JSON, not
  a list of Zipkin v2 spans by :data:`mesh.telemetry.traces_schema.SCHEMA`); ids come out
  lower-case, as Zipkin stores them.
* :class:`TraceStore` keeps spans by trace, bounded three ways (:class:`Bounds`): a number of
  spans, a number of bytes (each span counted at the size of its JSON) and an age. When a bound
  is passed, whole traces go, oldest first (first span received), as in Zipkin's in-memory
  storage; a span seen before (same trace, id, kind and ``shared``) is not kept twice.
* :meth:`TraceStore.traces` answers ``GET /api/v2/traces`` (``serviceName``, ``spanName``,
  ``minDuration``, ``maxDuration``, ``endTs``, ``lookback``, ``limit``: Zipkin's parameters and
  defaults), :func:`query_of` reads those parameters or raises :class:`BadQuery`.
* :func:`tree` orders one trace's spans parent before child (a shared SERVER half under the
  CLIENT half with the same id, as Zipkin shows them; a span whose parent is missing is a
  root), :func:`render` draws it with offsets and durations.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter, OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jsonschema_rs

from mesh.telemetry.traces_schema import SCHEMA

__all__ = [
    "BadQuery", "BadSpans", "Bounds", "Node", "Query", "TraceStore", "parse_spans", "query_of",
    "render", "summary", "tree",
]

Span = dict[str, Any]
_VALIDATOR = jsonschema_rs.validator_for(SCHEMA)
_ID_FIELDS = ("traceId", "id", "parentId")
_TIMES = ("timestamp", "duration")
DEFAULT_LOOKBACK_MS = 86_400_000  # Zipkin's: a day
DEFAULT_LIMIT = 10
MAX_LIMIT = 1000


class BadSpans(ValueError):
    """The body is not a list of Zipkin v2 spans (the message says where)."""


class BadQuery(ValueError):
    """A query parameter is malformed."""


def _where(error: Any) -> str:
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.instance_path)
    return f"spans{path}" if path else "spans"


def parse_spans(body: bytes) -> list[Span]:
    """The spans of a ``POST /api/v2/spans`` body (a JSON list of Zipkin v2 spans).

    Raises :class:`BadSpans` naming the first problem: not UTF-8 JSON, nested too deep, or the
    schema's first error (its place, e.g. ``spans[3].id``). The schema is checked by
    ``jsonschema_rs`` (Rust: about 1.3 µs a span, where ``jsonschema`` took 276; bench/traces.py).
    Ids are lower-cased and times made integers (``1e3`` is 1000); nothing else is changed."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as e:
        raise BadSpans(f"not JSON: {e}") from None
    try:
        error = next(iter(_VALIDATOR.iter_errors(data)), None)
    except ValueError as e:  # the validator's own depth limit ("Recursion limit reached")
        raise BadSpans(f"spans: {e}") from None
    if error is not None:
        raise BadSpans(f"{_where(error)}: {error.message[:200]}")
    for span in data:
        for key in _ID_FIELDS:
            if key in span:
                span[key] = span[key].lower()
        for key in _TIMES:
            if key in span:
                span[key] = int(span[key])
        for note in span.get("annotations", ()):
            note["timestamp"] = int(note["timestamp"])
    return data


def service_of(span: Mapping[str, Any]) -> str:
    return str((span.get("localEndpoint") or {}).get("serviceName") or "")


def remote_service_of(span: Mapping[str, Any]) -> str:
    return str((span.get("remoteEndpoint") or {}).get("serviceName") or "")


# --- the store ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bounds:
    """How much the store keeps: at most ``spans`` spans and ``bytes`` bytes of span JSON, each
    trace for at most ``age`` seconds after its first span arrived."""

    spans: int = 50_000
    bytes: int = 32 * 1024 * 1024
    age: float = 3600.0

    def __post_init__(self) -> None:
        if self.spans < 1 or self.bytes < 1 or self.age <= 0:
            raise ValueError("trace store bounds must be positive")


class _Meta(NamedTuple):
    """What the queries read of a span, kept beside its JSON."""

    service: str
    name: str
    remote: str
    timestamp: int | None
    duration: int | None


@dataclass
class _Trace:
    first: float  # when its first span arrived (store clock)
    blobs: list[bytes] = field(default_factory=list)  # each span's compact JSON
    meta: list[_Meta] = field(default_factory=list)
    keys: set[tuple[str, str, bool]] = field(default_factory=set)
    bytes: int = 0
    latest: int = 0  # the latest span timestamp (its place in a query's answer)

    def spans(self) -> list[Span]:
        return [json.loads(b) for b in self.blobs]


def _key(span: Mapping[str, Any]) -> tuple[str, str, bool]:
    return span["id"], str(span.get("kind", "")), bool(span.get("shared", False))


def _meta(span: Mapping[str, Any]) -> _Meta:
    return _Meta(service_of(span).lower(), str(span.get("name") or "").lower(),
                 remote_service_of(span).lower(), span.get("timestamp"), span.get("duration"))


@dataclass(frozen=True)
class Query:
    """``GET /api/v2/traces``'s parameters; times in epoch milliseconds, durations in
    microseconds (Zipkin's units)."""

    service: str = ""
    span_name: str = ""
    min_duration: int | None = None
    max_duration: int | None = None
    end_ts: int | None = None  # None: now
    lookback: int = DEFAULT_LOOKBACK_MS
    limit: int = DEFAULT_LIMIT


def _int(params: Mapping[str, str], name: str, low: int = 0) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise BadQuery(f"{name} must be a whole number, not {raw[:40]!r}") from None
    if value < low or value > 2**63 - 1:
        raise BadQuery(f"{name} must be at least {low}")
    return value


def query_of(params: Mapping[str, str]) -> Query:
    """A :class:`Query` from request parameters; :class:`BadQuery` for a malformed one."""
    limit = _int(params, "limit", 1)
    lookback = _int(params, "lookback", 1)
    span_name = params.get("spanName", "")
    return Query(
        service=params.get("serviceName", "").lower(),
        span_name="" if span_name == "all" else span_name.lower(),
        min_duration=_int(params, "minDuration"), max_duration=_int(params, "maxDuration"),
        end_ts=_int(params, "endTs"),
        lookback=DEFAULT_LOOKBACK_MS if lookback is None else lookback,
        limit=min(MAX_LIMIT, DEFAULT_LIMIT if limit is None else limit))


class TraceStore:
    """Spans by trace id in memory, within :class:`Bounds` (module docstring). Each span is
    kept as its compact JSON (what the byte bound counts) and the few fields the queries read:
    a third of the memory of the decoded dict. ``clock`` is the store's time source
    (``time.time`` by default; a test passes its own)."""

    def __init__(self, bounds: Bounds | None = None, clock: Any = time.time) -> None:
        self.bounds = bounds or Bounds()
        self.clock = clock
        self._traces: OrderedDict[str, _Trace] = OrderedDict()
        self.span_count = 0
        self.byte_count = 0
        self.accepted = 0
        self.duplicates = 0
        self.evicted = 0  # spans dropped by a bound
        self._services: Counter[str] = Counter()
        self._names: Counter[tuple[str, str]] = Counter()
        self._remote: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return len(self._traces)

    def add(self, spans: Iterable[Span]) -> int:
        """Keep ``spans`` (checked by :func:`parse_spans`); returns how many were new. Then
        evicts until the store is within its bounds."""
        now = self.clock()
        added = 0
        for span in spans:
            trace = self._traces.get(span["traceId"])
            if trace is None:
                trace = self._traces[span["traceId"]] = _Trace(now)
            key = _key(span)
            if key in trace.keys:
                self.duplicates += 1
                continue
            blob = json.dumps(span, separators=(",", ":")).encode()
            meta = _meta(span)
            trace.keys.add(key)
            trace.blobs.append(blob)
            trace.meta.append(meta)
            trace.bytes += len(blob)
            trace.latest = max(trace.latest, meta.timestamp or 0)
            self.span_count += 1
            self.byte_count += len(blob)
            self._count(meta, 1)
            added += 1
        self.accepted += added
        self.expire(now)
        return added

    def _count(self, meta: _Meta, step: int) -> None:
        service = meta.service
        for counter, key, present in ((self._services, service, service),
                                      (self._names, (service, meta.name), service and meta.name),
                                      (self._remote, (service, meta.remote), service and meta.remote)):
            if not present:
                continue
            counter[key] += step  # type: ignore[index]
            if counter[key] <= 0:  # type: ignore[index]
                del counter[key]  # type: ignore[attr-defined]

    def _drop_oldest(self) -> None:
        _, trace = self._traces.popitem(last=False)
        self.span_count -= len(trace.blobs)
        self.byte_count -= trace.bytes
        self.evicted += len(trace.blobs)
        for meta in trace.meta:
            self._count(meta, -1)

    def expire(self, now: float | None = None) -> None:
        """Drop the oldest traces while a bound is passed (age, spans, bytes)."""
        now = self.clock() if now is None else now
        oldest = now - self.bounds.age
        while self._traces:
            first = next(iter(self._traces.values()))
            if (first.first >= oldest and self.span_count <= self.bounds.spans
                    and self.byte_count <= self.bounds.bytes):
                return
            self._drop_oldest()

    # -- reads ---------------------------------------------------------------------------
    def trace(self, trace_id: str) -> list[Span] | None:
        """The spans of one trace (id in any case, a 64-bit id matching the lower half of a
        128-bit one as Zipkin does), or None."""
        self.expire()
        tid = trace_id.lower()
        found = self._traces.get(tid)
        if found is None and len(tid) == 16:
            found = next((t for k, t in self._traces.items() if k.endswith(tid)), None)
        return None if found is None else found.spans()

    def services(self) -> list[str]:
        self.expire()
        return sorted(self._services)

    def span_names(self, service: str) -> list[str]:
        self.expire()
        service = service.lower()
        return sorted(n for s, n in self._names if s == service)

    def remote_services(self, service: str) -> list[str]:
        self.expire()
        service = service.lower()
        return sorted(r for s, r in self._remote if s == service)

    def traces(self, query: Query) -> list[list[Span]]:
        """The newest traces (by their latest span timestamp) with a span that matches every
        given criterion inside ``[endTs - lookback, endTs]``, at most ``limit``."""
        self.expire()
        end_us = (int(self.clock() * 1000) if query.end_ts is None else query.end_ts) * 1000
        start_us = end_us - query.lookback * 1000
        found = (t for t in self._traces.values()
                 if any(_matches(m, query, start_us, end_us) for m in t.meta))
        newest = heapq.nlargest(query.limit, found, key=lambda t: t.latest)
        return [trace.spans() for trace in newest]

    def stats(self) -> dict[str, int]:
        return {"traces": len(self._traces), "spans": self.span_count, "bytes": self.byte_count,
                "accepted": self.accepted, "duplicates": self.duplicates, "evicted": self.evicted}


def _matches(m: _Meta, q: Query, start_us: int, end_us: int) -> bool:
    if m.timestamp is None or not start_us <= m.timestamp <= end_us:
        return False
    if q.service and q.service not in (m.service, m.remote):
        return False
    if q.span_name and m.name != q.span_name:
        return False
    if q.min_duration is not None and (m.duration is None or m.duration < q.min_duration):
        return False
    return not (q.max_duration is not None and (m.duration is None or m.duration > q.max_duration))


# --- the tree -------------------------------------------------------------------------------

@dataclass
class Node:
    """One span in a trace's tree and the spans under it, in start order."""

    span: Span
    children: list[Node] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, Node]]:
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


def _start(node: Node) -> tuple[int, str]:
    return int(node.span.get("timestamp") or 0), node.span["id"]


def tree(spans: Iterable[Span]) -> list[Node]:
    """The roots of one trace's tree. Each span hangs under its ``parentId``; the ``shared``
    half of an RPC (the server side, ``shared: true``) hangs under the other half with the
    same id, and children of that id under the server half (the deepest of them). Spans whose
    parent is not there are roots. Siblings and roots are in start order."""
    nodes = [Node(s) for s in spans]
    by_id: dict[str, list[Node]] = {}
    for n in nodes:
        by_id.setdefault(n.span["id"], []).append(n)
    for group in by_id.values():  # unshared first: the client half before the shared server half
        group.sort(key=lambda n: (bool(n.span.get("shared")), _start(n)))
    parent_of: dict[int, Node | None] = {}
    for n in nodes:
        group = by_id[n.span["id"]]
        index = group.index(n)
        parent = n.span.get("parentId")
        if index > 0:  # a shared half: under the half before it
            parent_of[id(n)] = group[index - 1]
        elif parent and parent != n.span["id"] and parent in by_id:
            parent_of[id(n)] = by_id[parent][-1]
        else:
            parent_of[id(n)] = None
    for n in nodes:  # parents that lead back to the span itself: it becomes a root
        seen, up = {id(n)}, parent_of[id(n)]
        while up is not None and id(up) not in seen:
            seen.add(id(up))
            up = parent_of[id(up)]
        if up is n:
            parent_of[id(n)] = None
    roots: list[Node] = []
    for n in nodes:
        up = parent_of[id(n)]
        (roots if up is None else up.children).append(n)
    for n in nodes:
        n.children.sort(key=_start)
    return sorted(roots, key=_start)


def _ms(us: int | float) -> str:
    return f"{us / 1000:.3f}ms"


def render(spans: list[Span]) -> list[str]:
    """Lines drawing one trace: per span, indented under its parent, its service, kind and
    name, its start offset from the trace's first span and its duration."""
    if not spans:
        return []
    starts = [int(s["timestamp"]) for s in spans if s.get("timestamp") is not None]
    origin = min(starts) if starts else 0
    lines: list[str] = []
    for root in tree(spans):
        for depth, node in root.walk():
            s = node.span
            kind = s.get("kind", "LOCAL")
            status = (s.get("tags") or {}).get("http.status_code")
            offset = "?" if s.get("timestamp") is None else "+" + _ms(int(s["timestamp"]) - origin)
            took = "?" if s.get("duration") is None else _ms(int(s["duration"]))
            extra = f" {status}" if status else ""
            error = " error" if "error" in (s.get("tags") or {}) else ""
            lines.append(f"{'  ' * depth}{service_of(s) or '?'} {kind} {s.get('name') or '-'}"
                         f"{extra}{error}  {offset} {took}")
    return lines


def summary(spans: list[Span]) -> dict[str, Any]:
    """A trace in one line's worth: id, root span's service and name, start (epoch µs),
    duration (µs: first start to last end), span count and services."""
    roots = tree(spans)
    root = roots[0].span if roots else spans[0]
    timed = [s for s in spans if s.get("timestamp") is not None]
    starts = [int(s["timestamp"]) for s in timed]
    ends = [int(s["timestamp"]) + int(s.get("duration") or 0) for s in timed]
    return {"traceId": root["traceId"], "service": service_of(root), "name": root.get("name", ""),
            "timestamp": min(starts) if starts else None,
            "duration": (max(ends) - min(starts)) if starts else None,
            "spans": len(spans), "services": sorted({service_of(s) for s in spans if service_of(s)})}
