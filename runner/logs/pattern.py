"""CloudWatch Logs filter patterns (FilterLogEvents' ``filterPattern``): parse once, match many.

Pure: :func:`compile` turns a pattern into a :class:`Pattern` (a predicate over one event's
message) or raises :class:`PatternError`; nothing here does I/O. Three forms, as CloudWatch has:

* **Terms** (unstructured text). ``ERROR`` matches a message containing ``ERROR`` (case
  sensitive, as CloudWatch); several terms must all appear (``ERROR timeout``); a
  ``"quoted phrase"`` is one term, spaces and punctuation included (``\\"`` and ``\\\\`` escape);
  ``-term`` excludes messages that contain it; ``?term`` opens an alternative, and the terms
  after it (up to the next ``?``) belong to it: ``?ERROR ?WARN`` matches either word,
  ``?ERROR MainThread ?WARN Deadlock`` both words of either pair (how the AWS CDK writes "any
  of these term groups"). Terms before the first ``?`` form an alternative of their own. A
  bare term holds letters, digits and ``_.:/@`` (others must be quoted, as CloudWatch asks).
  An empty pattern matches every message.
* **JSON** (``{ ... }``): the message is parsed as JSON and selectors are compared:
  ``{ $.status = 500 }``, ``{ $.level = "error" }``, ``{ $.user.name = admin* }`` (``*`` is a
  wildcard in string values), ``{ $.items[0].id != 3 }``, numeric ``> < >= <=`` (numbers
  only), ``IS TRUE``/``IS FALSE``/``IS NULL``, ``NOT EXISTS``, joined by ``&&`` and ``||``
  (``&&`` binds tighter) with parentheses. A message that is not a JSON object matches no JSON
  pattern; a comparison of a missing field, or of a value of the wrong type, is false.
* **Space-delimited** (``[ ... ]``): the message is split on spaces (text in double quotes
  or brackets is one field, without them) and matched field by field:
  ``[ip, user, ..., status = 5*, bytes > 1000]``; a name per field, ``...`` for any number
  of fields, a field's conditions joined by ``&&`` and ``||`` naming it again
  (``status >= 400 && status < 500``); numbers compare as numbers, strings with ``*``.

Not supported (refused as invalid, never silently matched): ``%regex%`` terms. Why
hand-written: no maintained Python library parses CloudWatch's syntax (docs/architecture.md,
"runner/logs").
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_PATTERN", "Pattern", "PatternError", "compile"]

MAX_PATTERN = 1024  # characters (the model's FilterPattern max)
MAX_DEPTH = 32  # nested parentheses of a JSON pattern

Predicate = Callable[[str], bool]


class PatternError(ValueError):
    """A pattern CloudWatch would refuse; the message says where."""


@dataclass(frozen=True)
class Pattern:
    """A compiled filter pattern: ``matches(message)``; ``required`` are substrings every
    matching message contains (a store may pre-filter on them; ``matches`` stays the judge)."""

    text: str
    matches: Predicate
    required: tuple[str, ...] = ()


def compile(text: str) -> Pattern:
    """The pattern ``text`` compiled; :class:`PatternError` when it is not valid."""
    if len(text) > MAX_PATTERN:
        raise PatternError(f"a filter pattern has at most {MAX_PATTERN} characters")
    stripped = text.strip()
    if stripped.startswith("{"):
        return Pattern(text, _JsonParser(stripped).parse())
    if stripped.startswith("["):
        parser = _DelimitedParser(stripped)
        matches = parser.parse()
        return Pattern(text, matches, tuple(parser.needles))
    required, matches = _terms(stripped)
    return Pattern(text, matches, tuple(required))


# -- terms -----------------------------------------------------------------------------------

_BARE = re.compile(r"[A-Za-z0-9_.:/@]+")


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The string of the quote opening at ``text[i]`` and the index after its close."""
    out = []
    i += 1
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise PatternError("unterminated quoted term")


@dataclass
class _Group:
    """Terms that must all appear and terms that must not."""

    required: list[str]
    excluded: list[str]

    def matches(self, message: str) -> bool:
        return all(t in message for t in self.required) and not any(t in message for t in self.excluded)


def _terms(text: str) -> tuple[list[str], Predicate]:
    groups: list[_Group] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
            continue
        sign = ""
        if c in "-?":
            sign, i = c, i + 1
            if i >= len(text) or text[i].isspace():
                raise PatternError(f"'{c}' must be followed by a term")
        if text[i] == '"':
            term, i = _quoted(text, i)
        else:
            m = _BARE.match(text, i)
            if m is None:
                raise PatternError(f"invalid character {text[i]!r} in a term at {i} (quote the term)")
            term, i = m.group(), m.end()
            if i < len(text) and not text[i].isspace():
                raise PatternError(f"invalid character {text[i]!r} in a term at {i} (quote the term)")
        if sign == "?" or not groups:  # '?' opens an alternative; the terms after it join it
            groups.append(_Group([], []))
        (groups[-1].excluded if sign == "-" else groups[-1].required).append(term)
    if not groups:
        return [], lambda message: True
    if len(groups) == 1:
        return list(groups[0].required), groups[0].matches

    def matches(message: str) -> bool:
        return any(g.matches(message) for g in groups)

    return [], matches


# -- JSON ------------------------------------------------------------------------------------

_MISSING = object()
_TOKEN = re.compile(
    r"""\s*(?:(?P<op>&&|\|\||>=|<=|!=|=|>|<|\(|\)|\{|\})|(?P<str>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<sel>\$(?:\.[A-Za-z0-9_\-@]+|\[\d+\])+)|(?P<word>[^\s()&|=!<>{}"]+))"""
)


@dataclass(frozen=True)
class _Tok:
    kind: str  # op, str, sel, word, end
    text: str
    at: int


def _tokens(text: str) -> list[_Tok]:
    out = []
    i = 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            break
        m = _TOKEN.match(text, i)
        if m is None or m.end() == i:
            raise PatternError(f"unexpected {text[i]!r} at {i}")
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        i = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


def _path(selector: str) -> list[str | int]:
    return [
        int(p[1:-1]) if p.startswith("[") else p[1:]
        for p in re.findall(r"\.[A-Za-z0-9_\-@]+|\[\d+\]", selector[1:])
    ]


def _lookup(doc: Any, path: list[str | int]) -> Any:
    for p in path:
        if isinstance(p, int):
            if not isinstance(doc, list) or p >= len(doc):
                return _MISSING
            doc = doc[p]
        else:
            if not isinstance(doc, dict) or p not in doc:
                return _MISSING
            doc = doc[p]
    return doc


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


Doc = Callable[[Any], bool]


def _value_test(op: str, value: _Tok) -> tuple[bool, Callable[[Any], bool]]:
    """A test of one value against ``op value``: (numeric, test). A numeric test takes JSON
    numbers (not booleans); a string test takes strings, ``*`` in the pattern's value being a
    wildcard; anything else fails it (``!=`` included, as a missing field does)."""
    if value.kind == "str":
        text, number = json.loads(value.text), None
    else:
        text, number = value.text, _number(value.text)
    if number is not None:
        compare = {
            "=": float.__eq__,
            "!=": float.__ne__,
            ">": float.__gt__,
            "<": float.__lt__,
            ">=": float.__ge__,
            "<=": float.__le__,
        }[op]

        def numeric(v: Any) -> bool:
            return isinstance(v, (int, float)) and not isinstance(v, bool) and compare(float(v), number)

        return True, numeric
    if op not in ("=", "!="):
        raise PatternError(f"'{op}' compares numbers only, not {value.text!r}")
    want = op == "="
    wild = None
    if "*" in text:
        parts = re.split(r"(\*)", text)
        wild = re.compile("".join(".*" if part == "*" else re.escape(part) for part in parts) + r"\Z", re.S)

    def string(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        return (wild.match(v) is not None if wild is not None else v == text) == want

    return False, string


def _comparison(path: list[str | int], op: str, value: _Tok) -> Doc:
    test = _value_test(op, value)[1]

    def compare(doc: Any) -> bool:
        v = _lookup(doc, path)
        return v is not _MISSING and test(v)

    return compare


class _Cursor:
    """A parser's place in its tokens (``toks``, ending with an ``end`` token)."""

    toks: list[_Tok]
    i: int

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def take(self, text: str | None = None) -> _Tok:
        tok = self.toks[self.i]
        if text is not None and tok.text != text:
            raise PatternError(f"expected '{text}' at {tok.at}, found {tok.text or 'the end'!r}")
        self.i += 1
        return tok


class _JsonParser(_Cursor):
    """Recursive descent: or := and ('||' and)*; and := atom ('&&' atom)*;
    atom := '(' or ')' | selector (op value | IS TRUE|FALSE|NULL | NOT EXISTS)."""

    def __init__(self, text: str) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0


    def parse(self) -> Predicate:
        self.take("{")
        expr = self.or_()
        self.take("}")
        if self.peek().kind != "end":
            raise PatternError(f"unexpected {self.peek().text!r} after the closing brace")

        def matches(message: str) -> bool:
            start = message.find("{")
            if start < 0:
                return False
            try:
                doc = json.loads(message[start:])
            except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
                return False
            return isinstance(doc, dict) and expr(doc)

        return matches

    def or_(self) -> Doc:
        parts = [self.and_()]
        while self.peek().text == "||":
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda doc: any(p(doc) for p in parts))

    def and_(self) -> Doc:
        parts = [self.atom()]
        while self.peek().text == "&&":
            self.take()
            parts.append(self.atom())
        return parts[0] if len(parts) == 1 else (lambda doc: all(p(doc) for p in parts))

    def atom(self) -> Doc:
        tok = self.peek()
        if tok.text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise PatternError(f"parentheses nest deeper than {MAX_DEPTH} at {tok.at}")
            self.take()
            inner = self.or_()
            self.take(")")
            self.depth -= 1
            return inner
        if tok.kind != "sel":
            raise PatternError(
                f"expected a selector such as $.field at {tok.at}, found {tok.text or 'the end'!r}"
            )
        self.take()
        path = _path(tok.text)
        nxt = self.take()
        word = nxt.text.upper() if nxt.kind == "word" else ""
        if word == "IS":
            what = self.take()
            kind = what.text.upper() if what.kind == "word" else ""
            if kind in ("TRUE", "FALSE"):
                flag = kind == "TRUE"
                return lambda doc: _lookup(doc, path) is flag
            if kind == "NULL":
                return lambda doc: _lookup(doc, path) is None
            raise PatternError(f"expected TRUE, FALSE or NULL after IS at {what.at}")
        if word == "NOT":
            what = self.take()
            if what.kind != "word" or what.text.upper() != "EXISTS":
                raise PatternError(f"expected EXISTS after NOT at {what.at}")
            return lambda doc: _lookup(doc, path) is _MISSING
        if nxt.kind != "op" or nxt.text not in ("=", "!=", ">", "<", ">=", "<="):
            raise PatternError(f"expected a comparison after {tok.text} at {nxt.at}")
        value = self.take()
        if value.kind not in ("str", "word"):
            raise PatternError(f"expected a value after {nxt.text} at {value.at}")
        return _comparison(path, nxt.text, value)


# -- space-delimited -------------------------------------------------------------------------

_DELIM_TOKEN = re.compile(
    r"""(?P<op>&&|\|\||>=|<=|!=|=|>|<|\[|\]|,)|(?P<ellipsis>\.\.\.)|(?P<str>"(?:[^"\\]|\\.)*")"""
    r"""|(?P<word>[^\s,\[\]&|=!<>"]+)"""
)
_FIELD = re.compile(r'"[^"]*"|\[[^\]]*\]|\S+')
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FieldTest = Callable[[str], bool]


def _fields(message: str) -> list[str]:
    """A message's space-delimited fields; one in quotes or brackets is one field (without them)."""
    return [f[1:-1] if len(f) >= 2 and f[0] in '"[' and f[-1] in '"]' else f for f in _FIELD.findall(message)]


def _field_test(op: str, value: _Tok) -> FieldTest:
    numeric, test = _value_test(op, value)
    if not numeric:
        return test
    return lambda field: (n := _number(field)) is not None and test(n)


def _fit(segment: list[FieldTest], fields: list[str], at: int) -> bool:
    return all(t(fields[at + k]) for k, t in enumerate(segment))


class _DelimitedParser(_Cursor):
    """``[a, b = 200, c > 1 && c < 5, ...]``: a name per field, ``...`` for any number of fields,
    a field's conditions joined by ``&&``/``||`` (``&&`` first) naming it again."""

    def __init__(self, text: str) -> None:
        self.toks: list[_Tok] = []
        i = 0
        while i < len(text):
            if text[i].isspace():
                i += 1
                continue
            m = _DELIM_TOKEN.match(text, i)
            if m is None:
                raise PatternError(f"unexpected {text[i]!r} at {i}")
            kind = m.lastgroup or ""
            self.toks.append(_Tok(kind, m.group(kind), i))
            i = m.end()
        self.toks.append(_Tok("end", "", len(text)))
        self.i = 0
        self.needles: list[str] = []  # what a field must equal verbatim: in every matching message
        self._kept = 0


    def parse(self) -> Predicate:
        self.take("[")
        fields: list[FieldTest | None] = []  # None: an ellipsis
        while True:
            tok = self.take()
            if tok.kind == "ellipsis":
                fields.append(None)
            elif tok.kind == "word" and _NAME.fullmatch(tok.text):
                fields.append(self.condition(tok.text))
            else:
                found = tok.text or "the end"
                raise PatternError(f"expected a field name or '...' at {tok.at}, found {found!r}")
            sep = self.take()
            if sep.text == "]":
                break
            if sep.text != ",":
                raise PatternError(f"expected ',' or ']' at {sep.at}, found {sep.text or 'the end'!r}")
        if self.take().kind != "end":
            raise PatternError("unexpected text after the closing bracket")
        segments: list[list[FieldTest]] = [[]]
        for f in fields:
            if f is None:
                segments.append([])
            else:
                segments[-1].append(f)
        return self._matcher(segments)

    def condition(self, name: str) -> FieldTest:
        """The field's conditions (none: any value), up to the next ',' or ']'."""
        if self.toks[self.i].text in (",", "]"):
            return lambda field: True
        self._kept = len(self.needles)
        alternatives: list[list[FieldTest]] = [[self.comparison(name, first=True)]]
        while self.toks[self.i].text in ("&&", "||"):
            joiner = self.take().text
            test = self.comparison(name, first=False)
            if joiner == "&&":
                alternatives[-1].append(test)
            else:
                alternatives.append([test])
        if len(alternatives) == 1 and len(alternatives[0]) == 1:
            return alternatives[0][0]
        self.needles = self.needles[: self._kept]  # a needle of an alternative is not required
        return lambda field: any(all(t(field) for t in group) for group in alternatives)

    def comparison(self, name: str, first: bool) -> FieldTest:
        if not first:
            again = self.take()
            if again.text != name:
                raise PatternError(f"a condition of field {name} names {again.text!r} at {again.at}")
        op = self.take()
        if op.kind != "op" or op.text not in ("=", "!=", ">", "<", ">=", "<="):
            raise PatternError(f"expected a comparison after {name} at {op.at}")
        value = self.take()
        if value.kind not in ("str", "word"):
            raise PatternError(f"expected a value after {op.text} at {value.at}")
        test = _field_test(op.text, value)
        text = json.loads(value.text) if value.kind == "str" else value.text
        if op.text == "=" and "*" not in text and (value.kind == "str" or _number(text) is None) and text:
            self.needles.append(text)  # a field equal to a string is a substring of the message
        return test

    @staticmethod
    def _matcher(segments: list[list[FieldTest]]) -> Predicate:
        """Fixed-length segments between ellipses: the first anchored at the start, the last at
        the end, those between matched leftmost (greedy leftmost is exact for such globs)."""
        if len(segments) == 1:
            only = segments[0]
            return lambda message: len(f := _fields(message)) == len(only) and _fit(only, f, 0)
        head, middle, tail = segments[0], segments[1:-1], segments[-1]

        def matches(message: str) -> bool:
            fields = _fields(message)
            end = len(fields) - len(tail)
            if end < len(head) or not _fit(head, fields, 0) or not _fit(tail, fields, end):
                return False
            at = len(head)
            for seg in middle:
                while at + len(seg) <= end and not _fit(seg, fields, at):
                    at += 1
                if at + len(seg) > end:
                    return False
                at += len(seg)
            return True

        return matches
