"""The CloudWatch Logs API (AWS JSON 1.1, ``X-Amz-Target: Logs_20140328.<Op>``) over the log
store (:mod:`runner.logs.data`).

Requests are checked against botocore's ``logs`` model before a handler runs (registered with
``validate=InvalidParameterException``), so a handler checks only what the model cannot say
(names, retention values, tokens, PutLogEvents' batch rules). Errors are CloudWatch's own:
``ResourceNotFoundException``, ``ResourceAlreadyExistsException``,
``InvalidParameterException``. Every handler runs the store's work in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Callable
from typing import Any

from dockyard.aws.errors import InvalidParameterException, ResourceNotFoundException, register
from dockyard.config import Config
from runner.logs import pattern, rules
from runner.logs.data import LogGroup, LogStore, LogStream, now_ms

__all__ = ["LOGS", "OPERATIONS", "LogsApi", "ResourceAlreadyExistsException"]

LOGS = "Logs_20140328"
ResourceAlreadyExistsException = register("ResourceAlreadyExistsException")
FILTER_SCAN_LIMIT = 200_000  # events one FilterLogEvents call examines at most (then a nextToken)
MAX_ANSWER_BYTES = 1_048_576  # as CloudWatch: at most 1 MB of events per answer


def _no_group() -> ResourceNotFoundException:
    return ResourceNotFoundException("The specified log group does not exist.")


def _no_stream() -> ResourceNotFoundException:
    return ResourceNotFoundException("The specified log stream does not exist.")


def _token(kind: str, value: str) -> str:
    """A DescribeLog* ``nextToken``: where the next page starts (an offset, or the last name
    shown), opaque to clients."""
    return base64.urlsafe_b64encode(f"{kind}:{value}".encode()).decode().rstrip("=")


def _untoken(token: Any, kind: str) -> str:
    """The value of a :func:`_token` of ``kind`` ("" for none); InvalidParameterException if
    it is not one."""
    if token is None:
        return ""
    try:
        value = base64.urlsafe_b64decode(str(token).encode() + b"==").decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        value = ""
    if not value.startswith(f"{kind}:") or (kind == "o" and not value[2:].isdigit()):
        raise InvalidParameterException("The specified nextToken is not valid.")
    return value[2:]


class LogsApi:
    """The operations, bound to one store and config (see :data:`OPERATIONS`)."""

    def __init__(self, store: LogStore, config: Config) -> None:
        self.store = store
        self.config = config

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    def _arn(self, name: str) -> str:
        return rules.group_arn(self.config.region, self.config.account_id, name)

    def _group_name(self, params: dict[str, Any]) -> str:
        """``logGroupName`` or ``logGroupIdentifier`` (a name or an ARN), exactly one."""
        name, ident = params.get("logGroupName"), params.get("logGroupIdentifier")
        if name and ident:
            raise InvalidParameterException("LogGroupName and LogGroupIdentifier are mutually exclusive.")
        value = name or ident
        if not value:
            raise InvalidParameterException("Either LogGroupName or LogGroupIdentifier must be specified.")
        if ident and ident.startswith("arn:"):
            value = ident.split(":log-group:", 1)[-1].removesuffix(":*")
        return str(value)

    async def _group(self, params: dict[str, Any]) -> LogGroup:
        group = await self._run(self.store.group, self._group_name(params))
        if group is None:
            raise _no_group()
        return group

    async def _stream(self, group: LogGroup, name: str) -> LogStream:
        stream = await self._run(self.store.stream, group.id, name)
        if stream is None:
            raise _no_stream()
        return stream

    def _shown_group(self, g: LogGroup) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logGroupName": g.name,
            "creationTime": g.created_ms,
            "metricFilterCount": 0,
            "arn": self._arn(g.name) + ":*",
            "logGroupArn": self._arn(g.name),
            "storedBytes": g.stored_bytes,
            "logGroupClass": "STANDARD",
        }
        if g.retention_days is not None:
            out["retentionInDays"] = g.retention_days
        return out

    def _shown_stream(self, group: LogGroup, s: LogStream) -> dict[str, Any]:
        out: dict[str, Any] = {
            "logStreamName": s.name,
            "creationTime": s.created_ms,
            "arn": f"{self._arn(group.name)}:log-stream:{s.name}",
            "storedBytes": s.stored_bytes,
            "uploadSequenceToken": str(s.seq),
        }
        for key, value in (
            ("firstEventTimestamp", s.first_ms),
            ("lastEventTimestamp", s.last_ms),
            ("lastIngestionTime", s.last_ingest_ms),
        ):
            if value is not None:
                out[key] = value
        return out

    # -- groups ----------------------------------------------------------------------------
    async def create_log_group(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        name = params["logGroupName"]
        if not rules.valid_group_name(name):
            raise InvalidParameterException(
                f"1 validation error detected: Value '{name}' at 'logGroupName' failed to satisfy "
                "constraint: Member must satisfy regular expression pattern: [\\.\\-_/#A-Za-z0-9]+"
            )
        if not await self._run(self.store.create_group, name, dict(params.get("tags") or {})):
            raise ResourceAlreadyExistsException("The specified log group already exists")
        return {}

    async def describe_log_groups(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        prefix = params.get("logGroupNamePrefix") or ""
        contains = params.get("logGroupNamePattern") or ""
        if prefix and contains:
            raise InvalidParameterException(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive."
            )
        limit = int(params.get("limit") or 50)
        after = _untoken(params.get("nextToken"), "n")
        found = await self._run(self.store.groups, prefix, after, limit + 1, contains)
        wanted = params.get("logGroupIdentifiers")
        if wanted:
            names = {w.split(":log-group:", 1)[-1].removesuffix(":*") for w in wanted}
            found = [g for g in found if g.name in names]
        out: dict[str, Any] = {"logGroups": [self._shown_group(g) for g in found[:limit]]}
        if len(found) > limit:
            out["nextToken"] = _token("n", found[limit - 1].name)
        return out

    async def delete_log_group(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        if not await self._run(self.store.delete_group, params["logGroupName"]):
            raise _no_group()
        return {}

    async def put_retention_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        days = params["retentionInDays"]
        if days not in rules.RETENTION_DAYS:
            raise InvalidParameterException(
                f"1 validation error detected: Value '{days}' at 'retentionInDays' failed to satisfy "
                "constraint: Member must satisfy enum value set: "
                f"[{', '.join(map(str, rules.RETENTION_DAYS))}]"
            )
        if not await self._run(self.store.set_retention, params["logGroupName"], days):
            raise _no_group()
        return {}

    async def delete_retention_policy(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        if not await self._run(self.store.set_retention, params["logGroupName"], None):
            raise _no_group()
        return {}

    # -- tags ------------------------------------------------------------------------------
    def _arn_group(self, arn: str) -> str:
        prefix = f"arn:aws:logs:{self.config.region}:{self.config.account_id}:log-group:"
        if not arn.startswith(prefix):
            raise InvalidParameterException(f"Invalid resource ARN: {arn}")
        return arn[len(prefix) :].removesuffix(":*")

    async def _retag(self, name: str, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
        group = await self.store_group(name)
        await self._run(self.store.set_tags, name, change(dict(group.tags)))

    async def store_group(self, name: str) -> LogGroup:
        group = await self._run(self.store.group, name)
        if group is None:
            raise _no_group()
        return group

    async def tag_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        tags = dict(params["tags"])
        await self._retag(self._arn_group(params["resourceArn"]), lambda old: {**old, **tags})
        return {}

    async def untag_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        keys = set(params["tagKeys"])
        await self._retag(
            self._arn_group(params["resourceArn"]),
            lambda old: {k: v for k, v in old.items() if k not in keys},
        )
        return {}

    async def list_tags_for_resource(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": (await self.store_group(self._arn_group(params["resourceArn"]))).tags}

    async def tag_log_group(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        tags = dict(params["tags"])
        await self._retag(params["logGroupName"], lambda old: {**old, **tags})
        return {}

    async def untag_log_group(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        keys = set(params["tags"])
        await self._retag(params["logGroupName"], lambda old: {k: v for k, v in old.items() if k not in keys})
        return {}

    async def list_tags_log_group(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        return {"tags": (await self.store_group(params["logGroupName"])).tags}

    # -- streams ---------------------------------------------------------------------------
    async def create_log_stream(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        name = params["logStreamName"]
        if not rules.valid_stream_name(name):
            raise InvalidParameterException("A log stream name cannot contain ':' or '*'.")
        group = await self.store_group(params["logGroupName"])
        if not await self._run(self.store.create_stream, group.id, name):
            raise ResourceAlreadyExistsException("The specified log stream already exists")
        return {}

    async def delete_log_stream(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        group = await self.store_group(params["logGroupName"])
        if not await self._run(self.store.delete_stream, group.id, params["logStreamName"]):
            raise _no_stream()
        return {}

    async def describe_log_streams(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(params)
        by_time = params.get("orderBy") == "LastEventTime"
        prefix = params.get("logStreamNamePrefix") or ""
        if by_time and prefix:
            raise InvalidParameterException("Cannot order by LastEventTime with a logStreamNamePrefix.")
        limit = int(params.get("limit") or 50)
        offset = int(_untoken(params.get("nextToken"), "o") or 0)
        found = await self._run(
            self.store.streams,
            group.id,
            prefix=prefix,
            by_time=by_time,
            descending=bool(params.get("descending")),
            offset=offset,
            limit=limit + 1,
        )
        out: dict[str, Any] = {"logStreams": [self._shown_stream(group, s) for s in found[:limit]]}
        if len(found) > limit:
            out["nextToken"] = _token("o", str(offset + limit))
        return out

    # -- events ----------------------------------------------------------------------------
    async def put_log_events(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        group = await self.store_group(params["logGroupName"])
        stream = await self._stream(group, params["logStreamName"])
        events = params["logEvents"]
        try:
            verdict = rules.check_batch(events, now_ms(), group.retention_days)
        except rules.BatchError as e:
            raise InvalidParameterException(str(e)) from None
        kept = [(int(events[i]["timestamp"]), str(events[i]["message"])) for i in verdict.keep]
        seq = await self._run(self.store.append, stream, kept) if kept else stream.seq
        out: dict[str, Any] = {"nextSequenceToken": str(seq)}
        if verdict.rejected:
            out["rejectedLogEventsInfo"] = verdict.rejected
        return out

    async def get_log_events(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(params)
        stream = await self._stream(group, params["logStreamName"])
        limit = int(params.get("limit") or 10_000)
        token = params.get("nextToken")
        after = before = None
        if token is not None:
            pos = rules.decode_position(str(token), "fb")
            if pos is None:
                raise InvalidParameterException("The specified nextToken is invalid.")
            after, before = (pos[1], None) if pos[0] == "f" else (None, pos[1])
        events = await self._run(
            self.store.stream_events,
            stream.id,
            start=params.get("startTime"),
            end=params.get("endTime"),
            after=after,
            before=before,
            from_head=bool(params.get("startFromHead")),
            limit=limit,
            max_bytes=MAX_ANSWER_BYTES,
        )
        if events:
            forward = rules.encode_position("f", events[-1].ts, events[-1].id)
            backward = rules.encode_position("b", events[0].ts, events[0].id)
        else:  # nothing new: the same position again (how a client knows it reached the end)
            here = after or before or (0, 0)
            forward = (
                str(token) if token is not None and after is not None else rules.encode_position("f", *here)
            )
            backward = (
                str(token) if token is not None and before is not None else rules.encode_position("b", *here)
            )
        return {
            "events": [{"timestamp": e.ts, "message": e.message, "ingestionTime": e.ingest} for e in events],
            "nextForwardToken": forward,
            "nextBackwardToken": backward,
        }

    async def filter_log_events(self, call: Any, params: dict[str, Any]) -> dict[str, Any]:
        group = await self._group(params)
        try:
            compiled = pattern.compile(params.get("filterPattern") or "")
        except pattern.PatternError as e:
            raise InvalidParameterException(f"Invalid filter pattern: {e}.") from None
        names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
        if names and prefix:
            raise InvalidParameterException("logStreamNames and logStreamNamePrefix are mutually exclusive.")
        after = None
        if params.get("nextToken") is not None:
            pos = rules.decode_position(str(params["nextToken"]), "n")
            if pos is None:
                raise InvalidParameterException("The specified nextToken is invalid.")
            after = pos[1]
        limit = int(params.get("limit") or 10_000)
        return await self._run(
            self._filter,
            group,
            compiled,
            names,
            prefix,
            after,
            limit,
            params.get("startTime"),
            params.get("endTime"),
        )

    def _filter(
        self,
        group: LogGroup,
        compiled: pattern.Pattern,
        names: list[str] | None,
        prefix: str | None,
        after: tuple[int, int] | None,
        limit: int,
        start: int | None,
        end: int | None,
    ) -> dict[str, Any]:
        stream_ids: list[int] | None = None
        if names or prefix:
            chosen = []
            offset = 0
            while True:  # a group's streams, a page at a time (never all of them at once)
                page = self.store.streams(group.id, prefix=prefix or "", offset=offset, limit=1000)
                chosen += [s for s in page if not names or s.name in names]
                if len(page) < 1000:
                    break
                offset += 1000
            stream_ids = [s.id for s in chosen]
            if not stream_ids:
                return {"events": [], "searchedLogStreams": []}
        found = []
        size = 0
        scanned = 0
        last = None
        more = False
        scan = self.store.group_events(
            group.id, start=start, end=end, after=after, stream_ids=stream_ids, needles=compiled.required
        )
        for e in scan:
            scanned += 1
            last = (e.ts, e.id)
            if compiled.matches(e.message):
                found.append(e)
                size += len(e.message) + 26
            if len(found) >= limit or size >= MAX_ANSWER_BYTES or scanned >= FILTER_SCAN_LIMIT:
                more = True
                break
        scan.close()  # ends the cursor's connection now, not when collected
        shown = self.store.stream_names(e.stream_id for e in found)
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": shown.get(e.stream_id, ""),
                    "timestamp": e.ts,
                    "message": e.message,
                    "ingestionTime": e.ingest,
                    "eventId": f"{e.ts:020d}{e.id:020d}",
                }
                for e in found
            ],
            "searchedLogStreams": [
                {"logStreamName": n, "searchedCompletely": not more} for n in sorted(set(shown.values()))
            ],
        }
        if more and last is not None:
            out["nextToken"] = rules.encode_position("n", *last)
        return out


OPERATIONS = {
    "CreateLogGroup": "create_log_group",
    "DescribeLogGroups": "describe_log_groups",
    "DeleteLogGroup": "delete_log_group",
    "PutRetentionPolicy": "put_retention_policy",
    "DeleteRetentionPolicy": "delete_retention_policy",
    "CreateLogStream": "create_log_stream",
    "DeleteLogStream": "delete_log_stream",
    "DescribeLogStreams": "describe_log_streams",
    "PutLogEvents": "put_log_events",
    "GetLogEvents": "get_log_events",
    "FilterLogEvents": "filter_log_events",
    "TagResource": "tag_resource",
    "UntagResource": "untag_resource",
    "ListTagsForResource": "list_tags_for_resource",
    "TagLogGroup": "tag_log_group",
    "UntagLogGroup": "untag_log_group",
    "ListTagsLogGroup": "list_tags_log_group",
}
"""Each operation's method of :class:`LogsApi`."""
