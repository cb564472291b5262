"""ExecuteCommand: run a command in a task's container (``dockyard exec``), and its stream.

ECS's own operation and shapes, with Dockyard's transport instead of Session Manager's:

1. ``ExecuteCommand`` (``cluster``, ``task``, ``container`` (optional when the task has one),
   ``command`` (one string, split as a shell would: ``shlex``), ``interactive``) is an ordinary
   SigV4-signed call, so the control plane's authentication (and, in the workers, forwarding)
   applies. The control plane creates and starts a Docker exec in the container, on the
   task's host, over the Docker API URL it drives that host with (``runner.agent``): with a
   TTY and stdin when ``interactive``, neither otherwise; Docker hands over the connection
   (hijacked), which the session keeps. It answers ECS's shape, whose ``session`` holds
   ``sessionId``, ``streamUrl`` (``http://<control host>/exec/<sessionId>``) and
   ``tokenValue``, a random secret that authenticates the session's requests.
2. ``GET /exec/<sessionId>`` with the header ``X-Dockyard-Exec-Token: <tokenValue>``: the
   command's output as it comes, framed by :mod:`runner.execstream`, ending with the exit code.
   One reader per session; a session nobody attaches to within :data:`ATTACH_WITHIN` seconds
   is closed. When the reader goes away before the command ended, the session closes and the
   command gets SIGHUP, as a closed terminal does (:func:`hang_up`: only where the control
   plane sees the process, the local host; Docker's API cannot stop an exec, so on a remote
   host it runs on until it ends).
3. ``POST /exec/<sessionId>/stdin`` (the body is written to the command's stdin;
   ``?close=1`` closes it after) and ``POST /exec/<sessionId>/resize?rows=R&cols=C`` (the
   TTY's size), with the same header; 204.

All three are plain HTTP requests, so they pass through the control workers unchanged (they
forward every route they do not answer themselves, streaming answers as they come), and the
sessions live in the main process only. The session's requests are logged with the access
key that opened it as their principal.

Remote hosts (``dockyard agent``): the control plane reaches their Docker API URL already
(``tcp://host:2375`` or ``unix://``), and an exec's hijacked connection is a plain socket on
it, so exec works there unchanged (``test_ecs_tasks_hosts`` runs one on a registered host's
own dockerd); what a remote host needs is that URL reachable from the
control plane, as for everything else (``ssh://`` URLs hijack through an ``ssh`` process and
were not tested). TLS to a remote engine is not supported here, as elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import os
import secrets
import shlex
import signal
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from dockyard import logs
from dockyard.aws.errors import AwsError, ResourceNotFoundException, UnrecognizedClientException, register
from dockyard.aws.protocol import ECS, Call, Operations
from dockyard.config import Config
from dockyard.store import Store
from runner import clusters, execstream, tasks
from runner.agent.host import Host
from runner.agent.transport import DockerError
from runner.errors import InvalidParameterException
from runner.tasklogs import HostLookup

__all__ = ["ATTACH_WITHIN", "TOKEN_HEADER", "Session", "Sessions", "execute_command", "install"]

log = logging.getLogger("dockyard.runner")

TargetNotConnectedException = register("TargetNotConnectedException")
ATTACH_WITHIN = 60.0  # seconds a new session waits for its stream
TOKEN_HEADER = execstream.TOKEN_HEADER
STREAM_TYPE = "application/vnd.dockyard.exec-stream"


@dataclass
class Session:
    """One exec: the hijacked Docker connection and who may use it."""

    id: str
    token: str
    principal: str
    host: Host
    exec_id: str
    sock: Any
    release: Callable[[], None]
    tty: bool
    container_id: str = ""
    created: float = field(default_factory=time.monotonic)
    attached: bool = False
    closed: bool = False

    def close(self) -> None:
        """Close the connection (the command loses its stdin and output; a shell ends)."""
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.sock.close()
        with contextlib.suppress(Exception):
            self.release()


class Sessions:
    """The open sessions of this process, by id."""

    def __init__(self) -> None:
        self.by_id: dict[str, Session] = {}

    def add(self, session: Session) -> None:
        self.by_id[session.id] = session

    def find(self, session_id: str, token: str) -> Session:
        """The session ``session_id`` if ``token`` is its own (else the AWS error to answer)."""
        session = self.by_id.get(session_id)
        if session is None:
            raise ResourceNotFoundException(f"No open exec session {session_id}.")
        if not hmac.compare_digest(session.token.encode(), token.encode()):
            raise UnrecognizedClientException("The exec session's token is not valid.")
        return session

    def close(self, session: Session) -> None:
        session.close()
        self.by_id.pop(session.id, None)

    def expire(self, now: float) -> None:
        """Close the sessions nobody attached to within :data:`ATTACH_WITHIN` seconds."""
        for session in list(self.by_id.values()):
            if not session.attached and now - session.created > ATTACH_WITHIN:
                self.close(session)

    def close_all(self) -> None:
        for session in list(self.by_id.values()):
            self.close(session)


def _command(params: dict[str, Any]) -> list[str]:
    command = params.get("command")
    if not isinstance(command, str) or not command.strip():
        raise InvalidParameterException("command must be a non-empty string.")
    try:
        argv = shlex.split(command)
    except ValueError as e:
        raise InvalidParameterException(f"command cannot be split into words: {e}.") from None
    if not argv:
        raise InvalidParameterException("command must be a non-empty string.")
    return argv


async def execute_command(
    store: Store, config: Config, hosts: HostLookup, sessions: Sessions, call: Call, params: dict[str, Any]
) -> dict[str, Any]:
    """ECS's ExecuteCommand (see the module docstring)."""
    argv = _command(params)
    interactive = params.get("interactive", True)
    if not isinstance(interactive, bool):
        raise InvalidParameterException("interactive must be true or false.")
    cluster = clusters.active(store, params.get("cluster")).name
    task = tasks.find(store, cluster, params.get("task"))
    if task.last_status != "RUNNING":
        raise InvalidParameterException(f"The task is {task.last_status}, not RUNNING.")
    containers = {c.name: c for c in task.containers}
    name = params.get("container")
    if name is None:
        if len(containers) != 1:
            raise InvalidParameterException(
                f"The task has {len(containers)} containers: name one with container"
                f" ({', '.join(containers)})."
            )
        (name,) = containers
    state = containers.get(name) if isinstance(name, str) else None
    if state is None:
        raise InvalidParameterException(f"The task has no container named {name}.")
    cid = state.runtime_id
    if not cid or state.last_status != "RUNNING":
        raise InvalidParameterException(f"The container {name} is not running.")
    host = hosts.host_of(task.instance_id)
    if host is None:
        raise TargetNotConnectedException("The task's container instance is not connected.")
    try:
        exec_id, sock, release = await asyncio.to_thread(
            host.transport.exec_start, cid, argv, interactive, interactive
        )
    except DockerError as e:
        raise InvalidParameterException(f"The command could not be started: {e}") from None
    principal = call.credential.access_key if call.credential else ""
    session = Session(uuid.uuid4().hex, secrets.token_urlsafe(32), principal, host, exec_id, sock, release,
                      interactive, str(cid))
    sessions.add(session)
    where = call.headers.get("host", f"127.0.0.1:{config.control_port}")
    task_arn = tasks.task_arn(config, cluster, task.id)
    return {
        "clusterArn": clusters.cluster_arn(config, cluster),
        "containerArn": f"arn:aws:ecs:{config.region}:{config.account_id}:container/{cluster}/"
        f"{task.id}/{uuid.uuid5(uuid.NAMESPACE_URL, task.id + name)}",
        "containerName": name,
        "interactive": interactive,
        "session": {"sessionId": session.id, "streamUrl": f"http://{where}/exec/{session.id}",
                    "tokenValue": session.token},
        "taskArn": task_arn,
    }


def hang_up(pid: int, container_id: str, proc: str = "/proc") -> bool:
    """Send SIGHUP to ``pid`` if it is a process of container ``container_id`` as this
    machine sees it (its cgroup names the container; a pid of another machine or pid
    namespace is left alone). Whether it was sent."""
    if pid <= 0 or len(container_id) < 12:
        return False
    try:
        with open(f"{proc}/{pid}/cgroup", encoding="utf-8") as f:
            if container_id not in f.read():
                return False
        os.kill(pid, signal.SIGHUP)
    except OSError:
        return False
    return True


async def _abandon(session: Session) -> None:
    """The client of a session went away before its command ended: Docker would keep the
    command running (its API cannot stop an exec), so hang it up as a closed terminal would,
    where this process can see it (the local host)."""
    try:
        info = await asyncio.to_thread(session.host.transport.exec_inspect, session.exec_id)
    except DockerError:
        return
    if info.get("Running") and hang_up(int(info.get("Pid") or 0), session.container_id):
        log.info("exec session abandoned: command hung up", extra={"session": session.id})


async def _exit_code(session: Session) -> int | None:
    """The command's exit code once Docker says it is no longer running (None: unknown)."""
    for _ in range(50):
        try:
            info = await asyncio.to_thread(session.host.transport.exec_inspect, session.exec_id)
        except DockerError:
            return None
        if not info.get("Running"):
            return info.get("ExitCode")
        await asyncio.sleep(0.1)
    return None


def install(platform: Any, hosts: HostLookup) -> None:
    """Register ExecuteCommand and the session routes on the control app; close sessions
    nobody attached to, and every session at stop."""
    ops: Operations = platform.ops
    sessions = Sessions()

    async def operation(call: Call, params: dict[str, Any]) -> dict[str, Any]:
        return await execute_command(platform.store, platform.config, hosts, sessions, call, params)

    def session_of(request: web.Request) -> Session:
        session = sessions.find(request.match_info["session"], request.headers.get(TOKEN_HEADER, ""))
        logs.principal.set(session.principal)  # the access line's principal
        return session

    def refuse(request: web.Request, e: AwsError) -> web.Response:
        return ops.error_response(e, request.get("request_id", ""), request.path)

    async def stream(request: web.Request) -> web.StreamResponse:
        try:
            session = session_of(request)
            if session.attached:
                raise InvalidParameterException("The exec session already has a reader.")
        except AwsError as e:
            return refuse(request, e)
        session.attached = True
        resp = web.StreamResponse(headers={"Content-Type": STREAM_TYPE, "Cache-Control": "no-cache"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        # bounded: a client slower than the command's output slows the reads from Docker
        queue: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue(maxsize=64)

        def put(item: tuple[int, bytes] | None) -> None:
            """Hand ``item`` to the loop, waiting while the queue is full (until the session
            closes: then nobody reads it any more)."""
            try:
                done = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            except RuntimeError:  # the loop has gone away
                return
            while not session.closed:
                try:
                    done.result(timeout=1)
                    return
                except TimeoutError:
                    continue
            done.cancel()

        def pump() -> None:  # blocking reads of the hijacked socket, in a thread of its own
            from docker.utils.socket import frames_iter

            try:
                for kind, data in frames_iter(session.sock, session.tty):
                    if data:
                        put((kind, data))
            except Exception:  # the socket closed under the read: the end
                pass
            finally:
                put(None)

        threading.Thread(target=pump, name=f"exec {session.id}", daemon=True).start()
        try:
            ended = False
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), 1.0)
                except TimeoutError:
                    # aiohttp does not cancel a handler whose client went away: look
                    if request.transport is None or request.transport.is_closing():
                        break
                    continue
                if item is None:
                    ended = True
                    break
                kind, data = item
                kind = kind if kind == execstream.STDERR else execstream.STDOUT
                await resp.write(execstream.frame(kind, data))
            if ended:
                await resp.write(execstream.exit_frame(await _exit_code(session)))
                await resp.write_eof()
        except ConnectionError:
            ended = False  # the client went away
        finally:
            sessions.close(session)
            if not ended:
                await _abandon(session)
        return resp

    async def stdin(request: web.Request) -> web.Response:
        try:
            session = session_of(request)
        except AwsError as e:
            return refuse(request, e)
        data = await request.read()
        try:
            if data:
                await asyncio.to_thread(session.sock.sendall, data)
            if request.query.get("close") == "1":
                session.sock.shutdown(socket.SHUT_WR)
        except OSError:
            return refuse(request, ResourceNotFoundException("The exec session has ended."))
        return web.Response(status=204)

    async def resize(request: web.Request) -> web.Response:
        try:
            session = session_of(request)
            try:
                rows, cols = int(request.query["rows"]), int(request.query["cols"])
            except (KeyError, ValueError):
                raise InvalidParameterException("resize needs rows and cols, whole numbers.") from None
            if not (0 < rows < 10_000 and 0 < cols < 10_000):
                raise InvalidParameterException("rows and cols must be between 1 and 9999.")
            await asyncio.to_thread(session.host.transport.exec_resize, session.exec_id, rows, cols)
        except AwsError as e:
            return refuse(request, e)
        except DockerError:
            pass  # the command ended meanwhile: nothing to resize
        return web.Response(status=204)

    async def sweep(p: Any) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(5)
                sessions.expire(time.monotonic())

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            sessions.close_all()

    ops.add(ECS, "ExecuteCommand", operation)
    platform.control.router.add_get("/exec/{session}", stream)
    platform.control.router.add_post("/exec/{session}/stdin", stdin)
    platform.control.router.add_post("/exec/{session}/resize", resize)
    platform.contexts.append(sweep)
