"""``dockyard exec TASK [--container NAME] -- CMD [ARG...]``: run a command in a task's container.

Like ``aws ecs execute-command``: it calls ECS's ExecuteCommand, then follows the session's
stream (:mod:`runner.execs`). When stdin is a terminal the session is interactive: a TTY in
the container, the local terminal in raw mode (Ctrl-C and Ctrl-D go to the command), keys
sent as they are typed, the TTY resized with the window. Otherwise it is not: no TTY and no
stdin, the command's stdout and stderr to the CLI's own. Either way the CLI exits with the
command's exit code (1 when the control plane could not tell it).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import shlex
import signal
import sys
import threading
from typing import Any
from urllib.parse import urlsplit

from runner.execstream import EXIT, STDERR, TOKEN_HEADER, Decoder

__all__ = ["add_command"]

ECS = "AmazonEC2ContainerServiceV20141113"


class _Stream:
    """The HTTP side of one session: connections to the control API carrying its token."""

    def __init__(self, client: Any, session: dict[str, Any]) -> None:
        self.url = urlsplit(client.endpoint)
        self.path = urlsplit(session["streamUrl"]).path  # on the endpoint the CLI already uses
        self.headers = {TOKEN_HEADER: session["tokenValue"]}
        self.unreachable = getattr(client, "unreachable", None)
        self._post: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def connect(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self.url.scheme == "https" else http.client.HTTPConnection
        return cls(self.url.hostname or "127.0.0.1", self.url.port, timeout=None)

    def open(self) -> http.client.HTTPResponse:
        conn = self.connect()
        try:
            conn.request("GET", self.path, headers=self.headers)
            return conn.getresponse()
        except OSError as e:
            raise (self.unreachable(e) if self.unreachable else e) from None

    def post(self, what: str, body: bytes = b"") -> None:
        """POST to the session's ``what`` (``stdin``, ``resize?...``), on one kept connection."""
        with self._lock:
            for attempt in (1, 2):
                if self._post is None:
                    self._post = self.connect()
                try:
                    self._post.request("POST", f"{self.path}/{what}", body=body, headers=self.headers)
                    self._post.getresponse().read()
                    return
                except (OSError, http.client.HTTPException):
                    self._post.close()
                    self._post = None
                    if attempt == 2:
                        return  # the session has ended; the stream says how


def _terminal_size() -> tuple[int, int] | None:
    try:
        size = os.get_terminal_size(sys.stdout.fileno())
    except OSError:
        return None
    return size.lines, size.columns


def _send_keys(stream: _Stream) -> None:
    """Send what is typed, as it is typed, until stdin ends (then close the command's)."""
    while True:
        try:
            data = os.read(sys.stdin.fileno(), 4096)
        except OSError:
            data = b""
        if not data:
            stream.post("stdin?close=1")
            return
        stream.post("stdin", data)


def _follow(resp: http.client.HTTPResponse) -> int | None:
    """Write the stream's output to stdout and stderr; the exit code (None: cut short)."""
    decoder = Decoder()
    out, err = sys.stdout.fileno(), sys.stderr.fileno()
    while True:
        data = resp.read1(65536)
        if not data:
            return None
        for kind, payload in decoder.feed(data):
            if kind == EXIT:
                code = json.loads(payload).get("exitCode")
                return 1 if code is None else int(code)
            os.write(err if kind == STDERR else out, payload)


def cmd_exec(args: argparse.Namespace, ctx: Any) -> int:
    from runner.tasks_cli import _find_cluster

    argv = list(args.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise ctx.UserError("give the command after --, e.g. dockyard exec TASK -- sh")
    interactive = sys.stdin.isatty()
    client = ctx.client(args)
    try:
        cluster = _find_cluster(client, args.task, args.cluster)
    except LookupError:
        raise ctx.UserError(f"no task {args.task}") from None
    params: dict[str, Any] = {"cluster": cluster, "task": args.task, "command": shlex.join(argv),
                              "interactive": interactive}
    if args.container:
        params["container"] = args.container
    session = client.call(ECS, "ExecuteCommand", params)["session"]
    stream = _Stream(client, session)
    resp = stream.open()
    if resp.status != 200:
        body = json.loads(resp.read() or b"{}")
        raise ctx.UserError(f"{body.get('__type', resp.status)}: {body.get('message', resp.reason)}")
    if not interactive:
        code = _follow(resp)
    else:
        code = _interactive(stream, resp)
    if code is None:
        raise ctx.UserError("the exec session ended without the command's exit code")
    return code


def _interactive(stream: _Stream, resp: http.client.HTTPResponse) -> int | None:
    import termios
    import tty

    def resize(*_: Any) -> None:
        size = _terminal_size()
        if size:
            stream.post(f"resize?rows={size[0]}&cols={size[1]}")

    resize()
    previous = signal.signal(signal.SIGWINCH, resize)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        threading.Thread(target=_send_keys, args=(stream,), name="exec stdin", daemon=True).start()
        return _follow(resp)
    finally:
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        signal.signal(signal.SIGWINCH, previous)


def add_command(sub: Any, ctx: Any) -> None:
    p = sub.add_parser(
        "exec", help="run a command in a task's container (interactive with a TTY when stdin is one)",
        usage="dockyard exec [-h] [--cluster C] [--container NAME] TASK -- CMD [ARG ...]",
    )
    ctx.client_args(p)
    p.add_argument("--cluster")
    p.add_argument("--container", help="the container (needed when the task has several)")
    p.add_argument("task", help="task id or ARN")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    p.set_defaults(func=lambda a: cmd_exec(a, ctx))
