"""What a target receives of an event, pure: ``Input``, ``InputPath`` or ``InputTransformer``
as EventBridge defines them (at most one per target; none: the whole event).

* ``Input``: a JSON text sent as is, whatever the event.
* ``InputPath``: the part of the event a JSONPath names (``$.detail``, ``$.resources[0]``);
  a path that names nothing sends nothing (``None``).
* ``InputTransformer``: ``InputPathsMap`` (up to 100 variables, each a JSONPath into the event)
  and ``InputTemplate``, in which ``<name>`` stands for a variable's value. A placeholder
  inside a JSON string (``"id <id>"``) is replaced by the value's text, escaped for that
  string (a string without its quotes, anything else as its JSON); outside a string by the
  value's JSON (``{"id": <id>}`` -> ``{"id": "abc"}``). A path that names nothing is ``null``
  outside a string and empty text inside one. The predefined variables
  ``<aws.events.rule-arn>``, ``<aws.events.rule-name>``, ``<aws.events.event.ingestion-time>``
  and ``<aws.events.event>`` (``<aws.events.event.json>``: the whole event) may be used
  without being mapped. A placeholder naming no variable stays as written.

EventBridge's paths are JSONPath in dot notation with array indexes (no filters nor
wildcards), which :func:`path_value` reads; a library for the full JSONPath grammar would
accept paths PutTargets must refuse.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "MISSING",
    "TransformError",
    "check_path",
    "check_target_input",
    "path_value",
    "render",
    "target_input",
]

MISSING: Any = object()
"""What :func:`path_value` answers for a path that names nothing."""

_STEP = re.compile(r"\.([A-Za-z0-9_\-@:$]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_\-.]+)>")
_KEY = re.compile(r"[A-Za-z0-9_\-]+")
PREDEFINED = (
    "aws.events.rule-arn",
    "aws.events.rule-name",
    "aws.events.event.ingestion-time",
    "aws.events.event",
    "aws.events.event.json",
)
MAX_PATHS = 100


class TransformError(ValueError):
    """An input setting PutTargets refuses (a ``ValidationException``)."""


def _steps(path: str) -> list[str | int]:
    if not isinstance(path, str) or not path.startswith("$"):
        raise TransformError(f"{path!r} is not a JSON path (it starts with $).")
    out: list[str | int] = []
    pos = 1
    while pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            raise TransformError(f"{path!r} is not a JSON path EventBridge reads (at {path[pos:]!r}).")
        name, index, quoted, dquoted = m.groups()
        out.append(
            int(index) if index is not None else next(s for s in (name, quoted, dquoted) if s is not None)
        )
        pos = m.end()
    return out


def check_path(path: str) -> None:
    """Raise :class:`TransformError` unless ``path`` is a JSONPath EventBridge reads."""
    _steps(path)


def path_value(event: Any, path: str) -> Any:
    """The value ``path`` names in ``event``, or :data:`MISSING`."""
    value = event
    for step in _steps(path):
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return MISSING
            value = value[step]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return MISSING
    return value


def check_target_input(target: Mapping[str, Any]) -> None:
    """Check a target's ``Input``/``InputPath``/``InputTransformer`` as PutTargets does."""
    given = [k for k in ("Input", "InputPath", "InputTransformer") if target.get(k) is not None]
    if len(given) > 1:
        raise TransformError(
            f"Only one of Input, InputPath, or InputTransformer may be given for target {target.get('Id')}."
        )
    if "Input" in given:
        try:
            json.loads(target["Input"])
        except ValueError:
            raise TransformError(f"Input for target {target.get('Id')} is not valid JSON text.") from None
    if "InputPath" in given:
        try:
            check_path(target["InputPath"])
        except TransformError as e:
            raise TransformError(f"InputPath for target {target.get('Id')} is invalid: {e}") from None
    if "InputTransformer" in given:
        t = target["InputTransformer"]
        paths = t.get("InputPathsMap") or {}
        if len(paths) > MAX_PATHS:
            raise TransformError(f"InputPathsMap can have at most {MAX_PATHS} entries.")
        for key, path in paths.items():
            if not _KEY.fullmatch(key) or key.startswith("aws.events"):
                raise TransformError(
                    f"InputPathsMap key {key!r} is invalid (letters, digits, _ and -; the "
                    "aws.events prefix is reserved)."
                )
            try:
                check_path(path)
            except TransformError as e:
                raise TransformError(f"InputPathsMap has an invalid JSON path for {key!r}: {e}") from None
        if not isinstance(t.get("InputTemplate"), str):
            raise TransformError("InputTransformer needs an InputTemplate.")


def _in_string(template: str, upto: int, start: int, inside: bool) -> bool:
    """Whether position ``upto`` of ``template`` is inside a JSON string literal, given that
    ``start`` (before it) was ``inside`` or not."""
    i = start
    while i < upto:
        c = template[i]
        if inside and c == "\\":
            i += 2
            continue
        if c == '"':
            inside = not inside
        i += 1
    return inside


def render(template: str, variables: Mapping[str, Any]) -> str:
    """``template`` with its placeholders replaced (see the module docstring)."""
    out: list[str] = []
    last, inside = 0, False
    for m in _PLACEHOLDER.finditer(template):
        name = m.group(1)
        if name not in variables:
            continue
        inside = _in_string(template, m.start(), last, inside)
        out.append(template[last : m.start()])
        value = variables[name]
        if inside:
            text = "" if value is MISSING else value if isinstance(value, str) else json.dumps(value)
            out.append(json.dumps(text)[1:-1])
        else:
            out.append("null" if value is MISSING else json.dumps(value))
        last = m.end()
    out.append(template[last:])
    return "".join(out)


def target_input(
    target: Mapping[str, Any], event: Mapping[str, Any], rule_arn: str, rule_name: str, ingested: str
) -> str | None:
    """The JSON text ``target`` receives for ``event`` (None: nothing, an InputPath that names
    nothing); ``ingested`` is the event's ingestion time as EventBridge writes it."""
    if target.get("Input") is not None:
        return str(target["Input"])
    if target.get("InputPath") is not None:
        value = path_value(event, target["InputPath"])
        return None if value is MISSING else json.dumps(value)
    t = target.get("InputTransformer")
    if not t:
        return json.dumps(event)
    variables: dict[str, Any] = {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": ingested,
        "aws.events.event": event,
        "aws.events.event.json": event,
    }
    variables.update({k: path_value(event, p) for k, p in (t.get("InputPathsMap") or {}).items()})
    return render(str(t["InputTemplate"]), variables)
