"""CloudWatch metric math, parsed and evaluated safely (a small recursive-descent parser, no
``eval``): what ``MetricDataQueries[].Expression`` and alarms' ``Metrics`` lists need.

Grammar: numbers, query ids (``m1``), ``+ - * /`` with the usual precedence, unary ``-``,
parentheses, comparisons ``< <= > >= == !=`` (1 or 0), arrays ``[m1, m2]`` and the functions
``SUM``, ``AVG``, ``MIN``, ``MAX`` (over an array: a series, per timestamp; over one series: a
scalar over the range), ``METRICS()`` / ``METRICS("text")`` (every MetricStat query, or those
whose id or label contains ``text``) and ``IF(cond, a[, b])``.

A series is ``{timestamp: value}``; arithmetic between two series keeps the timestamps both
have; a scalar applies to every point. Division by zero drops the point (CloudWatch leaves no
value there). Errors are :class:`MathError` with a message CloudWatch-like enough to show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["MathError", "Series", "evaluate", "parse", "references"]

Series = dict[int, float]
Value = float | Series | list[Series]

_TOKEN = re.compile(
    r"\s*(?:(\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)|([A-Za-z_][A-Za-z0-9_]*)|(\"[^\"]*\")"
    r"|(<=|>=|==|!=|[-+*/(),\[\]<>]))"
)
MAX_LENGTH = 1024


class MathError(ValueError):
    pass


@dataclass(frozen=True)
class Node:
    kind: str  # num, id, str, op, neg, call, array
    value: Any = None
    args: tuple[Node, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    if len(text) > MAX_LENGTH:
        raise MathError(f"The expression is longer than {MAX_LENGTH} characters.")
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise MathError(f"Unexpected character at position {pos + 1} of the expression.")
        num, name, string, op = m.groups()
        out.append(
            ("num", num) if num else ("id", name) if name else ("str", string[1:-1]) if string else ("op", op)
        )
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str]:
        t = self.peek()
        if t is None or (op is not None and t != ("op", op)):
            raise MathError(f"Syntax error in the expression: expected {op or 'a value'}.")
        self.i += 1
        return t

    def parse(self) -> Node:
        node = self.comparison()
        if self.peek() is not None:
            raise MathError(f"Syntax error in the expression near {self.peek()[1]!r}.")  # type: ignore[index]
        return node

    def comparison(self) -> Node:
        left = self.additive()
        while (t := self.peek()) is not None and t[0] == "op" and t[1] in ("<", "<=", ">", ">=", "==", "!="):
            self.i += 1
            left = Node("op", t[1], (left, self.additive()))
        return left

    def additive(self) -> Node:
        left = self.term()
        while (t := self.peek()) is not None and t in (("op", "+"), ("op", "-")):
            self.i += 1
            left = Node("op", t[1], (left, self.term()))
        return left

    def term(self) -> Node:
        left = self.unary()
        while (t := self.peek()) is not None and t in (("op", "*"), ("op", "/")):
            self.i += 1
            left = Node("op", t[1], (left, self.unary()))
        return left

    def unary(self) -> Node:
        if self.peek() == ("op", "-"):
            self.i += 1
            return Node("neg", None, (self.unary(),))
        return self.atom()

    def atom(self) -> Node:
        self.depth += 1
        if self.depth > 50:
            raise MathError("The expression is nested too deeply.")
        try:
            kind, text = self.take()
            if kind == "num":
                return Node("num", float(text))
            if kind == "str":
                return Node("str", text)
            if (kind, text) == ("op", "("):
                node = self.comparison()
                self.take(")")
                return node
            if (kind, text) == ("op", "["):
                items = self.items("]")
                return Node("array", None, tuple(items))
            if kind == "id":
                if self.peek() == ("op", "("):
                    self.i += 1
                    return Node("call", text.upper(), tuple(self.items(")")))
                return Node("id", text)
            raise MathError(f"Syntax error in the expression near {text!r}.")
        finally:
            self.depth -= 1

    def items(self, close: str) -> list[Node]:
        out: list[Node] = []
        if self.peek() == ("op", close):
            self.i += 1
            return out
        while True:
            out.append(self.comparison())
            if self.peek() == ("op", ","):
                self.i += 1
                continue
            self.take(close)
            return out


def parse(text: str) -> Node:
    """The syntax tree of ``text`` (MathError when it is not metric math)."""
    if not text.strip():
        raise MathError("The expression is empty.")
    return _Parser(text).parse()


def references(node: Node) -> set[str]:
    """The query ids ``node`` names (``METRICS()`` names none: it takes every MetricStat)."""
    if node.kind == "id":
        return {node.value}
    out: set[str] = set()
    for a in node.args:
        out |= references(a)
    return out


_BINARY: dict[str, Callable[[float, float], float | None]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b if b != 0 else None,
    "<": lambda a, b: float(a < b),
    "<=": lambda a, b: float(a <= b),
    ">": lambda a, b: float(a > b),
    ">=": lambda a, b: float(a >= b),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
}
_REDUCE: dict[str, Callable[[list[float]], float]] = {
    "SUM": sum,
    "AVG": lambda v: sum(v) / len(v),
    "MIN": min,
    "MAX": max,
}


def _binary(op: str, a: Value, b: Value) -> Value:
    f = _BINARY[op]
    if isinstance(a, list) or isinstance(b, list):
        if isinstance(a, list) and not isinstance(b, list):
            return [_binary(op, x, b) for x in a]  # type: ignore[misc]
        if isinstance(b, list) and not isinstance(a, list):
            return [_binary(op, a, y) for y in b]  # type: ignore[misc]
        raise MathError(f"The operator {op} cannot combine two arrays of time series.")
    if isinstance(a, dict) and isinstance(b, dict):
        out = {t: f(a[t], b[t]) for t in a.keys() & b.keys()}
    elif isinstance(a, dict):
        out = {t: f(v, b) for t, v in a.items()}  # type: ignore[arg-type]
    elif isinstance(b, dict):
        out = {t: f(a, v) for t, v in b.items()}
    else:
        r = f(a, b)
        if r is None:
            raise MathError("Division by zero in the expression.")
        return r
    return {t: v for t, v in out.items() if v is not None}


def evaluate(node: Node, values: Mapping[str, Series], metrics: Mapping[str, str] | None = None) -> Value:
    """The value of ``node`` over the query results ``values`` (id -> series); ``metrics`` maps
    each MetricStat query's id to its label (what ``METRICS()`` takes)."""
    k = node.kind
    if k == "num":
        return node.value
    if k == "str":
        raise MathError("A string is only an argument of METRICS().")
    if k == "id":
        if node.value not in values:
            raise MathError(f"Unknown metric id {node.value} in the expression.")
        return values[node.value]
    if k == "neg":
        return _binary("*", -1.0, evaluate(node.args[0], values, metrics))
    if k == "op":
        return _binary(
            node.value, evaluate(node.args[0], values, metrics), evaluate(node.args[1], values, metrics)
        )
    if k == "array":
        out: list[Series] = []
        for a in node.args:
            v = evaluate(a, values, metrics)
            if isinstance(v, dict):
                out.append(v)
            elif isinstance(v, list):
                out.extend(v)
            else:
                raise MathError("An array holds time series only.")
        return out
    return _call(node, values, metrics or {})


def _series_args(node: Node, values: Mapping[str, Series], metrics: Mapping[str, str], n: int) -> list[Value]:
    if len(node.args) != n:
        raise MathError(f"{node.value} takes {n} argument{'s' if n > 1 else ''}.")
    return [evaluate(a, values, metrics) for a in node.args]


def _call(node: Node, values: Mapping[str, Series], metrics: Mapping[str, str]) -> Value:
    name = node.value
    if name == "METRICS":
        if len(node.args) > 1 or (node.args and node.args[0].kind != "str"):
            raise MathError("METRICS takes no argument or one string.")
        text = node.args[0].value if node.args else ""
        return [values[i] for i, label in metrics.items() if i in values and (text in i or text in label)]
    if name in _REDUCE:
        (arg,) = _series_args(node, values, metrics, 1)
        f = _REDUCE[name]
        if isinstance(arg, list):
            out: Series = {}
            for t in sorted(set().union(*[s.keys() for s in arg])) if arg else []:
                pts = [s[t] for s in arg if t in s]
                out[t] = f(pts)
            return out
        if isinstance(arg, dict):
            if not arg:
                raise MathError(f"{name} of an empty time series.")
            return f(list(arg.values()))
        return arg
    if name == "IF":
        if len(node.args) not in (2, 3):
            raise MathError("IF takes 2 or 3 arguments.")
        cond = evaluate(node.args[0], values, metrics)
        a = evaluate(node.args[1], values, metrics)
        b = evaluate(node.args[2], values, metrics) if len(node.args) == 3 else None
        if not isinstance(cond, dict):
            return (a if cond else b) if b is not None else a
        out = {}
        for t, c in cond.items():
            pick = a if c else b
            if pick is None:
                continue
            v = pick.get(t) if isinstance(pick, dict) else pick
            if isinstance(v, float | int):
                out[t] = float(v)
        return out
    raise MathError(f"Unknown function {name} in the expression.")
