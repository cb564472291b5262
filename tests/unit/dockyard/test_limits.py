"""``dockyard.limits``: the open-file limit is raised, and accept() resource errors are logged
once per interval instead of once per attempt (a real listener run out of descriptors)."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import textwrap

from dockyard.limits import ResourceErrorLog

SERVER = textwrap.dedent("""
    import asyncio, logging, resource, sys
    from dockyard.limits import limit_resource_error_logs
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    async def main():
        if sys.argv[1] == "limited":
            limit_resource_error_logs(asyncio.get_running_loop(), interval=10)
        srv = await asyncio.get_running_loop().create_server(asyncio.Protocol, "127.0.0.1", 0)
        print(srv.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(2)

    asyncio.run(main())
""")


def error_lines_under_descriptor_exhaustion(mode: str) -> list[str]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, mode], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    held = []
    for _ in range(80):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
        except OSError:
            pass
    _, err = proc.communicate(timeout=30)
    for s in held:
        s.close()
    return [line for line in err.decode().splitlines() if line.startswith("ERROR")]


def test_accept_errors_are_logged_once_per_interval_not_once_per_attempt():
    assert len(error_lines_under_descriptor_exhaustion("default")) > 20  # what asyncio does alone
    lines = error_lines_under_descriptor_exhaustion("limited")
    assert len(lines) == 1 and "out of system resource" in lines[0]


def test_the_handler_counts_what_it_leaves_out_and_passes_other_errors_on():
    now = [0.0]
    other = []
    handler = ResourceErrorLog(other.append, interval=10, clock=lambda: now[0])
    ctx = {"message": "socket.accept() out of system resource", "exception": OSError(24, "Too many")}
    handler(None, ctx)  # type: ignore[arg-type]
    for _ in range(5):
        handler(None, ctx)  # type: ignore[arg-type]
    assert handler.suppressed == 5
    now[0] = 11
    handler(None, ctx)  # type: ignore[arg-type]
    assert handler.suppressed == 0
    handler(None, {"message": "Task exception was never retrieved"})  # type: ignore[arg-type]
    assert other == [{"message": "Task exception was never retrieved"}]


def test_the_open_file_soft_limit_is_raised_to_the_hard_limit():
    code = ("import resource; from dockyard.limits import raise_open_file_limit; "
            "s, h = resource.getrlimit(resource.RLIMIT_NOFILE); "
            "resource.setrlimit(resource.RLIMIT_NOFILE, (256, h)); "
            "print(raise_open_file_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0], h)")
    now, soft, hard = map(int, subprocess.check_output([sys.executable, "-c", code]).split())
    expected = hard if hard != resource.RLIM_INFINITY else 1 << 20
    assert now == soft == expected and soft > 256


def test_a_throttle_lets_one_event_through_per_interval_and_counts_the_rest():
    from dockyard.limits import Throttle

    now = [100.0]
    throttle = Throttle(10.0, clock=lambda: now[0])
    assert throttle.allow()
    assert [throttle.allow() for _ in range(3)] == [False] * 3
    assert throttle.suppressed == 3
    now[0] += 10.0
    assert throttle.allow()
