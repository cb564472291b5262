"""``dockyard ps``, ``dockyard logs TASK``, ``dockyard events`` and ``dockyard agent``.

``ps`` and ``logs`` use the control API (ListTasks/DescribeTasks, Dockyard's GetTaskLogs;
``logs --follow`` polls it with the token of its last answer, see :mod:`runner.tasklogs`);
``events`` follows the control port's server-sent events (``GET /events``), signed with
SigV4 like every API call. ``agent`` registers a further Docker host as a container instance
(see :mod:`runner.agent.remote`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

from dockyard.aws import sigv4
from dockyard.client import Unreachable

__all__ = ["add_commands"]

ECS = "AmazonEC2ContainerServiceV20141113"


def _when(t: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t)) if t else ""


def _clusters(client: Any, only: str | None) -> list[str]:
    if only:
        return [only]
    return [a.rsplit("/", 1)[1] for a in client.call(ECS, "ListClusters", {})["clusterArns"]]


def _tasks(client: Any, cluster: str, status: str) -> list[dict[str, Any]]:
    arns: list[str] = []
    params: dict[str, Any] = {"cluster": cluster, "desiredStatus": status}
    while True:
        page = client.call(ECS, "ListTasks", params)
        arns += page["taskArns"]
        if not page.get("nextToken"):
            break
        params["nextToken"] = page["nextToken"]
    out = []
    for i in range(0, len(arns), 100):
        out += client.call(ECS, "DescribeTasks", {"cluster": cluster, "tasks": arns[i : i + 100]})["tasks"]
    return out


def cmd_ps(args: argparse.Namespace, ctx: Any) -> int:
    client = ctx.client(args)
    rows = []
    for cluster in _clusters(client, args.cluster):
        statuses = ["RUNNING", "STOPPED"] if args.all else ["RUNNING"]
        for status in statuses:
            for t in _tasks(client, cluster, status):
                rows.append(
                    {
                        "task": t["taskArn"].rsplit("/", 1)[1],
                        "cluster": cluster,
                        "definition": t["taskDefinitionArn"].rsplit("/", 1)[-1],
                        "status": t["lastStatus"],
                        "desired": t["desiredStatus"],
                        "health": t.get("healthStatus", "UNKNOWN"),
                        "group": t.get("group", ""),
                        "started": _when(t.get("startedAt")),
                        "reason": t.get("stoppedReason", ""),
                    }
                )
    ctx.emit(
        args,
        rows,
        ["task", "cluster", "definition", "status", "desired", "health", "group", "started", "reason"],
    )
    return 0


def _find_cluster(client: Any, task: str, only: str | None) -> str:
    if task.startswith("arn:"):
        return task.split("/")[-2]
    for cluster in _clusters(client, only):
        if client.call(ECS, "DescribeTasks", {"cluster": cluster, "tasks": [task]})["tasks"]:
            return cluster
    raise LookupError(task)


def cmd_logs(args: argparse.Namespace, ctx: Any) -> int:
    client = ctx.client(args)
    try:
        cluster = _find_cluster(client, args.task, args.cluster)
    except LookupError:
        raise ctx.UserError(f"no task {args.task}") from None
    params: dict[str, Any] = {"cluster": cluster, "task": args.task, "tail": args.tail}
    if args.container:
        params["containerName"] = args.container
    out = client.call(ECS, "GetTaskLogs", params)
    if args.json and not args.follow:
        print(json.dumps(out, indent=2))
        return 0
    _print_logs(out, args.json)
    if not args.follow:
        return 0
    # --follow: poll with the token of the last answer until the task has stopped (GetTaskLogs
    # answers the lines written after the token; see runner.tasklogs)
    del params["tail"]
    while out.get("lastStatus") != "STOPPED":
        time.sleep(args.interval)
        out = client.call(ECS, "GetTaskLogs", {**params, "nextToken": out["nextForwardToken"]})
        _print_logs(out, args.json)
    return 0


def _print_logs(out: dict[str, Any], as_json: bool) -> None:
    """Print one GetTaskLogs answer: its lines (prefixed with the container's name when the
    task has several), or with ``as_json`` one JSON object per container that has lines."""
    many = len(out["containers"]) > 1
    for c in out["containers"]:
        if as_json:
            if c["logs"]:
                print(json.dumps({"containerName": c["containerName"], "logs": c["logs"]}), flush=True)
            continue
        for line in c["logs"].splitlines():
            print(f"{c['containerName']} | {line}" if many else line, flush=True)


def follow_events(client: Any, since: int | None, cluster: str | None, timeout: float | None = None) -> Any:
    """Yield the control port's events (dicts) as they come; signed like API calls."""
    url = urlsplit(client.endpoint)
    query = {k: v for k, v in (("since", since), ("cluster", cluster)) if v is not None}
    raw_query = urlencode(sorted(query.items()))
    headers = sigv4.sign(
        "GET",
        "/events",
        {"host": url.netloc},
        b"",
        client.key,
        client.secret,
        client.region,
        "ecs",
        raw_query=raw_query,
    )
    headers.pop("host")
    conn_cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
    conn = conn_cls(url.hostname or "127.0.0.1", url.port, timeout=timeout)
    try:
        conn.request("GET", "/events" + (f"?{raw_query}" if raw_query else ""), headers=headers)
        resp = conn.getresponse()
    except (ConnectionError, TimeoutError, OSError) as e:
        conn.close()
        unreachable = getattr(client, "unreachable", None)
        raise (unreachable(e) if unreachable else e) from None
    if resp.status != 200:
        body = json.loads(resp.read() or b"{}")
        raise RuntimeError(f"{body.get('__type', resp.status)}: {body.get('message', resp.reason)}")
    data: list[str] = []
    try:
        for raw in resp:
            line = raw.decode().rstrip("\n")
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line and data:
                yield json.loads("\n".join(data))
                data = []
    finally:
        conn.close()


def _describe_event(e: dict[str, Any]) -> str:
    """One line for an event, stamped with the time of its change (now if it has none)."""
    when = time.strftime("%H:%M:%S", time.localtime(e.get("time") or time.time()))
    if e["type"] == "task":
        name = e.get("taskArn", e.get("taskId", "")).rsplit("/", 1)[-1]
        extra = (
            f" ({e['stopCode']}: {e.get('stoppedReason', '')})" if e.get("lastStatus") == "STOPPED" else ""
        )
        return (
            f"{when} task {name} {e.get('group', '')} {e.get('lastStatus', 'DELETED')}"
            f" desired={e.get('desiredStatus', '')} health={e.get('healthStatus', '')}{extra}"
        )
    if e["type"] == "service":
        rollout = ",".join(str(d.get("rolloutState")) for d in e.get("deployments", []))
        return (
            f"{when} service {e.get('serviceName')} running={e.get('runningCount')}/{e.get('desiredCount')}"
            f" pending={e.get('pendingCount')} rollout={rollout} {e.get('lastEvent', '')}"
        ).rstrip()
    return f"{when} {e['type']} {json.dumps(e)}"


def cmd_events(args: argparse.Namespace, ctx: Any) -> int:
    client = ctx.client(args)
    try:
        for e in follow_events(client, args.since, args.cluster):
            print(json.dumps(e) if args.json else _describe_event(e), flush=True)
    except RuntimeError as e:
        raise ctx.UserError(str(e)) from None
    except (BrokenPipeError, Unreachable):
        raise  # the reader went away (``| head``), or no server: dockyard.cli says it
    except OSError as e:
        raise ctx.UserError(f"cannot follow events: {e}") from None
    return 0


def add_commands(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("ps", help="list tasks (all clusters unless --cluster)")
    ctx.client_args(p)
    p.add_argument("--cluster")
    p.add_argument("--all", "-a", action="store_true", help="include stopped tasks")
    p.set_defaults(func=lambda a: cmd_ps(a, ctx))

    p = sub.add_parser("logs", help="a task's container logs (from Docker)")
    ctx.client_args(p)
    p.add_argument("task", help="task id or ARN")
    p.add_argument("--cluster")
    p.add_argument("--container", help="only this container")
    p.add_argument("--tail", type=int, default=200, help="last N lines of each container (default 200)")
    p.add_argument("--follow", "-f", action="store_true",
                   help="then print new lines as they come, until the task stops (or Ctrl-C)")
    p.add_argument("--interval", type=float, default=1.0,
                   help="seconds between polls of --follow (default 1)")
    p.set_defaults(func=lambda a: cmd_logs(a, ctx))

    p = sub.add_parser("events", help="follow task and service state changes as they happen")
    ctx.client_args(p)
    p.add_argument("--since", type=int, help="replay from this revision")
    p.add_argument("--cluster")
    p.set_defaults(func=lambda a: cmd_events(a, ctx))

    from runner.agent import remote

    remote.add_command(sub, ctx)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
