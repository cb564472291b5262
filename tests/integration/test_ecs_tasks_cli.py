"""``dockyard logs --follow`` and ``dockyard exec`` against real tasks (busybox, built locally)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_ecs_tasks import labelled, own_cluster, register, run, until_status, wait_for
from tests.support.images import busybox_image
from tests.support.server import BIN, Dockyard


@pytest.fixture(scope="module")
def cluster(dockyard: Dockyard) -> Iterator[str]:
    with own_cluster(dockyard, "taskcli") as name:
        yield name


@pytest.fixture(scope="module")
def ecs(dockyard: Dockyard) -> Any:
    return dockyard.client("ecs")


def _args(server: Dockyard, cluster: str) -> list[str]:
    return ["--data-dir", str(server.data_dir), "--endpoint-url", server.control_url, "--cluster", cluster]


def _task(ecs: Any, cluster: str, family: str, command: str) -> tuple[str, str]:
    """A running busybox task (one container, ``app``) running ``sh -c command``; (arn, id)."""
    td = register(ecs, family, {
        "name": "app", "image": busybox_image(), "memory": 16, "command": ["sh", "-c", command],
        "stopTimeout": 1,
    })
    arn = run(ecs, cluster, td)
    until_status(ecs, cluster, arn, "RUNNING")
    return arn, arn.rsplit("/", 1)[1]


def _container(arn: str) -> str:
    out = subprocess.run(
        ["docker", "ps", "-q", "--no-trunc", "--filter", f"label=dockyard.task-arn={arn}",
         "--filter", "label=dockyard.container-name=app"], capture_output=True, text=True, check=True,
    )
    (cid,) = out.stdout.split()
    return cid


def test_logs_follow_prints_a_line_written_after_it_started_and_ends_when_the_task_stops(
    dockyard: Dockyard, cluster: str, ecs: Any
) -> None:
    arn, task_id = _task(ecs, cluster, "follow", "echo before; sleep 600")
    follow = subprocess.Popen(
        [str(BIN / "dockyard"), "logs", task_id, "--follow", "--interval", "0.2", *_args(dockyard, cluster)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "before\n" in lines, 30, "the first line")
        time.sleep(0.5)  # a few polls with nothing new
        cid = _container(arn)
        subprocess.run(["docker", "exec", cid, "sh", "-c", "echo after > /proc/1/fd/1"], check=True)
        wait_for(lambda: "after\n" in lines, 30, "the line written after --follow started")
        assert lines == ["before\n", "after\n"]  # each line once
        ecs.stop_task(cluster=cluster, task=arn)
        assert follow.wait(60) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()


def _exec(server: Dockyard, cluster: str, task_id: str, *command: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dockyard"), "exec", *_args(server, cluster), task_id, "--", *command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )


def test_exec_runs_a_command_in_the_task_and_exits_with_its_exit_code(
    dockyard: Dockyard, cluster: str, ecs: Any
) -> None:
    arn, task_id = _task(ecs, cluster, "execs", "sleep 600")
    hi = _exec(dockyard, cluster, task_id, "echo", "hi")
    assert (hi.returncode, hi.stdout, hi.stderr) == (0, "hi\n", "")
    three = _exec(dockyard, cluster, task_id, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert (three.returncode, three.stdout, three.stderr) == (3, "out\n", "err\n")
    by_arn = _exec(dockyard, cluster, arn, "cat", "/proc/1/cmdline")
    assert by_arn.returncode == 0 and "sleep" in by_arn.stdout
    named = subprocess.run(
        [str(BIN / "dockyard"), "exec", *_args(dockyard, cluster), "--container", "nosuch", task_id,
         "--", "true"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert named.returncode == 1 and "no container named nosuch" in named.stderr
    missing = _exec(dockyard, cluster, task_id, "no-such-command")
    assert missing.returncode != 0
    # ECS's own operation and shape, as boto3 reads it; the stream wants the session's token
    out = ecs.execute_command(cluster=cluster, task=arn, command="echo hi", interactive=True)
    assert out["containerName"] == "app" and out["taskArn"] == arn and out["interactive"] is True
    stream = out["session"]["streamUrl"]
    assert stream.startswith(dockyard.control_url + "/exec/") and out["session"]["tokenValue"]
    denied = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
                             "X-Dockyard-Exec-Token: wrong", stream], capture_output=True, text=True)
    assert denied.stdout == "403"
    got = subprocess.run(["curl", "-s", "-N", "-H", f"X-Dockyard-Exec-Token: {out['session']['tokenValue']}",
                          stream], capture_output=True, timeout=60)
    assert got.stdout.startswith(b"\x01") and b"hi" in got.stdout and b'{"exitCode": 0}' in got.stdout
    ecs.stop_task(cluster=cluster, task=arn)


def test_exec_on_a_terminal_is_interactive_with_a_tty(dockyard: Dockyard, cluster: str, ecs: Any) -> None:
    import pty
    import select

    arn, task_id = _task(ecs, cluster, "exectty", "sleep 600")
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "dockyard"), "exec", *_args(dockyard, cluster), task_id, "--", "sh"],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )
    os.close(slave)
    seen = b""
    sent = False
    try:
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    break
            if not sent and b"# " in seen:
                # answer the shell's cursor-position query as a terminal does, then type
                reply = b"\x1b[1;1R" if b"\x1b[6n" in seen else b""
                os.write(master, reply + b"tty; echo $((6*7))-answer; exit 7\r")
                sent = True
        if proc.poll() is None:
            proc.kill()
        assert proc.wait(30) == 7, seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    assert b"42-answer" in seen and b"/dev/pts/" in seen, seen

    # a client that goes away ends its session, and the shell with its TTY
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [str(BIN / "dockyard"), "exec", *_args(dockyard, cluster), task_id, "--", "sh"],
        stdin=slave, stdout=slave, stderr=slave, close_fds=True,
    )
    os.close(slave)
    try:
        seen = b""
        while b"# " not in seen:
            assert select.select([master], [], [], 30)[0], seen
            seen += os.read(master, 4096)
        cid = _container(arn)
        shells = lambda: [line for line in subprocess.run(  # noqa: E731
            ["docker", "top", cid, "-o", "pid,args"], capture_output=True, text=True
        ).stdout.splitlines() if line.rstrip().endswith(" sh")]
        assert len(shells()) == 1
        proc.kill()
        proc.wait(10)
        wait_for(lambda: not shells(), 30, "the shell of the abandoned session to end")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    ecs.stop_task(cluster=cluster, task=arn)


def test_exec_and_logs_follow_pass_through_the_control_workers(fresh_dockyard: Dockyard) -> None:
    server = fresh_dockyard
    server.extra_args = ["--control-workers", "2"]
    server.start()
    ecs = server.client("ecs")
    name = f"workers-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=name)
    try:
        arn, task_id = _task(ecs, name, "viaworkers", "echo started; sleep 600")
        hi = _exec(server, name, task_id, "sh", "-c", "echo hi; exit 3")
        assert (hi.returncode, hi.stdout) == (3, "hi\n"), hi.stderr
        follow = subprocess.Popen(
            [str(BIN / "dockyard"), "logs", task_id, "--follow", "--interval", "0.2",
             *_args(server, name)], stdout=subprocess.PIPE, text=True,
        )
        assert follow.stdout.readline() == "started\n"
        ecs.stop_task(cluster=name, task=arn)
        assert follow.wait(60) == 0
    finally:
        for t in ecs.list_tasks(cluster=name)["taskArns"]:
            ecs.stop_task(cluster=name, task=t)
        ids = labelled(name, all_=True)
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)


def test_exec_streams_a_large_output_whole(dockyard: Dockyard, cluster: str, ecs: Any) -> None:
    arn, task_id = _task(ecs, cluster, "execbig", "sleep 600")
    big = subprocess.run(
        [str(BIN / "dockyard"), "exec", *_args(dockyard, cluster), task_id, "--", "sh", "-c",
         "yes x | head -c 20000000; exit 5"],
        stdin=subprocess.DEVNULL, capture_output=True, timeout=300,
    )
    assert big.returncode == 5, big.stderr
    assert big.stdout == b"x\n" * 10_000_000
    ecs.stop_task(cluster=cluster, task=arn)
