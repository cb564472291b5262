"""Helpers the edge's integration tests share (tests/integration/test_edge_alb.py,
tests/integration/test_ecs_load_balancers.py): free listener ports, curl, polling, ELBv2 errors
and target health through the real aws CLI."""

from __future__ import annotations

import json
import random
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.server import Dockyard

__all__ = [
    "Upstream", "curl", "edge_port", "error_code", "forward_rule", "target_group", "tg_health", "wait_for",
]


class Upstream:
    """A real HTTP server answering its name (``/health``: 200)."""

    def __init__(self, name: str) -> None:
        self.name = name
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = outer.name.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def edge_port() -> int:
    """A free port in the default ``edge_ports`` range."""
    for _ in range(200):
        port = random.randint(8000, 8999)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 8000-8999")


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["curl", "-s", "--max-time", "5", *args], capture_output=True, text=True, timeout=30
    )


def error_code(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode != 0, proc.stdout
    # "An error occurred (PriorityInUse) when calling the CreateRule operation: ..."
    return proc.stderr.split("(", 1)[1].split(")", 1)[0]


def wait_for(check: Any, timeout: float = 60.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}: {last!r}")


def tg_health(dockyard: Dockyard, tg: str) -> dict[str, dict[str, str]]:
    out = dockyard.aws("elbv2", "describe-target-health", "--target-group-arn", tg)
    return {
        f"{d['Target']['Id']}:{d['Target']['Port']}": d["TargetHealth"]
        for d in out["TargetHealthDescriptions"]
    }


def target_group(
    dockyard: Dockyard, name: str, port: int, *, target_type: str = "ip", path: str = "/",
    matcher: str = "200",
) -> str:
    """A new HTTP target group checked quickly (every 5 s, 2 s timeout, thresholds 2); its ARN."""
    out = dockyard.aws(
        "elbv2", "create-target-group", "--name", name, "--protocol", "HTTP", "--port", str(port),
        "--target-type", target_type, "--health-check-path", path, "--health-check-interval-seconds", "5",
        "--health-check-timeout-seconds", "2", "--healthy-threshold-count", "2",
        "--unhealthy-threshold-count", "2", "--matcher", f"HttpCode={matcher}",
    )
    return out["TargetGroups"][0]["TargetGroupArn"]


def forward_rule(dockyard: Dockyard, listener: str, priority: int, path: str, tg: str) -> str:
    """A rule of ``listener`` forwarding requests whose path matches ``path`` to ``tg``; its ARN."""
    out = dockyard.aws(
        "elbv2", "create-rule", "--listener-arn", listener, "--priority", str(priority), "--conditions",
        json.dumps([{"Field": "path-pattern", "PathPatternConfig": {"Values": [path]}}]),
        "--actions", f"Type=forward,TargetGroupArn={tg}",
    )
    return out["Rules"][0]["RuleArn"]
