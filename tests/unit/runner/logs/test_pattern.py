"""CloudWatch filter patterns: terms, quoted phrases, exclusions, alternatives, JSON selectors."""

from __future__ import annotations

import pytest

from runner.logs.pattern import MAX_PATTERN, PatternError, compile


def m(pattern: str, message: str) -> bool:
    return compile(pattern).matches(message)


def test_an_empty_pattern_matches_everything() -> None:
    assert m("", "anything") and m("   ", "")


def test_a_term_matches_messages_containing_it_case_sensitively() -> None:
    assert m("ERROR", "[ERROR] disk full")
    assert not m("ERROR", "[error] disk full")


def test_several_terms_must_all_appear() -> None:
    assert m("ERROR disk", "ERROR: disk full")
    assert not m("ERROR disk", "ERROR: memory")


def test_a_quoted_phrase_is_one_term_with_its_spaces_and_escapes() -> None:
    assert m('"disk full"', "ERROR: disk full now")
    assert not m('"disk full"', "disk is full")
    assert m(r'"say \"hi\""', 'they say "hi" to you')
    assert m('"a-b [c]"', "x a-b [c] y")


def test_an_excluded_term_rejects_messages_that_contain_it() -> None:
    assert m("ERROR -timeout", "ERROR disk")
    assert not m("ERROR -timeout", "ERROR timeout reached")
    assert m('-"health check"', "GET /")
    assert not m('-"health check"', "a health check")


def test_optional_terms_open_alternatives_and_the_terms_after_them_join_them() -> None:
    p = compile("?ERROR ?WARN")
    assert p.matches("WARN low memory") and p.matches("ERROR x") and not p.matches("INFO ok")
    # the AWS CDK's anyTermGroup(["ERROR", "MainThread"], ["WARN", "Deadlock"])
    q = compile('?"ERROR" "MainThread" ?"WARN" "Deadlock"')
    assert q.matches("ERROR in MainThread") and q.matches("WARN: Deadlock found")
    assert not q.matches("ERROR in worker") and not q.matches("WARN MainThread")
    r = compile("?ERROR -timeout ?WARN")
    assert r.matches("ERROR disk") and not r.matches("ERROR timeout") and r.matches("WARN timeout")
    assert compile("disk ?ERROR").matches("ERROR x") and compile("disk ?ERROR").matches("disk")


@pytest.mark.parametrize("bad", ['"unterminated', "a=b", "- x", "?", "ERROR!", "x" * (MAX_PATTERN + 1)])
def test_bad_term_patterns_are_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        compile(bad)


def test_json_equality_of_numbers_and_strings() -> None:
    msg = '{"status": 500, "level": "error", "user": {"name": "admin-7"}}'
    assert m("{ $.status = 500 }", msg)
    assert not m("{ $.status = 404 }", msg)
    assert m('{ $.level = "error" }', msg) and m("{ $.level = error }", msg)
    assert m("{ $.status != 200 }", msg)
    assert m("{ $.user.name = admin* }", msg) and not m("{ $.user.name = root* }", msg)
    assert m('{ $.user.name = "*-7" }', msg)


def test_json_numeric_comparisons_take_numbers_only() -> None:
    msg = '{"latency": 250.5, "code": "250"}'
    assert m("{ $.latency > 200 }", msg) and m("{ $.latency >= 250.5 }", msg)
    assert not m("{ $.latency < 100 }", msg) and m("{ $.latency <= 300 }", msg)
    assert not m("{ $.code > 100 }", msg)  # a string is not a number
    with pytest.raises(PatternError):
        compile('{ $.code > "abc" }')


def test_json_and_binds_tighter_than_or_and_parentheses_group() -> None:
    p = compile("{ $.a = 1 || $.b = 2 && $.c = 3 }")
    assert p.matches('{"a": 1}') and not p.matches('{"b": 2}') and p.matches('{"b": 2, "c": 3}')
    q = compile("{ ($.a = 1 || $.b = 2) && $.c = 3 }")
    assert not q.matches('{"a": 1}') and q.matches('{"a": 1, "c": 3}')


def test_json_arrays_booleans_nulls_and_missing_fields() -> None:
    msg = '{"items": [{"id": 3}], "ok": true, "gone": null}'
    assert m("{ $.items[0].id = 3 }", msg) and not m("{ $.items[1].id = 3 }", msg)
    assert m("{ $.ok IS TRUE }", msg) and not m("{ $.ok IS FALSE }", msg)
    assert m("{ $.gone IS NULL }", msg) and not m("{ $.ok IS NULL }", msg)
    assert m("{ $.nothing NOT EXISTS }", msg) and not m("{ $.ok NOT EXISTS }", msg)
    assert not m("{ $.nothing != 3 }", msg)  # a missing field compares false


def test_a_json_pattern_matches_no_message_that_is_not_a_json_object() -> None:
    assert not m("{ $.status = 500 }", "status = 500")
    assert not m("{ $.status = 500 }", "[500]")
    assert m("{ $.status = 500 }", 'prefix {"status": 500}')  # a JSON object after a prefix


@pytest.mark.parametrize(
    "bad",
    [
        "{ $.a = 1",
        "{ a = 1 }",
        "{ $.a }",
        "{ $.a = }",
        "{ $.a = 1 } x",
        "{ $.a IS MAYBE }",
        "{ $.a NOT THERE }",
        "{ $.a = 1 && }",
        "{ ($.a = 1 }",
    ],
)
def test_bad_json_patterns_are_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        compile(bad)


def test_the_required_terms_are_given_for_a_store_to_prefilter_on() -> None:
    assert compile('ERROR "disk full" -x').required == ("ERROR", "disk full")
    assert compile("ERROR ?WARN").required == ()  # alternatives: no term is required of all
    assert compile("{ $.a = 1 }").required == ()


LINE = '10.0.0.1 - frank [02/Dec/2026:10:00:01 +0000] "GET /index.html HTTP/1.1" 404 1534'


@pytest.mark.parametrize(
    ("pattern", "hit"),
    [
        ("[ip, id, user, ts, request, status, bytes]", True),  # quotes and brackets hold one field each
        ("[ip, id, user]", False),  # as many fields as the message, unless an ellipsis
        ("[ip, ...]", True),
        ("[ip = 10.0.0.1, ..., bytes]", True),
        ("[..., status = 4*, bytes]", True),
        ("[..., status = 5*, bytes]", False),
        ("[ip, ..., status = 404, bytes > 1000]", True),
        ("[ip, ..., status = 404, bytes > 2000]", False),
        ("[..., status >= 400 && status < 500, bytes]", True),
        ("[..., status = 200 || status = 404, bytes]", True),
        ('[ip, id, user = frank, ts, request = "GET *", ...]', True),
        ("[ip, id, user != frank, ...]", False),
        ("[..., request, ..., bytes]", True),
        ("[a, b, c, d, e, f, g, h]", False),
        ("[..., ts, ..., ..., status = 404, ...]", True),
    ],
)
def test_space_delimited_patterns_match_field_by_field(pattern: str, hit: bool) -> None:
    assert m(pattern, LINE) is hit


def test_a_non_numeric_field_fails_a_numeric_comparison() -> None:
    assert not m("[a, b > 3]", "x y") and m("[a, b > 3]", "x 4")


@pytest.mark.parametrize(
    "bad",
    [
        "[ip",
        "[ip,, x]",
        "[ip x]",
        "[ip = ]",
        "[ip = 1 && user = 2]",
        "[ip > abc]",
        "[1bad]",
        "[ip] extra",
        "%ERROR%",
    ],
)
def test_bad_space_delimited_patterns_are_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        compile(bad)


def test_string_equalities_of_a_delimited_pattern_are_required_substrings() -> None:
    assert compile('[ip, user = frank, req = "GET /", n = 200, x = a*]').required == ("frank", "GET /")
    assert compile("[ip, user = frank || user = bob, ...]").required == ()


def test_deep_nesting_is_refused_in_a_pattern_and_matches_nothing_in_a_message() -> None:
    with pytest.raises(PatternError, match="nest"):
        compile("{ " + "(" * 400 + "$.a = 1" + ")" * 400 + " }")
    assert m("{ " + "(" * 10 + "$.a = 1" + ")" * 10 + " }", '{"a": 1}')
    assert not m("{ $.a = 1 }", '{"a":' + "[" * 100_000 + "]" * 100_000 + "}")
