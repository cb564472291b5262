"""The control workers' own HTTP/1.1 transport (``dockyard/control/_http1.py``), driven over raw sockets:
keep-alive, pipelining, bodies by length and chunked, 413, malformed requests, clients that
go away, and what is forwarded to the main process."""

from __future__ import annotations

import base64
import json
import resource
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.aws import sigv4
from tests.support.server import Dockyard

CM = "Route53AutoNaming_v20170314"
ECS = "AmazonEC2ContainerServiceV20141113"
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    server = Dockyard(tmp_path_factory.mktemp("http1") / "data", extra_args=["--control-workers", "2"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Client:
    """One raw connection: send bytes, read answers one at a time."""

    def __init__(self, server: Dockyard) -> None:
        self.server = server
        self.sock = socket.create_connection(("127.0.0.1", server.ports["control"]), timeout=30)
        self.file = self.sock.makefile("rb")

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read(self, head_only: bool = False) -> tuple[int, dict[str, str], bytes]:
        """One answer: status, headers (lower-case names), body (chunked ones decoded)."""
        line = self.file.readline()
        assert line, "the server closed the connection without an answer"
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if head_only or status in (204, 304) or 100 <= status < 200:
            return status, headers, b""
        if "content-length" in headers:
            return status, headers, self.file.read(int(headers["content-length"]))
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while size := int(self.file.readline().split(b";")[0], 16):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
            return status, headers, body
        return status, headers, self.file.read()

    def closed_by_server(self) -> bool:
        return self.file.read(1) == b""


def signed(server: Dockyard, target: str, body: bytes = b"{}", chunked: bool = False,
           extra: dict[str, str] | None = None) -> bytes:
    """A signed ``POST /`` as raw bytes (``Content-Length``, or chunked in two pieces)."""
    key, secret = server.credentials
    host = f"127.0.0.1:{server.ports['control']}"
    service = "servicediscovery" if target.startswith(CM) else "ecs"
    headers = sigv4.sign(
        "POST", "/", {"host": host, "content-type": "application/x-amz-json-1.1", "x-amz-target": target},
        body, key, secret, "us-east-1", service,
    )
    headers.update(extra or {})
    if chunked:
        half = len(body) // 2
        headers["transfer-encoding"] = "chunked"
        payload = b"".join(f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in (body[:half], body[half:]) if p)
        payload += b"0\r\n\r\n"
    else:
        headers["content-length"] = str(len(body))
        payload = body
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST / HTTP/1.1\r\n{head}\r\n".encode() + payload


def get(path: str, method: str = "GET", version: str = "1.1", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode()


LIST_NAMESPACES = f"{CM}.ListNamespaces"


def health(server: Dockyard) -> bytes:
    """``GET /healthz`` with the admin key: only a caller with credentials learns the
    answering process's role and pid."""
    key, secret = server.credentials
    auth = base64.b64encode(f"{key}:{secret}".encode()).decode()
    return get("/healthz", extra=f"Authorization: Basic {auth}\r\n")


def pid_of(client: Client) -> int:
    client.send(health(client.server))
    status, _, body = client.read()
    assert status == 200
    return json.loads(body)["pid"]


def test_one_connection_answers_several_requests_from_the_same_worker(workers):
    c = Client(workers)
    try:
        pid = pid_of(c)
        for _ in range(3):
            c.send(signed(workers, LIST_NAMESPACES))
            status, headers, body = c.read()
            assert status == 200, body
            assert "Namespaces" in json.loads(body)
            assert headers["content-type"] == "application/x-amz-json-1.1"
            assert headers["x-amzn-requestid"] and headers["x-amzn-requestid"] == headers["x-request-id"]
            assert "connection" not in headers
        assert pid_of(c) == pid
    finally:
        c.close()


def test_pipelined_requests_are_answered_in_order_local_and_forwarded_alike(workers):
    c = Client(workers)
    try:
        c.send(
            health(workers)
            + signed(workers, LIST_NAMESPACES)
            + signed(workers, f"{ECS}.ListClusters")  # forwarded to the main process
            + get("/nope")  # forwarded too
            + signed(workers, f"{CM}.NoSuchOperation")
            + get("/metrics")
        )
        answers = [c.read() for _ in range(6)]
    finally:
        c.close()
    # /nope: no platform route serves it, so it meets the REST-JSON mount (App Mesh), which
    # authenticates first, as AWS does: 403 MissingAuthenticationToken for an unsigned request
    assert [a[0] for a in answers] == [200, 200, 200, 403, 400, 200]
    assert json.loads(answers[0][2])["role"] == "worker"
    assert "Namespaces" in json.loads(answers[1][2])
    assert "clusterArns" in json.loads(answers[2][2])
    assert json.loads(answers[4][2])["__type"] == "UnknownOperationException"
    assert b"dockyard_control_requests_total" in answers[5][2]


def test_a_chunked_body_is_read_and_verified_like_any_other(workers):
    body = json.dumps({"MaxResults": 5}).encode()
    c = Client(workers)
    try:
        c.send(signed(workers, LIST_NAMESPACES, body, chunked=True))
        status, _, answer = c.read()
        assert (status, "Namespaces" in json.loads(answer)) == (200, True)
        c.send(signed(workers, f"{ECS}.ListClusters", body, chunked=True))  # forwarded whole
        status, _, answer = c.read()
        assert (status, "clusterArns" in json.loads(answer)) == (200, True)
    finally:
        c.close()


def test_expect_100_continue_is_answered_before_the_body(workers):
    request = signed(workers, LIST_NAMESPACES, extra={"expect": "100-continue"})
    head, _, body = request.partition(b"\r\n\r\n")
    c = Client(workers)
    try:
        c.send(head + b"\r\n\r\n")
        assert c.read()[0] == 100
        c.send(body)
        assert c.read()[0] == 200
    finally:
        c.close()


def test_a_declared_body_over_10_mib_is_refused_at_once_with_413(workers):
    c = Client(workers)
    try:
        c.send(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n"
            + f"X-Amz-Target: {LIST_NAMESPACES}\r\nContent-Length: {10 * MIB + 1}\r\n\r\n".encode()
        )
        status, headers, body = c.read()  # before any of the body was sent
        assert status == 413
        assert headers["connection"] == "close"
        assert json.loads(body)["__type"] == "RequestEntityTooLargeException"
    finally:
        c.close()


def test_a_chunked_body_growing_over_10_mib_is_refused_with_413_and_the_worker_keeps_serving(workers):
    c = Client(workers)
    try:
        pid = pid_of(c)
        c.send(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = f"{MIB:x}\r\n".encode() + b"a" * MIB + b"\r\n"
        for _ in range(11):
            c.send(chunk)
        c.send(b"0\r\n\r\n" + get("/healthz"))  # pipelined after the refused one: never answered
        status, headers, body = c.read()
        assert (status, headers["connection"]) == (413, "close")
        assert json.loads(body)["__type"] == "RequestEntityTooLargeException"
        assert c.closed_by_server()
    finally:
        c.close()
    assert pid in every_worker(workers)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GARBAGE\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
        b"GET http://elsewhere/healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ],
    ids=["request-line", "header-without-colon", "non-numeric-length", "two-lengths", "version",
         "absolute-form", "length-and-chunked"],
)
def test_a_malformed_request_gets_a_400_in_the_aws_envelope_and_the_connection_closes(workers, request_bytes):
    c = Client(workers)
    try:
        pid = pid_of(c)
        c.send(request_bytes)
        status, headers, body = c.read()
        assert (status, headers["connection"]) == (400, "close")
        assert json.loads(body)["__type"] == "BadRequestException"
        assert c.closed_by_server()
    finally:
        c.close()
    assert pid in every_worker(workers)


def test_headers_over_64_kib_get_431(workers):
    c = Client(workers)
    try:
        c.send(get("/healthz", extra="X-Big: " + "a" * 70_000 + "\r\n"))
        status, _, body = c.read()
        assert (status, json.loads(body)["__type"]) == (431, "RequestHeaderFieldsTooLargeException")
        assert c.closed_by_server()
    finally:
        c.close()


def test_a_client_that_disconnects_mid_body_leaves_both_workers_serving_and_logging_no_error(workers):
    for pid in every_worker(workers):
        c = Client(workers)
        while pid_of(c) != pid:  # a fresh connection lands on either worker
            c.close()
            c = Client(workers)
        request = signed(workers, LIST_NAMESPACES, b'{"MaxResults": 5}')
        c.send(request[:-8])
        c.close()
    assert len(every_worker(workers)) == 2
    c = Client(workers)
    try:
        c.send(signed(workers, LIST_NAMESPACES))
        assert c.read()[0] == 200
    finally:
        c.close()
    assert not error_lines(workers)


def test_head_and_get_on_paths_the_worker_does_not_serve_are_answered_by_the_main_process(workers):
    c = Client(workers)
    try:
        # Past the platform's own routes an unsigned request meets the REST-JSON mount (App
        # Mesh), which authenticates first, as AWS does: 403 MissingAuthenticationToken.
        c.send(get("/nope", "HEAD"))
        status, headers, _ = c.read(head_only=True)
        assert status == 403
        c.send(get("/healthz", "HEAD"))  # the connection still parses right after a HEAD
        status, headers, _ = c.read(head_only=True)
        assert status == 200 and int(headers["content-length"]) > 0
        c.send(get("/nope"))
        status, headers, _ = c.read()
        assert status == 403 and headers["x-amzn-errortype"] == "MissingAuthenticationTokenException"
        c.send(get("/"))
        status, headers, _ = c.read()
        assert status == 403
    finally:
        c.close()


def test_a_streamed_answer_of_the_main_process_reaches_the_client_chunked_as_it_comes(workers):
    key, secret = workers.credentials
    host = f"127.0.0.1:{workers.ports['control']}"
    headers = sigv4.sign("GET", "/events", {"host": host}, b"", key, secret, "us-east-1", "ecs")
    c = Client(workers)
    try:
        c.send(b"GET /events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()).encode()
               + b"\r\n")
        status = int(c.file.readline().split()[1])
        head = {}
        while (line := c.file.readline()) != b"\r\n":
            name, _, value = line.decode().partition(":")
            head[name.strip().lower()] = value.strip()
        assert (status, head["transfer-encoding"]) == (200, "chunked")
        assert head["content-type"] == "text/event-stream"
        size = int(c.file.readline(), 16)
        assert c.file.read(size) == b": dockyard events\n\n"  # the stream is open: the rest comes later
        assert c.file.readline() == b"\r\n"
        workers.client("ecs").create_cluster(clusterName="streamed")
        chunks = []
        while not any(b"streamed" in chunk for chunk in chunks) and len(chunks) < 20:
            size = int(c.file.readline(), 16)  # keepalives may come first
            chunks.append(c.file.read(size))
            assert c.file.readline() == b"\r\n"
        assert any(b"streamed" in chunk for chunk in chunks), chunks
    finally:
        c.close()  # mid-stream: the worker drops its upstream request
    assert not error_lines(workers)


def test_http_1_0_closes_after_the_answer_unless_asked_to_keep_alive(workers):
    c = Client(workers)
    try:
        c.send(get("/healthz", version="1.0", extra="Connection: keep-alive\r\n"))
        status, headers, _ = c.read()
        assert (status, headers["connection"].lower()) == (200, "keep-alive")
        c.send(get("/healthz", version="1.0"))
        status, headers, _ = c.read()
        assert (status, headers["connection"]) == (200, "close")
        assert c.closed_by_server()
    finally:
        c.close()


@pytest.mark.parametrize("path", ["/healthz", "/nope"], ids=["answered-by-the-worker", "forwarded"])
def test_a_client_that_half_closes_after_its_request_still_gets_the_answer(workers, path):
    c = Client(workers)
    try:
        c.send(get(path))
        c.sock.shutdown(socket.SHUT_WR)
        status, _, _ = c.read()
        assert status == (200 if path == "/healthz" else 403)  # unsigned, past the platform's routes
        assert c.closed_by_server()
    finally:
        c.close()


def test_connection_close_is_honoured(workers):
    c = Client(workers)
    try:
        c.send(signed(workers, LIST_NAMESPACES, extra={"connection": "close"}))
        status, headers, _ = c.read()
        assert (status, headers["connection"]) == (200, "close")
        assert c.closed_by_server()
    finally:
        c.close()


def test_keep_alive_connections_even_out_between_the_workers(workers):
    """A worker holding more than its share (the mean plus one) closes a connection after
    answering on it; the client reconnects and the kernel places it afresh."""
    clients = [Client(workers) for _ in range(24)]
    try:
        for _ in range(50):
            pids, closed = [], 0
            for n, c in enumerate(clients):
                c.send(health(workers))
                status, headers, body = c.read()
                assert status == 200
                pids.append(json.loads(body)["pid"])
                if headers.get("connection") == "close":
                    assert c.closed_by_server()
                    c.close()
                    clients[n] = Client(workers)
                    closed += 1
            if not closed:
                break
        assert not closed, "the connections never settled"
        shares = sorted(pids.count(p) for p in set(pids))
        assert len(shares) == 2 and shares[1] <= 13, shares
    finally:
        for c in clients:
            c.close()


def every_worker(server: Dockyard) -> set[int]:
    """The pids that answer /healthz over 40 fresh connections."""
    pids = set()
    for _ in range(40):
        c = Client(server)
        try:
            pids.add(pid_of(c))
        finally:
            c.close()
    return pids


def error_lines(server: Dockyard) -> list[dict]:
    """Errors the control port's code logged (the transport, the workers, the dispatcher, the
    event loop); other parts' (the runner's, when Docker misbehaves) are not this file's."""
    log = Path(server.data_dir.parent / f"{server.data_dir.name}.log").read_text().splitlines()
    loggers = ("dockyard.control._http1", "dockyard.control.workers", "dockyard.control", "asyncio")
    return [r for r in map(json.loads, filter(None, log))
            if r["level"] in ("error", "critical") and r["logger"] in loggers]


def open_file_limits(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no open-file limit")


def test_the_main_process_and_the_workers_raise_the_open_file_soft_limit_to_the_hard(fresh_dockyard):
    server = fresh_dockyard
    server.extra_args = ["--control-workers", "2"]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (512, hard))  # what the server inherits
    try:
        server.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pids = every_worker(server) | {server.proc.pid}
    assert len(pids) == 3
    for pid in pids:
        assert open_file_limits(pid) == (str(hard), str(hard)), pid


def test_a_request_without_host_or_with_a_never_ending_header_is_refused_by_the_worker(workers):
    c = Client(workers)
    try:
        c.send(b"GET /healthz HTTP/1.1\r\n\r\n")
        status, headers, body = c.read()
        assert (status, headers["connection"]) == (400, "close")
        assert json.loads(body)["__type"] == "BadRequestException"
    finally:
        c.close()
    c = Client(workers)
    try:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 80_000)
        status, _, body = c.read()
        assert (status, json.loads(body)["__type"]) == (431, "RequestHeaderFieldsTooLargeException")
        assert c.closed_by_server()
    finally:
        c.close()
