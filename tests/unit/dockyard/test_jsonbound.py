"""JSON from the network is parsed within bounds, or refused with one JsonError (a ValueError)."""

from __future__ import annotations

import json

import pytest

from dockyard import jsonbound
from dockyard.jsonbound import JsonError


def test_ordinary_documents_parse_as_json_loads_does():
    doc = {"a": [1, 2.5, "x", None, True, {"b": {"c": []}}], "é": "ü😀"}
    raw = json.dumps(doc).encode()
    assert jsonbound.loads(raw) == doc
    assert jsonbound.loads(raw.decode()) == doc
    assert jsonbound.loads(json.dumps(doc, ensure_ascii=False).encode()) == doc
    assert jsonbound.loads(b'"\\ud83d\\ude00"') == "😀"  # a surrogate pair is one character


@pytest.mark.parametrize("depth", [65, 1_000, 5_000, 100_000])
def test_nesting_deeper_than_the_bound_is_refused(depth: int):
    for opener, closer in (("[", "]"), ('{"k":', "}")):
        with pytest.raises(JsonError, match="nests deeper"):
            jsonbound.loads((opener * depth + "1" + closer * depth).encode())


def test_nesting_up_to_the_bound_parses():
    value = jsonbound.loads(b"[" * 64 + b"]" * 64)
    for _ in range(63):
        value = value[0]
    assert value == []
    with pytest.raises(JsonError):
        jsonbound.loads(b"[" * 5 + b"]" * 5, max_depth=4)


def test_many_brackets_inside_strings_do_not_count_as_nesting():
    assert jsonbound.loads(json.dumps({"s": "[" * 10_000}).encode()) == {"s": "[" * 10_000}


def test_a_document_over_the_size_bound_is_refused():
    with pytest.raises(JsonError, match="exceeds"):
        jsonbound.loads(b" " * 101 + b"1", max_bytes=100)


@pytest.mark.parametrize("raw", [
    b'{"a": "\\ud800"}', b'{"\\udfff": 1}', b'["ok", ["\\uDBFF"]]', b'"x\\ud800y"',
])
def test_a_lone_surrogate_is_refused_unless_allowed(raw: bytes):
    with pytest.raises(JsonError, match="surrogate"):
        jsonbound.loads(raw)
    assert jsonbound.loads(raw, surrogates=True) == json.loads(raw)


@pytest.mark.parametrize("raw", [
    b"", b"{", b'{"a": 1,}', b"NaN", b"[Infinity]", b"-Infinity", b"{} x", b"\xff\xfe{}",
    b'"\xed\xa0\x80"', b"1" * 5000, b"[1e99999999999999999999]x", b"{\x00}",
])
def test_what_is_not_json_is_one_json_error(raw: bytes):
    with pytest.raises(JsonError) as e:
        jsonbound.loads(raw)
    assert isinstance(e.value, ValueError)
    assert "\n" not in str(e.value)


def test_check_bounds_values_decoded_elsewhere():
    jsonbound.check({"a": [1, {"b": "c"}]})
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(JsonError):
        jsonbound.check(deep)
    with pytest.raises(JsonError):
        jsonbound.check({"k": ("\ud800",)})
