"""Hostile HTTP through the load balancer, with raw sockets: request smuggling (conflicting
Content-Length and Transfer-Encoding), oversized headers, malformed Host headers and paths
are refused by the edge Envoy, and none of them reaches the app (counted upstream) or reaches
it twice; the load balancer keeps serving."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.edge import curl, edge_port, wait_for
from tests.support.server import Dockyard


class Counting:
    """An HTTP server that counts the requests it is given, by method and path."""

    def __init__(self) -> None:
        self.seen: Counter[str] = Counter()
        self.headers: list[dict[str, str]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path != "/health":  # the target group's health checks
                    outer.seen[f"{self.command} {self.path}"] += 1
                    outer.headers.append(dict(self.headers))
                body = b"ok"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Edge:
    def __init__(self, dockyard: Dockyard) -> None:
        self.d, self.app, self.port = dockyard, Counting(), edge_port()
        self.lb = dockyard.aws("elbv2", "create-load-balancer", "--name", "edge-hostile", "--type",
                               "application")["LoadBalancers"][0]["LoadBalancerArn"]
        self.tg = dockyard.aws("elbv2", "create-target-group", "--name", "edge-hostile", "--protocol", "HTTP",
                               "--port", str(self.app.port), "--target-type", "ip",
                               "--health-check-path", "/health", "--health-check-interval-seconds", "5",
                               "--health-check-timeout-seconds", "2")["TargetGroups"][0]["TargetGroupArn"]
        dockyard.aws("elbv2", "register-targets", "--target-group-arn", self.tg, "--targets",
                     f"Id=127.0.0.1,Port={self.app.port}")
        forward = json.dumps([{"Type": "forward", "TargetGroupArn": self.tg}])
        dockyard.aws("elbv2", "create-listener", "--load-balancer-arn", self.lb, "--protocol", "HTTP",
                     "--port", str(self.port), "--default-actions", forward)

    def close(self) -> None:
        self.d.aws("elbv2", "delete-load-balancer", "--load-balancer-arn", self.lb)
        self.d.aws("elbv2", "delete-target-group", "--target-group-arn", self.tg)
        self.app.stop()

    def raw(self, request: bytes) -> bytes:
        """What the edge answers ``request`` (everything until it closes, or 5 s)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(request)
            out = b""
            try:
                while chunk := s.recv(65536):
                    out += chunk
            except (TimeoutError, ConnectionResetError):
                pass
            return out


@pytest.fixture(scope="module")
def edge(dockyard: Dockyard) -> Iterator[Edge]:
    made = Edge(dockyard)
    try:
        wait_for(lambda: curl(f"http://127.0.0.1:{made.port}/ready").stdout == "ok", what="the edge Envoy")
        yield made
    finally:
        made.close()


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/1.1 ") else 0


def test_conflicting_content_length_and_transfer_encoding_is_refused_and_smuggles_nothing(edge: Edge):
    before = Counter(edge.app.seen)
    smuggle = (b"POST /cl-te HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(edge.raw(smuggle)) == 400
    te_cl = (b"POST /te-cl HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n"
             b"5\r\nhello\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status(edge.raw(te_cl)) == 400
    two = b"POST /cl-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd"
    assert status(edge.raw(two)) == 400
    obfuscated = b"POST /te HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
    assert status(edge.raw(obfuscated)) in (400, 501)
    seen = edge.app.seen - before
    assert not seen, seen  # none of them reached the app, nor a request hidden in a body


def test_oversized_and_malformed_headers_are_refused(edge: Edge):
    before = Counter(edge.app.seen)
    huge = b"GET /huge HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    assert status(edge.raw(huge)) == 431
    assert status(edge.raw(b"GET /host HTTP/1.1\r\nHost: a\x01b\r\n\r\n")) == 400
    assert status(edge.raw(b"GET /nohost HTTP/1.1\r\n\r\n")) == 400
    assert status(edge.raw(b"GET /under HTTP/1.1\r\nHost: x\r\nX_Forwarded_For: 1.2.3.4\r\n\r\n")) == 400
    assert status(edge.raw(b"GET /bad\x7fpath HTTP/1.1\r\nHost: x\r\n\r\n")) == 400
    assert status(edge.raw(b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")) in (400, 405, 501)
    seen = edge.app.seen - before
    assert not seen, seen


def test_a_good_request_reaches_the_app_exactly_once_and_the_edge_keeps_serving(edge: Edge):
    before = Counter(edge.app.seen)
    answer = edge.raw(b"POST /once HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd")
    assert status(answer) == 200
    assert (edge.app.seen - before) == Counter({"POST /once": 1})
    assert curl(f"http://127.0.0.1:{edge.port}/still").stdout == "ok"


def test_paths_are_normalized_before_they_reach_the_app(edge: Edge):
    before = Counter(edge.app.seen)
    assert status(edge.raw(b"GET /a/./b/../c//d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")) == 200
    escaped = edge.raw(b"GET /a%2Fb HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status(escaped) == 307 and b"\r\nlocation: /a/b\r\n" in escaped.lower()
    assert (edge.app.seen - before) == Counter({"GET /a/c/d": 1})


def test_load_balancer_attributes_reach_envoy(dockyard: Dockyard, edge: Edge):
    """``routing.http.drop_invalid_header_fields.enabled`` drops a header with an underscore
    instead of refusing the request; ``idle_timeout.timeout_seconds`` closes idle connections."""
    def attrs(**values: str) -> None:
        dockyard.aws("elbv2", "modify-load-balancer-attributes", "--load-balancer-arn", edge.lb,
                     "--attributes", *[f"Key={k.replace('__', '.')},Value={v}" for k, v in values.items()])

    try:
        attrs(routing__http__drop_invalid_header_fields__enabled="true", idle_timeout__timeout_seconds="1")
        request = b"GET /dropped HTTP/1.1\r\nHost: x\r\nX_Secret: 1\r\nConnection: close\r\n\r\n"
        wait_for(lambda: status(edge.raw(request)) == 200, what="the attributes to be applied")
        assert not any("X_Secret" in h for h in edge.app.headers if h)
        # a kept-alive connection left idle is closed by the edge: after the second, and Envoy's
        # drain (5 s), well before the default 60 s
        with socket.create_connection(("127.0.0.1", edge.port), timeout=10) as s:
            s.sendall(b"GET /idle HTTP/1.1\r\nHost: x\r\n\r\n")
            first = s.recv(65536)
            assert status(first) == 200
            started = time.monotonic()
            while s.recv(65536):
                pass
            assert time.monotonic() - started < 20
    finally:
        attrs(routing__http__drop_invalid_header_fields__enabled="false", idle_timeout__timeout_seconds="60")
