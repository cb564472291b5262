"""CloudWatch Logs' rules, as pure functions: names, tokens, retention values, PutLogEvents'
batch rules and the ``awslogs`` driver's options (what ECS makes of them)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_BATCH_BYTES",
    "MAX_BATCH_EVENTS",
    "MAX_BATCH_SPAN_MS",
    "RETENTION_DAYS",
    "AwsLogs",
    "BatchError",
    "Verdict",
    "awslogs",
    "check_batch",
    "decode_position",
    "encode_position",
    "group_arn",
    "stream_name",
    "valid_group_name",
    "valid_stream_name",
]

RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)
MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
MAX_BATCH_SPAN_MS = 24 * 3600 * 1000
MAX_EVENT_BYTES = 1_048_576 - 26
TOO_OLD_MS = 14 * 24 * 3600 * 1000
TOO_NEW_MS = 2 * 3600 * 1000

_GROUP = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
_STREAM_BAD = re.compile(r"[:*]")


def valid_group_name(name: str) -> bool:
    return _GROUP.fullmatch(name) is not None


def valid_stream_name(name: str) -> bool:
    return 1 <= len(name) <= 512 and _STREAM_BAD.search(name) is None


def group_arn(region: str, account: str, name: str) -> str:
    return f"arn:aws:logs:{region}:{account}:log-group:{name}"


def stream_name(prefix: str, container: str, task_id: str, container_id: str = "") -> str:
    """The stream ECS names for a container: ``prefix/container-name/task-id``, or, without a
    prefix (allowed on EC2), the Docker container id as the awslogs driver names it."""
    return f"{prefix}/{container}/{task_id}" if prefix else (container_id or f"{container}/{task_id}")


def encode_position(kind: str, ts: int, event_id: int) -> str:
    """A token at an event (``f/`` forward, ``b/`` backward, ``n/`` FilterLogEvents): digits
    only after the kind, as CloudWatch's tokens look."""
    return f"{kind}/{max(ts, 0):014d}{event_id:020d}"


def decode_position(token: str, kinds: str) -> tuple[str, tuple[int, int]] | None:
    """(kind, (ts, id)) of a token of one of ``kinds``; None when it is not one of ours."""
    if len(token) != 36 or token[1] != "/" or token[0] not in kinds or not token[2:].isascii():
        return None
    if not token[2:].isdigit() or int(token[16:]) >= 2**63:  # an event id is a SQLite integer
        return None
    return token[0], (int(token[2:16]), int(token[16:]))


class BatchError(ValueError):
    """A PutLogEvents batch CloudWatch refuses as a whole (InvalidParameterException)."""


@dataclass(frozen=True)
class Verdict:
    """Which events of a batch are kept: ``keep`` indices; the rest as CloudWatch reports them
    (``rejectedLogEventsInfo``: the last index of too new / too old / expired ones)."""

    keep: tuple[int, ...]
    rejected: dict[str, int]


def check_batch(events: Sequence[Mapping[str, Any]], now_ms: int, retention_days: int | None) -> Verdict:
    """PutLogEvents' rules over a batch of ``{"timestamp", "message"}``: in chronological
    order, spanning at most 24 hours, at most 10,000 events and 1 MiB (messages plus 26 bytes
    each), else :class:`BatchError`; events more than 2 hours ahead are rejected as too new,
    those older than 14 days as too old, those older than the group's retention as expired."""
    if not events:
        raise BatchError("logEvents must hold at least one event.")
    if len(events) > MAX_BATCH_EVENTS:
        raise BatchError(f"A PutLogEvents batch has at most {MAX_BATCH_EVENTS} events.")
    size = 0
    previous = None
    for e in events:
        ts = e["timestamp"]
        if previous is not None and ts < previous:
            raise BatchError("Log events in a single PutLogEvents request must be in chronological order.")
        previous = ts
        size += len(str(e["message"]).encode("utf-8", "surrogatepass")) + 26
    if size > MAX_BATCH_BYTES:
        raise BatchError(
            f"The batch of log events is {size} bytes, over the {MAX_BATCH_BYTES} bytes allowed."
        )
    if events[-1]["timestamp"] - events[0]["timestamp"] > MAX_BATCH_SPAN_MS:
        raise BatchError("The log events in a single PutLogEvents request cannot span more than 24 hours.")
    rejected: dict[str, int] = {}
    keep = []
    expiry = now_ms - retention_days * 86_400_000 if retention_days else None
    for i, e in enumerate(events):
        ts = e["timestamp"]
        if ts > now_ms + TOO_NEW_MS:
            rejected.setdefault("tooNewLogEventStartIndex", i)
        elif expiry is not None and ts < expiry:
            rejected["expiredLogEventEndIndex"] = i
        elif ts < now_ms - TOO_OLD_MS:
            rejected["tooOldLogEventEndIndex"] = i
        else:
            keep.append(i)
    return Verdict(tuple(keep), rejected)


@dataclass(frozen=True)
class AwsLogs:
    """A container's ``awslogs`` options as ECS reads them."""

    group: str
    prefix: str
    create_group: bool
    region: str


def awslogs(log_configuration: Mapping[str, Any] | None) -> AwsLogs | None:
    """The ``awslogs`` options of a ``logConfiguration`` (None for another driver, or none);
    ValueError naming what is wrong (ECS's message for a missing group)."""
    if not log_configuration or log_configuration.get("logDriver") != "awslogs":
        return None
    options = log_configuration.get("options") or {}
    group = str(options.get("awslogs-group") or "")
    if not group:
        raise ValueError(
            "failed to initialize logging driver: must specify a value for log opt 'awslogs-group'"
        )
    if not valid_group_name(group):
        raise ValueError(f"awslogs-group {group!r} is not a valid log group name")
    create = str(options.get("awslogs-create-group") or "false").lower()
    if create not in ("true", "false"):
        raise ValueError("awslogs-create-group must be true or false")
    return AwsLogs(
        group,
        str(options.get("awslogs-stream-prefix") or ""),
        create == "true",
        str(options.get("awslogs-region") or ""),
    )
