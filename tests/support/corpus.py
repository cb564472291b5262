"""A corpus of malformed requests, made by mutating real ones (truncation, deep nesting, wrong
types, lone surrogates, huge numbers, bad encodings, bad headers, methods and paths).

Everything here is pure: a request is the bytes to send (:class:`Raw`), built from a method,
a target, headers and a body; the caller signs or adds tokens through the ``finish``
callables it passes in.
"""

from __future__ import annotations

import json
import random
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

# values a field of the wrong type or range may be given (JSON text, spliced in as is)
WRONG = [
    "null",
    "true",
    "-1",
    "0",
    "9223372036854775808",
    "1e400",
    "-1e400",
    "1.5",
    '"x"',
    '""',
    '"\\ud800"',
    '"a\\udfffb"',
    "[]",
    "{}",
    "[null]",
    '{"a": null}',
    '"' + "y" * 5000 + '"',
    "1" + "0" * 5000,
    "[" * 100 + "]" * 100,
]
DEEP = [65, 5_000, 100_000]


@dataclass(frozen=True)
class Raw:
    """One request as bytes, and what it is (for the failure message)."""

    id: str
    data: bytes


def deep(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + "1" + closer * depth


def head(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, sep: bytes = b"\r\n"
) -> bytes:
    lines = [f"{method} {target} HTTP/1.1".encode("latin-1", "replace")]
    lines += [f"{k}: {v}".encode("utf-8", "surrogateescape") for k, v in headers]
    return sep.join(lines) + sep + sep + body


def json_bodies(doc: dict[str, Any], nested: list[tuple[str, ...]] = ()) -> Iterator[tuple[str, bytes]]:
    """Mutations of the JSON document ``doc``: ``(what, body)``."""
    raw = json.dumps(doc).encode()
    for cut in sorted({1, len(raw) // 3, len(raw) // 2, len(raw) - 1}):
        yield f"truncated at {cut}", raw[:cut]
    keys = list(doc) + [".".join(path) for path in nested]
    for key in keys:
        for value in WRONG:
            yield f"{key}={value[:20]}", _splice(doc, key, value)
        for depth in DEEP:
            yield f"{key} nested {depth}", _splice(doc, key, deep(depth))
            yield f"{key} objects nested {depth}", _splice(doc, key, deep(depth, '{"k":', "}"))
    yield "unknown key with a surrogate", _splice(doc, "\ud800", '"v"')
    yield "top level array", b"[" + raw + b"]"
    yield "top level string", b'"' + raw.replace(b'"', b"'") + b'"'
    yield "top level number", b"12345"
    yield "top level null", b"null"
    yield "NaN", raw[:-1] + b', "n": NaN}'
    yield "utf-16", json.dumps(doc).encode("utf-16")
    yield "utf-8 BOM", b"\xef\xbb\xbf" + raw
    yield "latin-1 bytes", raw[:-1] + b', "l": "\xe9"}'
    yield "invalid utf-8", raw[:-1] + b', "b": "\xff\xfe\xc3"}'
    yield "encoded surrogate", raw[:-1] + b', "s": "\xed\xa0\x80"}'
    yield "nul bytes", raw.replace(b":", b"\x00:", 1)
    yield "trailing garbage", raw + b"}}]]"


def _splice(doc: dict[str, Any], key: str, value: str) -> bytes:
    """``doc`` as JSON with the value at ``key`` (``a.b.0.c`` for a nested one) replaced by
    the JSON text ``value``."""
    marker = "\u2603MARK\u2603"
    copy = json.loads(json.dumps(doc))
    path = key.split(".") if key in doc or "." in key else [key]
    target: Any = copy
    for part in path[:-1]:
        target = target[int(part)] if isinstance(target, list) else target[part]
    last = path[-1]
    if isinstance(target, list):
        target[int(last)] = marker
    else:
        target[last] = marker
    return json.dumps(copy).replace(json.dumps(marker), value).encode("utf-8", "surrogatepass")


def methods_and_paths(base_paths: list[str]) -> Iterator[tuple[str, str, str]]:
    """``(what, method, target)`` of bad methods and bad paths."""
    for method in ("TRACE", "OPTIONS", "PROPFIND", "FOO", "get", "CONNECT", "M" * 300, "PATCH"):
        yield f"method {method[:10]}", method, base_paths[0]
    for path in base_paths:
        for bad in (
            "%00",
            "%ff%fe",
            "%2e%2e/%2e%2e",
            "\u00b2",
            "a" * 5000,
            "%",
            "?" + "&" * 2000,
            "//",
            ";x",
        ):
            yield f"path {path[:30]} + {bad[:10]}", "GET", path + bad
    for target in ("*", "http://example.com/", "/\x7f", "/" + "a/" * 3000, "/v2/%zz", "x"):
        yield f"target {target[:20]}", "GET", target


BAD_HEADERS: list[tuple[str, list[tuple[str, str]]]] = [
    ("negative content-length", [("Content-Length", "-1")]),
    ("text content-length", [("Content-Length", "ten")]),
    ("two content-lengths", [("Content-Length", "0"), ("Content-Length", "5")]),
    ("te and cl", [("Transfer-Encoding", "chunked"), ("Content-Length", "0")]),
    ("te gzip chunked", [("Transfer-Encoding", "gzip, chunked")]),
    ("huge header", [("X-Big", "b" * 9000)]),
    ("many headers", [(f"X-H{i}", "v") for i in range(200)]),
    ("nul in header", [("X-Nul", "a\x00b")]),
    ("expect", [("Expect", "100-continue-please")]),
    ("bad range", [("Range", "bytes=--")]),
    ("huge range", [("Range", "bytes=0-99999999999999999999999999")]),
    ("bearer garbage", [("Authorization", "Bearer a.b.c")]),
    ("bearer deep", [("Authorization", "Bearer " + "W" * 4000 + ".e30.AAAA")]),
    ("basic garbage", [("Authorization", "Basic !!!")]),
    ("basic no colon", [("Authorization", "Basic YWRtaW4=")]),
    ("unknown scheme", [("Authorization", "Negotiate abc")]),
    ("content-type garbage", [("Content-Type", "\u2603/\u2603; charset=\u2603")]),
    ("content-encoding gzip", [("Content-Encoding", "gzip")]),
    ("upgrade", [("Connection", "Upgrade"), ("Upgrade", "websocket")]),
]


def dns_packets(seed: int = 10) -> Iterator[tuple[str, bytes]]:
    """Mutations of a DNS query: bit flips, truncations, long names, pointer loops, counts."""
    rng = random.Random(seed)
    name = b"".join(bytes([len(p)]) + p for p in (b"web", b"corpus", b"internal")) + b"\0"
    header = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    query = header + name + struct.pack(">HH", 1, 1)
    for i in range(60):
        data = bytearray(query)
        pos = rng.randrange(len(data))
        data[pos] ^= 1 << rng.randrange(8)
        yield f"bit flip {i} at {pos}", bytes(data)
    for cut in range(0, len(query), 3):
        yield f"truncated at {cut}", query[:cut]
    for labels in ([b"a" * 60] * 5, [b"b" * 63] * 4, [b"c"] * 200, [b"d" * 64]):
        long_name = b"".join(bytes([len(p)]) + p for p in labels) + b"\0"
        yield f"long name {len(long_name)}", header + long_name + struct.pack(">HH", 1, 1)
    yield "pointer loop", header + b"\xc0\x0c" + struct.pack(">HH", 1, 1)
    yield "pointer forward", header + b"\xc0\xff" + struct.pack(">HH", 1, 1)
    for qd in (0, 2, 65535):
        yield (
            f"qdcount {qd}",
            struct.pack(">HHHHHH", 1, 0x0100, qd, 0, 0, 0) + name + struct.pack(">HH", 1, 1),
        )
    for opcode in range(1, 16):
        yield (
            f"opcode {opcode}",
            struct.pack(">HHHHHH", 2, opcode << 11, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1),
        )
    for qtype in (0, 255, 252, 65535, 33, 28, 16):
        yield f"qtype {qtype}", header + name + struct.pack(">HH", qtype, 1)
    for size in (0, 1, 65535):
        opt = b"\0" + struct.pack(">HHIH", 41, size, 0, 0)
        yield (
            f"edns {size}",
            struct.pack(">HHHHHH", 3, 0x0100, 1, 0, 0, 1) + name + struct.pack(">HH", 1, 1) + opt,
        )
    yield "answer not query", struct.pack(">HHHHHH", 4, 0x8100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)
    yield "random", bytes(rng.randrange(256) for _ in range(300))


def status_of(response: bytes) -> int | None:
    """The status of an HTTP response's first line (None: no answer)."""
    if not response.startswith(b"HTTP/"):
        return None
    try:
        return int(response.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


Finish = Callable[[str, str, list[tuple[str, str]], bytes], list[tuple[str, str]]]
"""Adds what a request needs to get past authentication (a token, a signature) to its headers."""
