"""Task, service and container-instance state changes as server-sent events on the control
port: ``GET /events?since=N[&cluster=NAME]``.

Authentication is the control API's own: a SigV4-signed GET (any service name in the scope;
the ``dockyard events`` command signs it), or the admin key's id and secret as HTTP Basic
credentials (``curl -u KEY:SECRET``) for quick looks.

Each event is one store change, sent after it committed::

    id: 1234
    event: task
    data: {"revision": 1234, "type": "task", "time": 1764630000.25, "taskArn": "...", ...}

``time`` is when the change committed (epoch seconds), the same in a replay as live.

``since`` (or the ``Last-Event-ID`` header a reconnecting EventSource sends) replays the
changes after that revision still kept by the store; without it the stream starts now. A
comment line every :data:`KEEPALIVE` seconds keeps proxies from closing a quiet stream. The
payload of a change is the current state of the object (a task that changed twice before it
was sent shows its latest state twice): clients read it as "this object is now like this".
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from dockyard.aws.errors import AwsError, InvalidParameterException
from dockyard.aws.protocol import EMPTY_SHA256, PEER, Call, Operations
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, data, instances, serviceshapes, tasks

__all__ = ["KEEPALIVE", "TOPICS", "event_for", "install"]

KEEPALIVE = 15.0
SERVICE_TOPIC = "ecs/service"
TOPICS = {tasks.TOPIC: "task", SERVICE_TOPIC: "service", instances.TOPIC: "container-instance"}


def event_for(store: Store, config: Config, topic: str, key: str, revision: int) -> dict[str, Any] | None:
    """The event payload of one change (None when it is not worth sending)."""
    kind = TOPICS.get(topic)
    if kind == "task":
        task = data.task(store, key)
        if task is None:
            return {"revision": revision, "type": "task", "taskId": key, "deleted": True}
        out = {
            "revision": revision,
            "type": "task",
            "cluster": task.cluster,
            "taskArn": tasks.task_arn(config, task.cluster, task.id),
            "taskDefinitionArn": task.definition_arn,
            "group": task.group,
            "lastStatus": task.last_status,
            "desiredStatus": task.desired_status,
            "healthStatus": task.health,
            "version": task.version,
        }
        if task.stop_code:
            out["stopCode"] = task.stop_code
        if task.stopped_reason:
            out["stoppedReason"] = task.stopped_reason
        return out
    if kind == "container-instance":
        inst = instances.get(store, config, key)
        if inst is None:
            return None
        return {
            "revision": revision,
            "type": kind,
            "cluster": inst.cluster,
            "containerInstanceArn": inst.arn,
            "status": inst.status,
            "agentConnected": inst.connected,
        }
    if kind == "service":
        try:
            return {"revision": revision, "type": "service", **_service(store, config, key)}
        except Exception:  # never let one odd row end every client's stream
            return {"revision": revision, "type": "service", "key": key}
    return None


def _service(store: Store, config: Config, key: str) -> dict[str, Any]:
    """A changed service (key ``cluster/name``) as DescribeServices shows it, in brief: counts,
    the rollout state of each deployment and the newest service event."""
    cluster, _, name = key.partition("/")
    svc = data.service(store, cluster, name)
    if svc is None:
        return {"cluster": cluster, "serviceName": name, "deleted": True}
    s = serviceshapes.shape(config, store, svc)
    out = {"cluster": cluster, "serviceName": name}
    out.update(
        {k: s[k] for k in ("serviceArn", "status", "desiredCount", "runningCount", "pendingCount") if k in s}
    )
    out["deployments"] = [
        {
            k: d.get(k)
            for k in ("id", "status", "taskDefinition", "rolloutState", "runningCount", "desiredCount")
        }
        for d in s.get("deployments") or []
    ]
    if s.get("events"):
        out["lastEvent"] = s["events"][0].get("message", "")
    return out


def _cluster_of(event: dict[str, Any]) -> str:
    return str(event.get("cluster") or event.get("clusterName") or "")


def _authenticate(ops: Operations, request: web.Request) -> None:
    """The control API's authentication (:meth:`Operations.authenticate`), Basic allowed, and
    its authorization: the action ``dockyard:GetEvents``, on the cluster's ARN with
    ``?cluster=`` (else ``*``; see ``dockyard.iam.actions``)."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers[PEER] = request.remote or ""
    path = request.raw_path.split("?", 1)[0]
    credential = ops.authenticate(
        request.method, path, request.query_string, headers, EMPTY_SHA256, basic=True
    )
    if ops.authorize is not None:
        call = Call(headers, "dockyard", "GetEvents", credential, request.get("request_id", ""))
        ops.authorize(call, {"cluster": request.query.get("cluster") or ""})


def _since(text: str, store: Store) -> int:
    """The revision to replay after: ``text`` (a revision number), or now when empty."""
    try:
        since = int(text) if text else store.revision
    except ValueError:
        since = -1
    if since < 0:
        raise InvalidParameterException("since must be a revision number.")
    return since


def install(platform: Any) -> None:
    """Add ``GET /events`` to the control port."""
    store: Store = platform.store
    config: Config = platform.config
    ops: Operations = platform.ops

    streams: set[asyncio.Task[Any]] = set()

    async def close_streams(app: web.Application) -> None:
        # Open streams would otherwise hold the server's shutdown for its whole grace period.
        for t in list(streams):
            t.cancel()

    platform.control.on_shutdown.append(close_streams)

    async def stream(request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        streams.add(task)
        try:
            return await _stream(request)
        except asyncio.CancelledError:
            if request.transport is not None:
                request.transport.close()
            raise
        finally:
            streams.discard(task)

    async def _stream(request: web.Request) -> web.StreamResponse:
        try:
            _authenticate(ops, request)
            since = _since(request.query.get("since") or request.headers.get("Last-Event-ID") or "", store)
            only = request.query.get("cluster")
            if only:
                only = clusters.cluster_name(only)
        except AwsError as e:
            return ops.error_response(e, request.get("request_id", ""), "GET /events")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await resp.prepare(request)
        await resp.write(b": dockyard events\n\n")
        while True:
            changes = await store.changes(since, list(TOPICS), timeout=KEEPALIVE)
            if not changes:
                await resp.write(b": keepalive\n\n")
                continue
            out = []
            # each event carries the time of its change, so a replay (since=N) keeps its times
            times = data.change_times(store, changes[0].revision, changes[-1].revision)
            for ch in changes:
                since = ch.revision
                event = event_for(store, config, ch.topic, ch.key, ch.revision)
                if event is None or (only and _cluster_of(event) not in ("", only)):
                    continue
                if ch.revision in times:
                    event["time"] = times[ch.revision]
                body = json.dumps(event, separators=(",", ":"))
                out.append(f"id: {ch.revision}\nevent: {event['type']}\ndata: {body}\n\n")
            if out:
                await resp.write("".join(out).encode())

    platform.control.router.add_get("/events", stream)
