r"""ECS's cluster query language, as memberOf placement constraints use it (pure).

``parse(text)`` returns a frozen expression tree or raises :class:`QueryError` (an
``InvalidParameterException``) saying what is wrong and where; ``evaluate(expr, facts,
groups)`` says whether one host satisfies it.

Grammar (keywords are case-insensitive; symbol and word forms are interchangeable)::

    expr      := term (("or" | "||") term)*
    term      := factor (("and" | "&&") factor)*
    factor    := ("not" | "!") factor | "(" expr ")" | predicate
    predicate := subject op value
               | subject ("in" | "not_in" | "!in") list
               | subject ("exists" | "not_exists" | "!exists")
    op        := "==" | "equals" | "!=" | "not_equals" | ">" | "greater_than"
               | ">=" | "greater_than_equal" | "<" | "less_than" | "<=" | "less_than_equal"
               | "=~" | "matches" | "!~" | "not_matches"
    list      := ("(" | "[") value ("," value)* (")" | "]")
    value     := a word (letters, digits and . _ - : / * ? + @ \ ^ $ { }) or a quoted '...' / "..."
                 string (for regular expressions with spaces, brackets or parentheses)

Subjects: ``attribute:NAME`` (custom and built-in attributes of the container instance, such
as ``attribute:ecs.instance-type``, ``attribute:ecs.availability-zone``,
``attribute:ecs.os-type``, ``attribute:ecs.ami-id``, ``attribute:ecs.cpu-architecture``; the
bare ``ecs.NAME`` is accepted for ``attribute:ecs.NAME``), the instance built-ins
``instanceId``, ``ec2InstanceId``, ``agentConnected``, ``agentVersion``, ``registeredAt``,
``runningTasksCount``, and ``task:group`` (the groups of the tasks running on the host, e.g.
``service:web``).

Semantics: a subject has zero or more values on a host (an attribute has one or none;
``task:group`` has one per running task). ``==``, ``>``, ``>=``, ``<``, ``<=``, ``=~``, ``in`` and
``exists`` hold when some value satisfies them; ``!=``, ``!~``, ``not_in`` and ``not_exists`` when
none of the values satisfies the positive form (so a missing attribute is ``!=`` anything).
``==``/``!=`` values may hold ``*`` wildcards (``t2.*``); ``>``-style comparisons are numeric when
both sides are numbers, else by string; ``=~`` is a full match of a Python regular expression.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from runner.errors import InvalidParameterException

__all__ = ["And", "Compare", "Expr", "Not", "Or", "QueryError", "evaluate", "matches", "parse", "validate"]

BUILTINS = ("instanceId", "ec2InstanceId", "agentConnected", "agentVersion", "registeredAt",
            "runningTasksCount")
MAX_LENGTH = 2000

_OPS = {
    "==": "==", "equals": "==", "!=": "!=", "not_equals": "!=",
    ">": ">", "greater_than": ">", ">=": ">=", "greater_than_equal": ">=",
    "<": "<", "less_than": "<", "<=": "<=", "less_than_equal": "<=",
    "=~": "=~", "matches": "=~", "!~": "!~", "not_matches": "!~",
}
_NEGATED = {"!=": "==", "!~": "=~", "not_in": "in", "not_exists": "exists"}
_TOKEN = re.compile(
    r"""\s*(?:(?P<sym>==|!=|>=|<=|=~|!~|&&|\|\||[()\[\],!<>])
           |(?P<str>'[^']*'|"[^"]*")
           |(?P<word>[A-Za-z0-9_.:*/?+@\\^${}-]+))""",
    re.VERBOSE,
)


class QueryError(InvalidParameterException):
    """A malformed expression; the message quotes it and says what was expected where."""


@dataclass(frozen=True)
class Compare:
    subject: str  # "attribute:NAME", "task:group" or a built-in
    op: str  # ==, !=, >, >=, <, <=, =~, !~, in, not_in, exists, not_exists
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class Not:
    item: Expr


@dataclass(frozen=True)
class And:
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Expr, ...]


Expr = Compare | Not | And | Or


@dataclass(frozen=True)
class _Tok:
    kind: str  # sym, str, word, end
    text: str
    pos: int


def _tokens(text: str) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m:
            start = len(text[:pos]) + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise QueryError(
                f"Invalid expression {text!r}: unexpected {text[start]!r} at position {start + 1}."
            )
        kind = m.lastgroup or "word"
        out.append(_Tok(kind, m.group(kind), m.start(kind)))
        pos = m.end()
    out.append(_Tok("end", "", len(text)))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, ahead: int = 0) -> _Tok:
        return self.toks[min(self.i + ahead, len(self.toks) - 1)]

    def take(self) -> _Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def fail(self, expected: str, tok: _Tok | None = None) -> QueryError:
        tok = tok or self.peek()
        found = "the end" if tok.kind == "end" else repr(tok.text)
        return QueryError(
            f"Invalid expression {self.text!r}: expected {expected} at position {tok.pos + 1}, found {found}."
        )

    def is_kw(self, tok: _Tok, *words: str) -> bool:
        return tok.kind in ("word", "sym") and tok.text.lower() in words

    def expr(self) -> Expr:
        items = [self.term()]
        while self.is_kw(self.peek(), "or", "||"):
            self.take()
            items.append(self.term())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def term(self) -> Expr:
        items = [self.factor()]
        while self.is_kw(self.peek(), "and", "&&"):
            self.take()
            items.append(self.factor())
        return items[0] if len(items) == 1 else And(tuple(items))

    def factor(self) -> Expr:
        tok = self.peek()
        if self.is_kw(tok, "not", "!"):
            self.take()
            return Not(self.factor())
        if tok.text == "(" and tok.kind == "sym":
            self.take()
            inner = self.expr()
            if self.peek().text != ")":
                raise self.fail("')'")
            self.take()
            return inner
        return self.predicate()

    def subject(self) -> str:
        tok = self.take()
        if tok.kind != "word":
            raise self.fail("an attribute such as attribute:NAME or task:group", tok)
        name = tok.text
        if name.startswith("attribute:") and len(name) > len("attribute:"):
            return name
        if name.startswith("ecs."):
            return "attribute:" + name
        if name == "task:group" or name in BUILTINS:
            return name
        raise QueryError(
            f"Invalid expression {self.text!r}: unknown attribute {name!r} at position {tok.pos + 1}; use "
            f"attribute:NAME, task:group or one of {', '.join(BUILTINS)}."
        )

    def value(self) -> str:
        tok = self.take()
        if tok.kind == "str":
            return tok.text[1:-1]
        if tok.kind == "word" and tok.text.lower() not in ("and", "or", "not"):
            return tok.text
        raise self.fail("a value", tok)

    def predicate(self) -> Compare:
        subject = self.subject()
        tok = self.take()
        word = tok.text.lower() if tok.kind in ("word", "sym") else ""
        if word == "!":
            nxt = self.take()
            if not self.is_kw(nxt, "in", "exists"):
                raise self.fail("'in' or 'exists' after '!'", nxt)
            word = "not_" + nxt.text.lower()
        if word in ("exists", "not_exists"):
            return Compare(subject, word)
        if word in ("in", "not_in"):
            return Compare(subject, word, self.list_())
        if word in _OPS:
            op = _OPS[word]
            value = self.value()
            if op in ("=~", "!~"):
                try:
                    re.compile(value)
                except re.error as e:
                    raise QueryError(f"Invalid expression {self.text!r}: bad regular expression "
                                     f"{value!r}: {e}.") from None
            return Compare(subject, op, (value,))
        raise self.fail("an operator (==, !=, >, >=, <, <=, =~, !~, in, exists, !exists)", tok)

    def list_(self) -> tuple[str, ...]:
        open_ = self.take()
        if open_.text not in ("(", "["):
            raise self.fail("'(' or '[' to start the list", open_)
        close = ")" if open_.text == "(" else "]"
        values = [self.value()]
        while self.peek().text == ",":
            self.take()
            values.append(self.value())
        if self.peek().text != close:
            raise self.fail(f"',' or '{close}'")
        self.take()
        return tuple(values)


def parse(text: str) -> Expr:
    """Parse an expression; raises :class:`QueryError` naming the problem and its position."""
    if not isinstance(text, str) or not text.strip():
        raise QueryError("Invalid expression: it is empty.")
    if len(text) > MAX_LENGTH:
        raise QueryError(f"Invalid expression: longer than {MAX_LENGTH} characters.")
    p = _Parser(text)
    expr = p.expr()
    if p.peek().kind != "end":
        raise p.fail("'and', 'or' or the end")
    return expr


def validate(text: str) -> None:
    parse(text)


def _number(s: str) -> float | None:
    try:
        return float(s)
    except ValueError:
        return None


def _holds(op: str, have: str, want: tuple[str, ...]) -> bool:
    if op == "exists":
        return True
    if op == "in":
        return any(_holds("==", have, (w,)) for w in want)
    w = want[0]
    if op == "==":
        return fnmatchcase(have, w) if "*" in w or "?" in w else have == w
    if op == "=~":
        return re.fullmatch(w, have) is not None
    a, b = _number(have), _number(w)
    left, right = (a, b) if a is not None and b is not None else (have, w)
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]  # type: ignore[operator]


def _values(subject: str, facts: Mapping[str, str], groups: Sequence[str]) -> list[str]:
    if subject == "task:group":
        return list(groups)
    value = facts.get(subject)
    return [] if value is None else [value]


def evaluate(expr: Expr, facts: Mapping[str, str], groups: Sequence[str] = ()) -> bool:
    """Whether a host satisfies ``expr``.

    ``facts`` maps subjects to values: ``"attribute:NAME"`` for each attribute and the
    built-in names (``"instanceId"``, ``"runningTasksCount"``, ...); ``groups`` lists the group
    of every task running on the host (``task:group``).
    """
    if isinstance(expr, And):
        return all(evaluate(e, facts, groups) for e in expr.items)
    if isinstance(expr, Or):
        return any(evaluate(e, facts, groups) for e in expr.items)
    if isinstance(expr, Not):
        return not evaluate(expr.item, facts, groups)
    values = _values(expr.subject, facts, groups)
    positive = _NEGATED.get(expr.op, expr.op)
    some = any(_holds(positive, v, expr.values) for v in values)
    return not some if expr.op in _NEGATED else some


def matches(expr: str | Expr, facts: Mapping[str, str], groups: Sequence[str] = ()) -> bool:
    """``evaluate`` for an expression given as text (parsed first) or already parsed.

    To build ``facts`` for a container instance, see
    ``runner.scheduler.HostView.query_facts``."""
    return evaluate(parse(expr) if isinstance(expr, str) else expr, facts, groups)
