"""AWS's own service models (botocore's ``botocore/data/<service>/<version>/service-2.json``) and
the request validators compiled from them.

:func:`service` loads a model by botocore's name (``ecs``, ``servicediscovery``, ``appmesh``,
``elbv2``) or by the ``X-Amz-Target`` prefix a JSON service answers to (:data:`TARGETS`).
:func:`validator` compiles, once per operation, a function that checks a parsed request
against the operation's input shape (required members, types, enums, string lengths, list
and map sizes, numeric ranges) and raises the error class it was given: the service's own
(ECS answers ``InvalidParameterException``, Cloud Map ``InvalidInput``, the default is
``ValidationException``). Patterns are not checked (the models write them for Java's regex
engine, and the handlers check the names that matter). Members the model does not know are
left alone, as AWS does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

from dockyard.aws.errors import AwsError

__all__ = ["TARGETS", "Validator", "find", "operation", "service", "validator"]

TARGETS = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Route53AutoNaming_v20170314": "servicediscovery",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "GraniteServiceVersion20100801": "cloudwatch",
    "AnyScaleFrontendService": "application-autoscaling",
    "AWSEvents": "events",
    "CertificateManager": "acm",
    "Logs_20140328": "logs",
}
"""The JSON (and RPC v2 CBOR) target prefix of each service Dockyard serves or will serve."""

Validator = Callable[[dict[str, Any]], None]

_loader = Loader()


@functools.cache
def service(name: str) -> ServiceModel:
    """The newest model botocore ships for ``name`` (a botocore name or a target prefix)."""
    botocore_name = TARGETS.get(name, name)
    return ServiceModel(_loader.load_service_model(botocore_name, "service-2"), service_name=botocore_name)


def find(name: str) -> ServiceModel | None:
    """:func:`service`, or None when botocore has no model of that name (a JSON target prefix
    of Dockyard's own, say)."""
    try:
        return service(name)
    except DataNotFoundError:
        return None


def operation(service_name: str, name: str) -> OperationModel:
    """One operation's model; ``KeyError`` if the service model has no such operation."""
    model = service(service_name)
    if name not in model.operation_names:
        raise KeyError(f"{service_name} has no operation {name}")
    return model.operation_model(name)


def validator(op: OperationModel, error: type[AwsError]) -> Validator:
    """A check of a request's parameters against ``op``'s input shape, raising ``error``."""
    shape = op.input_shape
    if shape is None:
        return lambda params: None
    check = _compile(shape, {})

    def validate(params: dict[str, Any]) -> None:
        try:
            check(params)
        except _Bad as bad:
            raise error(bad.text()) from None

    return validate


Check = Callable[[Any], None]


class _Bad(Exception):
    """A value breaking a rule; the path to it is gathered while it unwinds, so a good request
    pays for no path strings."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.path: list[str] = []

    def text(self) -> str:
        where = "".join(reversed(self.path)).lstrip(".") or "request"
        return f"{where} {self.rule}"


def _compile(shape: Shape, seen: dict[str, Check]) -> Check:
    """A check of one value against ``shape``; ``seen`` breaks the cycles of recursive shapes."""
    if shape.name in seen:
        return seen[shape.name]
    box: list[Check] = []

    def deferred(value: Any) -> None:
        box[0](value)

    seen[shape.name] = deferred
    box.append(_build(shape, seen))
    seen[shape.name] = box[0]
    return box[0]


def _build(shape: Shape, seen: dict[str, Check]) -> Check:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        members = {n: _compile(s, seen) for n, s in shape.members.items()}
        required = tuple(shape.required_members)

        def structure(value: Any) -> None:
            if type(value) is not dict:
                raise _Bad("must be an object.")
            for name in required:
                if value.get(name) is None:
                    bad = _Bad("is required.")
                    bad.path.append("." + name)
                    raise bad
            for name, item in value.items():
                check = members.get(name)
                if check is not None and item is not None:
                    try:
                        check(item)
                    except _Bad as bad:
                        bad.path.append("." + name)
                        raise

        return structure
    if kind == "list":
        member = _compile(shape.member, seen)
        low, high = meta.get("min"), meta.get("max")

        def listing(value: Any) -> None:
            if type(value) is not list:
                raise _Bad("must be a list.")
            _size(len(value), low, high, "items")
            for i, item in enumerate(value):
                try:
                    member(item)
                except _Bad as bad:
                    bad.path.append(f"[{i}]")
                    raise

        return listing
    if kind == "map":
        key, val = _compile(shape.key, seen), _compile(shape.value, seen)
        low, high = meta.get("min"), meta.get("max")

        def mapping(value: Any) -> None:
            if type(value) is not dict:
                raise _Bad("must be a map.")
            _size(len(value), low, high, "entries")
            for k, v in value.items():
                try:
                    key(k)
                except _Bad as bad:
                    bad.path.append(" key")
                    raise
                try:
                    val(v)
                except _Bad as bad:
                    bad.path.append(f"[{k}]")
                    raise

        return mapping
    if kind == "string":
        enum = frozenset(shape.enum) if shape.enum else None
        low, high = meta.get("min"), meta.get("max")

        def string(value: Any) -> None:
            if type(value) is not str:
                raise _Bad("must be a string.")
            if enum is not None and value not in enum:
                raise _Bad(f"must be one of {', '.join(sorted(enum))}, not {value!r}.")
            if low is not None or high is not None:
                _size(len(value), low, high, "characters")

        return string
    if kind in ("integer", "long"):
        low, high = meta.get("min"), meta.get("max")

        def integer(value: Any) -> None:
            if type(value) is not int and not (type(value) is float and value.is_integer()):
                raise _Bad("must be an integer.")
            _range(value, low, high)

        return integer
    if kind in ("double", "float"):
        low, high = meta.get("min"), meta.get("max")

        def number(value: Any) -> None:
            if type(value) not in (int, float) or math.isnan(value):
                raise _Bad("must be a number.")
            _range(value, low, high)

        return number
    if kind == "boolean":

        def boolean(value: Any) -> None:
            if type(value) is not bool:
                raise _Bad("must be true or false.")

        return boolean
    if kind == "timestamp":

        def timestamp(value: Any) -> None:
            if type(value) not in (int, float, str):
                raise _Bad("must be a timestamp.")

        return timestamp
    return lambda value: None  # blob, document: whatever the handler makes of it


def _size(n: int, low: int | None, high: int | None, unit: str) -> None:
    if low is not None and n < low:
        raise _Bad(f"must have at least {low} {unit}.")
    if high is not None and n > high:
        raise _Bad(f"must have at most {high} {unit}.")


def _range(n: float, low: float | None, high: float | None) -> None:
    if low is not None and n < low:
        raise _Bad(f"must be at least {low}.")
    if high is not None and n > high:
        raise _Bad(f"must be at most {high}.")
