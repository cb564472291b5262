"""Task-level cpu and memory as ECS takes them (strings with units) to CPU units and MiB
(see :mod:`runner.taskdef`)."""

from __future__ import annotations

import math
import re
from typing import Any

from runner.errors import ClientException

__all__ = ["parse_task_cpu", "parse_task_memory", "task_error"]


def task_error(msg: str) -> ClientException:
    """The error for a wrong task-level field."""
    return ClientException(f"Invalid setting for task definition: {msg}")


# -- task-level sizes -------------------------------------------------------------------------
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z ]*?)\s*$")


def parse_task_cpu(value: Any) -> int:
    """Task cpu as ECS takes it ("256", "1 vCPU", "0.25 vcpu", 512) to CPU units."""
    m = _SIZE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    unit = m.group(2).replace(" ", "").lower() if m else None
    if m is None or unit not in ("", "vcpu", "vcpus"):
        raise task_error(f"cpu must be CPU units like \"256\" or vCPUs like \"1 vCPU\", not {value!r}")
    amount = float(m.group(1)) * (1024 if unit else 1)
    if amount != math.floor(amount) or not 128 <= amount <= 196608:
        raise task_error(f"cpu must be between 128 CPU units (0.125 vCPU) and 196608 (192 vCPU), "
                          f"not {value!r}")
    return int(amount)


def parse_task_memory(value: Any) -> int:
    """Task memory as ECS takes it ("512", "1GB", "0.5 GB", 2048) to MiB."""
    m = _SIZE.match(str(value)) if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    unit = m.group(2).replace(" ", "").lower() if m else None
    factors = {"": 1, "mb": 1, "mib": 1, "gb": 1024, "gib": 1024}
    if m is None or unit not in factors:
        raise task_error(f"memory must be MiB like \"512\" or GB like \"1GB\", not {value!r}")
    amount = float(m.group(1)) * factors[unit]
    if amount != math.floor(amount) or amount < 6:
        raise task_error(f"memory must be a whole number of MiB >= 6, not {value!r}")
    return int(amount)
