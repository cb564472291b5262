"""``dockyard agent``: make a further Docker host a container instance of a cluster.

Design (the simplest honest one): the control plane drives every Docker host itself, over
the host's Docker API URL (``unix:///run/x.sock`` on the same machine, ``tcp://host:2375`` or
``ssh://`` elsewhere; the control plane must be able to reach it). The agent only vouches for
the host: it reads ``docker info`` from it, registers it with RegisterContainerInstance (ECS's
own operation, with Dockyard's ``dockerHost`` and ``dockerInfo`` fields) and repeats that call
every ``--heartbeat`` seconds. An instance whose agent stops calling shows
``agentConnected: false`` after the control plane's ``agent_timeout`` (30 s) and gets no
new tasks; its running tasks keep running and stay supervised.
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from dockyard.client import ApiError

__all__ = ["add_command", "register_once"]

ECS = "AmazonEC2ContainerServiceV20141113"
INFO_KEYS = ("NCPU", "MemTotal", "OSType", "Architecture", "Name", "ServerVersion", "ID", "ApiVersion")


def register_once(
    client: Any, cluster: str, docker_host: str, attributes: list[dict[str, str]], zone: str
) -> str:
    """One registration (or heartbeat); returns the container instance ARN."""
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


def cmd_agent(args: argparse.Namespace, ctx: Any) -> int:
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
            register_once(client, args.cluster, args.docker_host, attributes, args.availability_zone)
        except (OSError, ApiError) as e:  # keep trying: the control plane or dockerd may be back
            print(f"dockyard agent: heartbeat failed: {e}", flush=True)
    print("dockyard agent: stopped", flush=True)
    return 0


def add_command(sub: Any, ctx: Any) -> None:
    p = sub.add_parser("agent", help="register a Docker host as a container instance and keep it alive")
    ctx.data_dir_args(p)
    p.add_argument("--control-plane", required=True, help="control API URL, e.g. http://127.0.0.1:8080")
    p.add_argument(
        "--docker-host", required=True, help="the host's Docker API URL, reachable by the control plane"
    )
    p.add_argument("--cluster", default="default")
    p.add_argument("--attribute", action="append", help="custom attribute NAME=VALUE (repeatable)")
    p.add_argument("--availability-zone", default="", help="the ecs.availability-zone attribute")
    p.add_argument("--heartbeat", type=float, default=10.0, help="seconds between heartbeats (default 10)")
    p.add_argument("--once", action="store_true", help="register and exit")
    p.set_defaults(func=lambda a: cmd_agent(a, ctx))
