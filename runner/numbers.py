"""The runner's integer readers, one per contract.

* :func:`loose_int`: a value from stored or already validated JSON (``"256"``, ``256``,
  ``None``) as an int, or None when it is not one; never raises.
* :func:`param_int`: an optional integer request parameter within a range; raises
  InvalidParameterException ``"<key> must be an integer from <low> to <high>."``.

Task definition fields are checked where they are parsed (``runner.taskdef``), with the
container they belong to in the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runner.errors import InvalidParameterException

__all__ = ["loose_int", "param_int"]


def loose_int(value: Any) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def param_int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidParameterException(f"{key} must be an integer from {low} to {high}.")
    return value
