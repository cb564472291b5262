"""GetTaskLogs (Dockyard's own operation, behind ``dockyard logs``).

Logs come from Docker through the task's host, or, once the container was removed at the
task's stop, from the copy the worker saved then (:mod:`runner.agent.savedlogs`).

Following (``dockyard logs --follow``) polls with a token, as CloudWatch's GetLogEvents does:
every answer carries ``nextForwardToken`` (opaque: the time of the last line seen of each
container, from Docker's log timestamps) and the task's ``lastStatus``; a request giving it
back as ``nextToken`` gets only the lines written after it (at most ``tail`` per container;
default then :data:`MAX_LOG_LINES`). Polling needs no connection held open through the
control workers and survives a control-plane restart. A container served from its saved copy
(its task stopped and removed it) has no timestamps: with a token it answers no new lines.

A container logging with ``awslogs`` is read from the log store instead (the stream the
collector fills, :mod:`runner.logs`), whether its container still exists or not; its place
in the token is the id of the last event seen, so following it misses no line.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import calendar
import json
from typing import Any, Protocol

from dockyard import jsonbound
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, tasks
from runner.agent import meshed, savedlogs
from runner.agent.host import Host
from runner.agent.transport import DockerError
from runner.errors import InvalidParameterException
from runner.logs import rules as log_rules
from runner.logs.data import LogStore
from runner.numbers import param_int

__all__ = ["MAX_LOG_LINES", "HostLookup", "decode_token", "encode_token", "split_timestamps", "task_logs"]

MAX_LOG_LINES = savedlogs.MAX_LOG_LINES
MAX_AWSLOGS_BYTES = 4 * 1024 * 1024  # of an awslogs container's lines per answer (the rest: next poll)


class HostLookup(Protocol):
    """What GetTaskLogs needs of the supervisor: the live host of a container instance."""

    def host_of(self, instance_id: str) -> Host | None: ...


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch of a Docker log timestamp (RFC 3339, UTC, up to nine
    fraction digits: ``2026-12-02T01:36:31.123456789Z``); ValueError if it is not one."""
    if not text.endswith("Z") or len(text) < 20 or text[10] != "T":
        raise ValueError(text)
    whole, _, fraction = text[:-1].partition(".")
    if not fraction.isdigit() and fraction:
        raise ValueError(text)
    seconds = calendar.timegm((int(whole[0:4]), int(whole[5:7]), int(whole[8:10]),
                               int(whole[11:13]), int(whole[14:16]), int(whole[17:19])))
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def split_timestamps(data: bytes) -> list[tuple[int, bytes]]:
    """Docker's ``timestamps=True`` output as (time in ns, line without its stamp); a line
    without a stamp (the rest of a line longer than Docker's buffer) takes the previous time."""
    out: list[tuple[int, bytes]] = []
    for line in data.splitlines(keepends=True):
        stamp, sep, rest = line.partition(b" ")
        try:
            ns = timestamp_ns(stamp.decode("ascii")) if sep else None
        except (ValueError, UnicodeDecodeError):
            ns = None
        if ns is None:
            out.append((out[-1][0] if out else 0, line))
        else:
            out.append((ns, rest))
    return out


def encode_token(seen: dict[str, int]) -> str:
    """The opaque ``nextForwardToken`` of the last line time seen per container."""
    return base64.urlsafe_b64encode(json.dumps(seen, sort_keys=True).encode()).decode().rstrip("=")


def decode_token(token: Any) -> dict[str, int]:
    """The times a ``nextToken`` holds; InvalidParameterException if it is not one of ours."""
    try:
        if not isinstance(token, str):
            raise ValueError
        seen = jsonbound.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)), max_bytes=64 * 1024)
        if not isinstance(seen, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) for k, v in seen.items()
        ):
            raise ValueError
        return seen
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParameterException("nextToken is not a token GetTaskLogs returned.") from None


def _awslogs_text(logs: LogStore, definition: dict[str, Any], task_id: str, runtime_id: str,
                  after: int | None, tail: int) -> tuple[str, int | None] | None:
    """The lines of an ``awslogs`` container from its stream and the id of the last one; None
    for a container of another driver."""
    try:
        options = log_rules.awslogs(definition.get("logConfiguration"))
    except ValueError:
        return None
    if options is None:
        return None
    group = logs.group(options.group)
    name = log_rules.stream_name(options.prefix, str(definition.get("name")), task_id, runtime_id)
    stream = logs.stream(group.id, name) if group is not None else None
    if stream is None:
        return "", after
    events = logs.tail(stream.id, after, tail, max_bytes=MAX_AWSLOGS_BYTES)
    text = "".join(e.message + "\n" for e in events)
    return text, events[-1].id if events else after


async def task_logs(
    store: Store, config: Config, hosts: HostLookup, params: dict[str, Any], logs: LogStore | None = None
) -> dict[str, Any]:
    """The last ``tail`` lines (default 200, at most :data:`MAX_LOG_LINES`) of each container
    of a task (or of ``containerName`` only); with ``nextToken``, only the lines written after
    it (see the module docstring)."""
    cluster = clusters.active(store, params.get("cluster")).name
    task = tasks.find(store, cluster, params.get("task"))
    following = params.get("nextToken") is not None
    seen = decode_token(params["nextToken"]) if following else {}
    tail = param_int(params, "tail", MAX_LOG_LINES if following else 200, 1, MAX_LOG_LINES)
    only = params.get("containerName")
    host = hosts.host_of(task.instance_id)
    definitions = {str(d.get("name")): d for d in task.container_definitions}
    if task.connect is not None and task.connect.log_configuration:  # Service Connect's container
        sidecar = meshed.sidecar_name(task.id)
        definitions[sidecar] = {"name": sidecar, "logConfiguration": task.connect.log_configuration}
    out = []
    for state in task.containers:
        name = state.name
        if only and name != only:
            continue
        text = ""
        if logs is not None and name in definitions:
            found = await asyncio.to_thread(_awslogs_text, logs, definitions[name], task.id,
                                            state.runtime_id or "", seen.get(name), tail)
            if found is not None:
                text, last = found
                if last is not None:
                    seen[name] = last
                out.append({"containerName": name, "logs": text})
                continue
        saved = None
        if config.data_dir:
            saved = await asyncio.to_thread(savedlogs.read, config.data_dir, task.id, name, tail)
        if saved is not None:  # the container was removed at the stop (runner.agent.savedlogs)
            text = "" if following else saved.decode(errors="replace")
        elif host is not None and state.runtime_id:
            after = seen.get(name)
            since = after // 1_000_000_000 if after is not None else None
            try:
                lines = split_timestamps(await host.timed_logs(state.runtime_id, tail, since))
            except DockerError as e:
                lines, text = [], f"(logs unavailable: {e})\n"
            if after is not None:
                lines = [(ns, line) for ns, line in lines if ns > after]
            if lines:
                seen[name] = lines[-1][0]
            text = text or b"".join(line for _, line in lines).decode(errors="replace")
        out.append({"containerName": name, "logs": text})
    if only and not out:
        raise InvalidParameterException(f"The task has no container named {only}.")
    return {
        "taskArn": tasks.task_arn(config, cluster, task.id), "containers": out,
        "lastStatus": task.last_status, "nextForwardToken": encode_token(seen),
    }
