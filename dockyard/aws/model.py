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

from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

from dockyard.aws.errors import AwsError

__all__ = ["TARGETS", "Validator", "operation", "service", "validator"]

TARGETS = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Route53AutoNaming_v20170314": "servicediscovery",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "GraniteServiceVersion20100801": "cloudwatch",
    "AnyScaleFrontendService": "application-autoscaling",
    "AWSEvents": "events",
    "CertificateManager": "acm",
}
"""The JSON (and RPC v2 CBOR) target prefix of each service Dockyard serves or will serve."""

Validator = Callable[[dict[str, Any]], None]

_loader = Loader()


@functools.cache
def service(name: str) -> ServiceModel:
    """The newest model botocore ships for ``name`` (a botocore name or a target prefix)."""
    botocore_name = TARGETS.get(name, name)
    return ServiceModel(_loader.load_service_model(botocore_name, "service-2"), service_name=botocore_name)


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
    check = _compile(shape, error, {})

    def validate(params: dict[str, Any]) -> None:
        check(params, "")

    return validate


Check = Callable[[Any, str], None]


def _compile(shape: Shape, error: type[AwsError], seen: dict[str, Check]) -> Check:
    """A check of one value against ``shape``; ``seen`` breaks the cycles of recursive shapes."""
    if shape.name in seen:
        return seen[shape.name]
    box: list[Check] = []

    def deferred(value: Any, where: str) -> None:
        box[0](value, where)

    seen[shape.name] = deferred
    box.append(_build(shape, error, seen))
    seen[shape.name] = box[0]
    return box[0]


def _name(where: str, default: str = "request") -> str:
    return where or default


def _build(shape: Shape, error: type[AwsError], seen: dict[str, Check]) -> Check:
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        members = {n: _compile(s, error, seen) for n, s in shape.members.items()}
        required = tuple(shape.required_members)

        def structure(value: Any, where: str) -> None:
            if not isinstance(value, dict):
                raise error(f"{_name(where)} must be an object.")
            for name in required:
                if value.get(name) is None:
                    raise error(f"{_dotted(where, name)} is required.")
            for name, item in value.items():
                check = members.get(name)
                if check is not None and item is not None:
                    check(item, _dotted(where, name))

        return structure
    if kind == "list":
        member = _compile(shape.member, error, seen)
        low, high = meta.get("min"), meta.get("max")

        def listing(value: Any, where: str) -> None:
            if not isinstance(value, list):
                raise error(f"{where} must be a list.")
            _size(len(value), low, high, where, "items", error)
            for i, item in enumerate(value):
                member(item, f"{where}[{i}]")

        return listing
    if kind == "map":
        key, val = _compile(shape.key, error, seen), _compile(shape.value, error, seen)
        low, high = meta.get("min"), meta.get("max")

        def mapping(value: Any, where: str) -> None:
            if not isinstance(value, dict):
                raise error(f"{where} must be a map.")
            _size(len(value), low, high, where, "entries", error)
            for k, v in value.items():
                key(k, f"{where} key")
                val(v, f"{where}[{k}]")

        return mapping
    if kind == "string":
        enum = frozenset(shape.enum) if shape.enum else None
        low, high = meta.get("min"), meta.get("max")

        def string(value: Any, where: str) -> None:
            if not isinstance(value, str):
                raise error(f"{where} must be a string.")
            if enum is not None and value not in enum:
                raise error(f"{where} must be one of {', '.join(sorted(enum))}, not {value!r}.")
            _size(len(value), low, high, where, "characters", error)

        return string
    if kind in ("integer", "long"):
        low, high = meta.get("min"), meta.get("max")

        def integer(value: Any, where: str) -> None:
            if isinstance(value, bool) or not isinstance(value, int):
                if not (isinstance(value, float) and value.is_integer()):
                    raise error(f"{where} must be an integer.")
            _range(value, low, high, where, error)

        return integer
    if kind in ("double", "float"):
        low, high = meta.get("min"), meta.get("max")

        def number(value: Any, where: str) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise error(f"{where} must be a number.")
            _range(value, low, high, where, error)

        return number
    if kind == "boolean":

        def boolean(value: Any, where: str) -> None:
            if not isinstance(value, bool):
                raise error(f"{where} must be true or false.")

        return boolean
    if kind == "timestamp":

        def timestamp(value: Any, where: str) -> None:
            if isinstance(value, bool) or not isinstance(value, int | float | str):
                raise error(f"{where} must be a timestamp.")

        return timestamp
    return lambda value, where: None  # blob, document: whatever the handler makes of it


def _dotted(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _size(n: int, low: int | None, high: int | None, where: str, unit: str, error: type[AwsError]) -> None:
    if low is not None and n < low:
        raise error(f"{where} must have at least {low} {unit}.")
    if high is not None and n > high:
        raise error(f"{where} must have at most {high} {unit}.")


def _range(n: float, low: float | None, high: float | None, where: str, error: type[AwsError]) -> None:
    if low is not None and n < low:
        raise error(f"{where} must be at least {low}.")
    if high is not None and n > high:
        raise error(f"{where} must be at most {high}.")
