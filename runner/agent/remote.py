"""``dockyard agent``: make a further Docker host a container instance of a cluster.

Design (the simplest honest one): the control plane drives every Docker host itself, over
the host's Docker API URL (``unix:///run/x.sock`` on the same machine, ``tcp://host:2375`` or
``ssh://`` elsewhere; the control plane must be able to reach it). The agent only vouches for
the host: it reads ``docker info`` from it, registers it with RegisterContainerInstance (ECS's
own operation, with Dockyard's ``dockerHost`` and ``dockerInfo`` fields) and repeats that call
every ``--heartbeat`` seconds, naming the instance (``containerInstanceArn``). Once the
instance is deregistered the heartbeat is refused and the agent exits (status 1), as ECS's
agent does; started again, it registers the host as a new instance. An instance whose agent
stops calling shows ``agentConnected: false`` after the control plane's ``agent_timeout`` (30 s) and gets no
new tasks; its running tasks keep running and stay supervised.

``dockyard agent drain HOST [--wait]`` (and ``activate``) sets a container instance (its id,
ARN or ``ec2InstanceId``) DRAINING (or ACTIVE again) with UpdateContainerInstancesState;
``--wait`` prints its service tasks as they move, until none is left on it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from typing import Any

from dockyard.client import ApiError

__all__ = ["add_command", "register_once"]

ECS = "AmazonEC2ContainerServiceV20141113"
INFO_KEYS = ("NCPU", "MemTotal", "OSType", "Architecture", "Name", "ServerVersion", "ID", "ApiVersion")


def register_once(
    client: Any, cluster: str, docker_host: str, attributes: list[dict[str, str]], zone: str, arn: str = ""
) -> str:
    """One registration, or with ``arn`` a heartbeat of that instance (refused with
    ClientException once it is deregistered); returns the container instance ARN."""
    from runner.agent.transport import DockerError, DockerTransport

    transport = DockerTransport(docker_host, timeout=30)
    try:
        info = transport.info()
    except DockerError as e:
        raise OSError(f"cannot reach the Docker Engine at {docker_host}: {e}") from None
    finally:
        transport.close()
    params: dict[str, Any] = {
        "cluster": cluster,
        "dockerHost": docker_host,
        "dockerInfo": {
            **{k: info.get(k) for k in INFO_KEYS},
            # the log and volume drivers name the host's capabilities (runner.instances)
            "Plugins": {k: (info.get("Plugins") or {}).get(k) or [] for k in ("Log", "Volume")},
        },
        "attributes": attributes,
    }
    if zone:
        params["availabilityZone"] = zone
    if arn:
        params["containerInstanceArn"] = arn
    out = client.call(ECS, "RegisterContainerInstance", params)
    return str(out["containerInstance"]["containerInstanceArn"])


def _attributes(values: list[str], ctx: Any) -> list[dict[str, str]]:
    out = []
    for v in values:
        name, sep, value = v.partition("=")
        if not name:
            raise ctx.UserError(f"--attribute wants NAME or NAME=VALUE, not {v!r}")
        out.append({"name": name, "value": value} if sep else {"name": name})
    return out


def _instance_arn(client: Any, cluster: str, ident: str, ctx: Any) -> str:
    """The ARN of the instance ``ident`` names (id, ARN or ec2InstanceId)."""
    arns = client.call(ECS, "ListContainerInstances", {"cluster": cluster})["containerInstanceArns"]
    if not arns:
        raise ctx.UserError(f"cluster {cluster} has no container instances")
    described = client.call(ECS, "DescribeContainerInstances",
                            {"cluster": cluster, "containerInstances": arns})
    for inst in described["containerInstances"]:
        arn = inst["containerInstanceArn"]
        if ident in (arn, arn.rsplit("/", 1)[-1], inst.get("ec2InstanceId")):
            return str(arn)
    raise ctx.UserError(f"no container instance {ident} in cluster {cluster}")


def cmd_drain(args: argparse.Namespace, ctx: Any) -> int:
    """``dockyard agent drain|activate HOST``."""
    args.endpoint_url = args.endpoint_url or args.control_plane
    client = ctx.client(args)
    arn = _instance_arn(client, args.cluster, args.instance, ctx)
    status = "DRAINING" if args.action == "drain" else "ACTIVE"
    out = client.call(ECS, "UpdateContainerInstancesState",
                      {"cluster": args.cluster, "containerInstances": [arn], "status": status})
    if out["failures"]:
        raise ctx.UserError(f"{arn}: {out['failures'][0].get('detail') or out['failures'][0]['reason']}")
    inst = out["containerInstances"][0]
    if args.json and not args.wait:
        print(json.dumps(inst, indent=2, default=str))
        return 0
    print(f"{arn}: {inst['status']}, {inst['runningTasksCount']} running tasks", flush=True)
    if not (args.wait and status == "DRAINING"):
        return 0
    last = None
    while True:
        listed = client.call(ECS, "ListTasks", {"cluster": args.cluster, "containerInstance": arn})
        tasks = listed["taskArns"]
        described = client.call(ECS, "DescribeTasks", {"cluster": args.cluster, "tasks": tasks[:100]}) \
            if tasks else {}
        left = [t for t in described.get("tasks", []) if str(t.get("group", "")).startswith("service:")]
        now = (len(left), len(tasks))
        if now != last:
            line = {"instance": arn, "serviceTasks": len(left), "tasks": len(tasks)}
            print(json.dumps(line) if args.json else f"  {len(left)} service tasks left ({len(tasks)} tasks)",
                  flush=True)
            last = now
        if not left:
            return 0
        time.sleep(1.0)


def cmd_agent(args: argparse.Namespace, ctx: Any) -> int:
    if args.action:
        if not args.instance:
            raise ctx.UserError(f"dockyard agent {args.action} HOST: name the container instance")
        return cmd_drain(args, ctx)
    if not args.control_plane or not args.docker_host:
        print("dockyard agent: --control-plane and --docker-host are required", file=sys.stderr)
        return 2
    args.endpoint_url = args.control_plane
    client = ctx.client(args)
    attributes = _attributes(args.attribute or [], ctx)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    arn = register_once(client, args.cluster, args.docker_host, attributes, args.availability_zone)
    print(f"dockyard agent: {args.docker_host} registered as {arn}", flush=True)
    if args.once:
        return 0
    while not stop.wait(args.heartbeat):
        try:
            register_once(client, args.cluster, args.docker_host, attributes, args.availability_zone, arn)
        except ApiError as e:
            if e.code == "ClientException":  # deregistered: as ECS's agent, stop for good
                print(f"dockyard agent: {e}", flush=True)
                return 1
            print(f"dockyard agent: heartbeat failed: {e}", flush=True)
        except OSError as e:  # keep trying: the control plane or dockerd may be back
            print(f"dockyard agent: heartbeat failed: {e}", flush=True)
    print("dockyard agent: stopped", flush=True)
    return 0


def add_command(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("agent", help="register a Docker host as a container instance and keep it alive; "
                                     "or drain/activate one")
    ctx.data_dir_args(p)
    p.add_argument("action", nargs="?", choices=["drain", "activate"],
                   help="drain: set the instance DRAINING; activate: ACTIVE again")
    p.add_argument("instance", nargs="?", help="with drain/activate: the instance's id, ARN or ec2InstanceId")
    p.add_argument("--control-plane", help="control API URL, e.g. http://127.0.0.1:8080 (to register)")
    p.add_argument("--docker-host",
                   help="the host's Docker API URL, reachable by the control plane (to register)")
    p.add_argument("--endpoint-url", help="drain/activate: control API URL (default from config)")
    p.add_argument("--wait", action="store_true", help="drain: wait until no service task is left on it")
    p.add_argument("--json", action="store_true", help="drain: JSON output")
    p.add_argument("--cluster", default="default")
    p.add_argument("--attribute", action="append", help="custom attribute NAME=VALUE (repeatable)")
    p.add_argument("--availability-zone", default="", help="the ecs.availability-zone attribute")
    p.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats (default 10)")
    p.add_argument("--once", action="store_true", help="register and exit")
    p.set_defaults(func=lambda a: cmd_agent(a, ctx))
