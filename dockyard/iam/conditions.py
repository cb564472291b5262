"""The ``Condition`` operators of IAM's policy language (pure).

A condition block is ``{"Operator": {"key": value-or-list}}``. Every operator and every key in
a block must hold (AND); the values listed for one key are alternatives (OR). Operators:

* strings: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
  ``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike`` (``*`` and ``?``);
* numbers: ``NumericEquals``, ``NumericNotEquals``, ``NumericLessThan``,
  ``NumericLessThanEquals``, ``NumericGreaterThan``, ``NumericGreaterThanEquals``;
* dates (ISO 8601 or epoch seconds): ``DateEquals``, ``DateNotEquals``, ``DateLessThan``,
  ``DateLessThanEquals``, ``DateGreaterThan``, ``DateGreaterThanEquals``;
* ``Bool``, ``BinaryEquals``, ``IpAddress`` and ``NotIpAddress`` (CIDR), ``ArnEquals``,
  ``ArnLike``, ``ArnNotEquals``, ``ArnNotLike``, and ``Null`` (``true``: the key is absent);
* every operator but ``Null`` takes the ``IfExists`` suffix (true when the key is absent), and
  the ``ForAllValues:`` / ``ForAnyValue:`` prefixes for keys with several values.

As in AWS, a key absent from the request makes a positive operator false and a negated one
(``StringNotEquals``, ``NotIpAddress``, ``ArnNotLike``, ...) true; ``ForAllValues`` over an
absent key is true, ``ForAnyValue`` false.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dockyard.iam.patterns import arn_matches, glob, substitute

__all__ = ["OPERATORS", "Condition", "holds", "parse_operator"]

Compare = Callable[[str, str, Mapping[str, Any] | None], bool]


def _num(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _date(text: str) -> float | None:
    n = _num(text)
    if n is not None:
        return n
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _numeric(op: Callable[[float, float], bool], parse: Callable[[str], float | None]) -> Compare:
    def compare(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
        a, b = parse(value), parse(wanted)
        return a is not None and b is not None and op(a, b)

    return compare


def _ip(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(wanted, strict=False)
    except ValueError:
        return False


def _like(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
    pattern = glob(wanted, ctx)
    return pattern is not None and pattern.fullmatch(value) is not None


def _arn(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
    return arn_matches(wanted, value, ctx)


def _equals(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
    wanted_value = substitute(wanted, ctx)
    return wanted_value is not None and value == wanted_value


def _iequals(value: str, wanted: str, ctx: Mapping[str, Any] | None) -> bool:
    wanted_value = substitute(wanted, ctx)
    return wanted_value is not None and value.casefold() == wanted_value.casefold()


# name -> (comparison, negated)
OPERATORS: dict[str, tuple[Compare, bool]] = {
    "StringEquals": (_equals, False),
    "StringNotEquals": (_equals, True),
    "StringEqualsIgnoreCase": (_iequals, False),
    "StringNotEqualsIgnoreCase": (_iequals, True),
    "StringLike": (_like, False),
    "StringNotLike": (_like, True),
    "NumericEquals": (_numeric(lambda a, b: a == b, _num), False),
    "NumericNotEquals": (_numeric(lambda a, b: a == b, _num), True),
    "NumericLessThan": (_numeric(lambda a, b: a < b, _num), False),
    "NumericLessThanEquals": (_numeric(lambda a, b: a <= b, _num), False),
    "NumericGreaterThan": (_numeric(lambda a, b: a > b, _num), False),
    "NumericGreaterThanEquals": (_numeric(lambda a, b: a >= b, _num), False),
    "DateEquals": (_numeric(lambda a, b: a == b, _date), False),
    "DateNotEquals": (_numeric(lambda a, b: a == b, _date), True),
    "DateLessThan": (_numeric(lambda a, b: a < b, _date), False),
    "DateLessThanEquals": (_numeric(lambda a, b: a <= b, _date), False),
    "DateGreaterThan": (_numeric(lambda a, b: a > b, _date), False),
    "DateGreaterThanEquals": (_numeric(lambda a, b: a >= b, _date), False),
    "Bool": (lambda v, w, c: v.lower() == w.lower(), False),
    "BinaryEquals": (lambda v, w, c: v == w, False),
    "IpAddress": (_ip, False),
    "NotIpAddress": (_ip, True),
    "ArnEquals": (_arn, False),
    "ArnLike": (_arn, False),
    "ArnNotEquals": (_arn, True),
    "ArnNotLike": (_arn, True),
}
QUALIFIERS = ("ForAllValues", "ForAnyValue")
_OPERATOR = re.compile(r"^(?:(ForAllValues|ForAnyValue):)?([A-Za-z]+?)(IfExists)?$")


@dataclass(frozen=True)
class Condition:
    """One key of one operator: ``{operator: {key: values}}`` (``key`` lower-cased, as keys
    are matched without regard to case)."""

    operator: str  # the base name, e.g. "StringLike" or "Null"
    key: str
    values: tuple[str, ...]
    if_exists: bool = False
    qualifier: str = ""  # "", "ForAllValues" or "ForAnyValue"


def parse_operator(name: str) -> tuple[str, str, bool]:
    """``ForAnyValue:StringLikeIfExists`` to ``("ForAnyValue", "StringLike", True)``;
    ``ValueError`` naming an operator IAM does not have."""
    m = _OPERATOR.match(name)
    if m and m.group(2) == "Null" and not m.group(3):
        return m.group(1) or "", "Null", False
    if not m or m.group(2) not in OPERATORS:
        raise ValueError(f"unknown condition operator {name!r}")
    return m.group(1) or "", m.group(2), bool(m.group(3))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def holds(cond: Condition, context: Mapping[str, Any], variables: bool = True) -> bool:
    """Whether ``cond`` holds for the request ``context`` (condition keys lower-cased; a value
    is a string, number, bool or a list of them); ``variables``: policy variables in the
    condition's values are replaced (policy version 2012-10-17)."""
    raw = context.get(cond.key)
    present = raw is not None and raw != []
    if cond.operator == "Null":
        return any((v.lower() == "true") == (not present) for v in cond.values)
    compare, negated = OPERATORS[cond.operator]
    if not present:
        if cond.qualifier == "ForAllValues":
            return True
        if cond.qualifier == "ForAnyValue":
            return False
        return cond.if_exists or negated
    subst = context if variables else None
    values = [_text(v) for v in (raw if isinstance(raw, list | tuple) else [raw])]

    def one(value: str) -> bool:
        matched = any(compare(value, wanted, subst) for wanted in cond.values)
        return not matched if negated else matched

    if cond.qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if cond.qualifier == "ForAnyValue" or not negated:
        return any(one(v) for v in values)
    return all(one(v) for v in values)  # a negated operator: no value may match
