"""Issue 10 against a real ``dockyard up``: a corpus of malformed requests (registry, token
endpoint, control API, DNS) gets no 5xx and logs no ERROR; 3,000 idle and 3,000 half-sent
connections leave real clients served within 100 ms and are closed on time; no credential
sent in a malformed request, a broken form or a dropped connection reaches the log."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from dockyard.aws import sigv4
from dockyard.aws.protocol import CLOUDMAP, ECR, ECS
from tests.support import corpus
from tests.support.corpus import BAD_HEADERS, Raw, head, json_bodies, methods_and_paths, status_of
from tests.support.registry import OCI_CONFIG, OCI_MANIFEST, RegistryClient, descriptor
from tests.support.registry_auth import ADMIN_PASSWORD, ADMIN_USER
from tests.support.server import Dockyard

REPO = "corpus/app"
HEADER_TIMEOUT, BODY_TIMEOUT, KEEPALIVE_TIMEOUT = 6.0, 2.0, 8.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    """A server of this module's own, logging at debug, with short listener timeouts."""
    srv = Dockyard(
        tmp_path_factory.mktemp("hardening") / "data",
        env={
            "DOCKYARD_LOG_LEVEL": "debug",
            "DOCKYARD_HTTP_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
            "DOCKYARD_HTTP_BODY_TIMEOUT": str(BODY_TIMEOUT),
            "DOCKYARD_HTTP_KEEPALIVE_TIMEOUT": str(KEEPALIVE_TIMEOUT),
        },
    ).start()
    try:
        yield srv
    finally:
        srv.stop()


def log_path(server: Dockyard) -> Path:
    return server.data_dir.parent / f"{server.data_dir.name}.log"


def log_lines(server: Dockyard) -> list[dict]:
    out = []
    for line in log_path(server).read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            out.append({"level": "raw", "msg": line})
    return out


def errors_in_log(server: Dockyard, since: int = 0) -> list[dict]:
    """Lines at ERROR or above, lines with a traceback at INFO or above, and lines that are
    not the JSON logs (a traceback printed by something else)."""
    return [
        line
        for line in log_lines(server)[since:]
        if line.get("level") in ("error", "critical", "raw")
        or (line.get("exc") and line.get("level") != "debug")
    ]


def send(port: int, data: bytes, timeout: float = 15.0) -> bytes:
    """``data`` sent on a fresh connection; what came back until the server closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except OSError:
            pass  # the server may refuse before reading everything: its answer is what counts
        chunks = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


# -- the registry and its token endpoint ------------------------------------------------------
def registry_token(server: Dockyard) -> str:
    r = requests.get(
        f"{server.registry_url}/token",
        params=[
            ("service", "dockyard"),
            ("scope", f"repository:{REPO}:pull,push,delete"),
            ("scope", "registry:catalog:*"),
        ],
        auth=(ADMIN_USER, ADMIN_PASSWORD),
        timeout=30,
    )
    r.raise_for_status()
    return r.json()["token"]


def registry_request(
    server: Dockyard,
    token: str,
    method: str,
    target: str,
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    sep: bytes = b"\r\n",
) -> bytes:
    given = headers or []
    names = {k.lower() for k, _ in given}
    out = [("Host", server.registry), ("Connection", "close")]
    if "authorization" not in names:
        out.append(("Authorization", f"Bearer {token}"))
    if not names & {"content-length", "transfer-encoding"}:
        out.append(("Content-Length", str(len(body))))
    return head(method, target, out + given, body, sep)


def registry_corpus(server: Dockyard, token: str, manifest: dict, blob_digest: str) -> Iterator[Raw]:
    put = f"/v2/{REPO}/manifests/v1"
    ctype = [("Content-Type", OCI_MANIFEST)]
    nested = [
        ("config", "size"),
        ("config", "digest"),
        ("config", "mediaType"),
        ("layers", "0", "size"),
        ("layers", "0", "digest"),
        ("layers", "0", "annotations"),
    ]
    for what, body in json_bodies(manifest, nested):
        yield Raw(f"manifest {what}", registry_request(server, token, "PUT", put, body, ctype))
    good = json.dumps(manifest).encode()
    for value in (
        "application/x-unknown",
        "",
        "\u2603",
        OCI_MANIFEST + "; charset=utf-16",
        "a" * 3000,
        "*/*",
    ):
        yield Raw(
            f"manifest content type {value[:20]}",
            registry_request(server, token, "PUT", put, good, [("Content-Type", value)]),
        )
    paths = [
        f"/v2/{REPO}/tags/list",
        "/v2/_catalog",
        f"/v2/{REPO}/manifests/v1",
        f"/v2/{REPO}/blobs/{blob_digest}",
        f"/v2/{REPO}/blobs/uploads/",
        f"/v2/{REPO}/referrers/{blob_digest}",
    ]
    for what, method, target in methods_and_paths(paths):
        yield Raw(f"registry {what}", registry_request(server, token, method, target))
    for query in (
        "n=\u00b2",
        "n=-1",
        "n=1e3",
        "n=99999999999999999999",
        "n=",
        "last=%00",
        "last=\u2603&n=1",
        "n=1&n=2",
        "n=%ff",
    ):
        for path in paths[:2]:
            yield Raw(f"{path} ?{query}", registry_request(server, token, "GET", f"{path}?{query}"))
    for what, headers in BAD_HEADERS:
        yield Raw(f"registry {what}", registry_request(server, token, "GET", paths[3], b"", headers))
        yield Raw(f"registry upload {what}", registry_request(server, token, "POST", paths[4], b"x", headers))
    for value in ("bytes 0-", "0-1", "x-y", "99999999999999999999-0", "-5-3", "\u2603"):
        yield Raw(
            f"patch content-range {value}",
            registry_request(
                server,
                token,
                "PATCH",
                f"/v2/{REPO}/blobs/uploads/{'0' * 32}",
                b"abc",
                [("Content-Range", value)],
            ),
        )
    deep_jwt = base64.urlsafe_b64encode(corpus.deep(3000).encode()).decode().rstrip("=")
    for what, value in (
        ("jwt deep header", f"Bearer {deep_jwt}.e30.{'A' * 86}"),
        ("jwt surrogate", "Bearer " + base64.urlsafe_b64encode(b'{"alg":"\\ud800"}').decode() + ".e30.x"),
        (
            "jwt huge number",
            "Bearer " + base64.urlsafe_b64encode(b'{"exp":' + b"9" * 5000 + b"}").decode() + ".e30.x",
        ),
    ):
        yield Raw(
            f"registry {what}",
            registry_request(server, token, "GET", paths[0], b"", [("Authorization", value)]),
        )
    yield Raw("registry bare LF", registry_request(server, token, "GET", paths[0], sep=b"\n"))
    yield Raw(
        "registry chunked garbage",
        registry_request(
            server, token, "POST", paths[4], b"zz\r\nabc\r\n0\r\n\r\n", [("Transfer-Encoding", "chunked")]
        ),
    )
    yield Raw(
        "registry short chunked",
        registry_request(
            server, token, "POST", paths[4], b"ff\r\nabc\r\n0\r\n\r\n", [("Transfer-Encoding", "chunked")]
        ),
    )


def token_corpus(server: Dockyard) -> Iterator[Raw]:
    def post(what: str, body: bytes, ctype: str) -> Raw:
        return Raw(
            f"token {what}",
            head(
                "POST",
                "/token",
                [
                    ("Host", server.registry),
                    ("Connection", "close"),
                    ("Content-Type", ctype),
                    ("Content-Length", str(len(body))),
                ],
                body,
            ),
        )

    form = "application/x-www-form-urlencoded"
    good = b"grant_type=password&username=u&password=p&service=dockyard&scope=repository:a/b:pull"
    for cut in (1, 10, len(good) // 2, len(good) - 1):
        yield post(f"truncated {cut}", good[:cut], form)
    for what, body in (
        ("percent garbage", b"grant_type=%zz&password=%"),
        ("surrogate", b"username=%ED%A0%80&password=x"),
        ("latin-1", b"username=\xe9&password=\xff"),
        ("nul", b"username=a\x00&password=b"),
        ("huge", b"scope=" + b"repository:a:pull " * 5000),
        ("many scopes", b"&".join([b"scope=x:y:z"] * 200)),
        ("bad scope", good + b"&scope=repository::::"),
        ("grant", b"grant_type=client_credentials"),
        ("empty", b""),
        ("json", b'{"grant_type": "password"}'),
        ("deep", corpus.deep(5000).encode()),
    ):
        yield post(what, body, form)
    for ctype in (
        form + "; charset=utf-16",
        form + "; charset=nope",
        "multipart/form-data",
        "multipart/form-data; boundary=",
        "multipart/form-data; boundary=x",
        "application/json",
        "text/plain",
        "\u2603",
    ):
        yield post(f"content type {ctype[:30]}", good, ctype)
    yield post(
        "multipart broken",
        b"--x\r\nContent-Disposition: form-data\r\n\r\nv\r\n--y--",
        "multipart/form-data; boundary=x",
    )
    for what, auth in (
        ("basic garbage", "Basic !!"),
        ("basic no colon", "Basic YQ=="),
        ("basic latin-1", "Basic 6Q=="),
        ("basic huge", "Basic " + "QUFB" * 2000),
        ("bearer", "Bearer x"),
        ("empty", "Basic "),
    ):
        yield Raw(
            f"token get {what}",
            head(
                "GET",
                "/token?service=dockyard&scope=repository:a/b:pull",
                [("Host", server.registry), ("Connection", "close"), ("Authorization", auth)],
                b"",
            ),
        )
    for query in (
        "scope=%ff",
        "scope=" + "x" * 9000,
        "scope=repository:a:pull&scope=" * 100,
        "service=\u2603",
    ):
        yield Raw(
            f"token get ?{query[:20]}",
            head("GET", f"/token?{query}", [("Host", server.registry), ("Connection", "close")], b""),
        )


# -- the control API ----------------------------------------------------------------------
CONTROL_OPS: list[tuple[str, str, str, dict]] = [
    (ECS, "ListClusters", "ecs", {"maxResults": 5, "nextToken": "eyJvIjogMH0="}),
    (ECS, "CreateCluster", "ecs", {"clusterName": "corpus", "tags": [{"key": "a", "value": "b"}]}),
    (
        ECS,
        "RegisterTaskDefinition",
        "ecs",
        {
            "family": "corpus",
            "containerDefinitions": [
                {
                    "name": "c",
                    "image": "busybox",
                    "memory": 64,
                    "portMappings": [{"containerPort": 80}],
                    "environment": [{"name": "A", "value": "1"}],
                }
            ],
        },
    ),
    (ECS, "DescribeClusters", "ecs", {"clusters": ["default"], "include": ["TAGS"]}),
    (ECS, "DescribeTaskDefinition", "ecs", {"taskDefinition": "corpus:1"}),
    (ECS, "ListServices", "ecs", {"cluster": "default", "maxResults": 10}),
    (
        ECS,
        "TagResource",
        "ecs",
        {
            "resourceArn": "arn:aws:ecs:us-east-1:000000000000:cluster/corpus",
            "tags": [{"key": "k", "value": "v"}],
        },
    ),
    (CLOUDMAP, "CreateHttpNamespace", "servicediscovery", {"Name": "corpus-ns", "Description": "d"}),
    (CLOUDMAP, "ListNamespaces", "servicediscovery", {"MaxResults": 10}),
    (
        CLOUDMAP,
        "DiscoverInstances",
        "servicediscovery",
        {"NamespaceName": "corpus-ns", "ServiceName": "svc", "QueryParameters": {"a": "b"}},
    ),
    (
        CLOUDMAP,
        "RegisterInstance",
        "servicediscovery",
        {"ServiceId": "srv-x", "InstanceId": "i-1", "Attributes": {"AWS_INSTANCE_IPV4": "10.0.0.1"}},
    ),
    (CLOUDMAP, "GetOperation", "servicediscovery", {"OperationId": "x"}),
    (ECR, "RunRegistryGarbageCollection", "ecr", {"dryRun": True}),
]


def control_request(
    server: Dockyard,
    target: str,
    service: str,
    body: bytes,
    after: list[tuple[str, str]] | None = None,
    method: str = "POST",
    path: str = "/",
    ctype: str = "application/x-amz-json-1.1",
    sep: bytes = b"\r\n",
) -> bytes:
    """A SigV4-signed request; ``after`` headers are added once it is signed (they may break it)."""
    key, secret = server.credentials
    host = f"127.0.0.1:{server.ports['control']}"
    headers = {"host": host, "content-type": ctype}
    if target:
        headers["x-amz-target"] = target
    raw_path, _, raw_query = path.partition("?")
    try:
        signed = sigv4.sign(
            method, raw_path, headers, body, key, secret, "us-east-1", service, raw_query=raw_query
        )
    except Exception:  # a path the signer cannot canonicalise: send it unsigned
        signed = headers
    out = [(k, v) for k, v in signed.items()] + [("Connection", "close")]
    names = {k.lower() for k, _ in after or []}
    if not names & {"content-length", "transfer-encoding"}:
        out.append(("Content-Length", str(len(body))))
    return head(method, path, out + (after or []), body, sep)


def control_corpus(server: Dockyard) -> Iterator[Raw]:
    for prefix, name, service, doc in CONTROL_OPS:
        target = f"{prefix}.{name}"
        nested = (
            [
                ("containerDefinitions", "0", "memory"),
                ("containerDefinitions", "0", "portMappings"),
                ("containerDefinitions", "0", "environment"),
            ]
            if name == "RegisterTaskDefinition"
            else []
        )
        for what, body in json_bodies(doc, nested):
            yield Raw(f"{name} {what}", control_request(server, target, service, body))
    good_target, good = f"{ECS}.ListClusters", json.dumps({"maxResults": 5}).encode()
    for target in (
        "",
        "Nope.Nothing",
        f"{ECS}.",
        ".ListClusters",
        f"{ECS}.\u2603",
        "x" * 5000,
        f"{ECS}.ListClusters.x",
    ):
        yield Raw(f"target {target[:20]}", control_request(server, target, "ecs", good))
    for ctype in (
        "",
        "application/json",
        "application/x-amz-json-1.1; charset=utf-16",
        "\u2603",
        "text/plain",
    ):
        yield Raw(
            f"control content type {ctype[:20]}",
            control_request(server, good_target, "ecs", good, ctype=ctype),
        )
    for what, headers in BAD_HEADERS:
        yield Raw(f"control {what}", control_request(server, good_target, "ecs", good, headers))
    for what, value in (
        ("no signature", ""),
        ("garbage", "AWS4-HMAC-SHA256 garbage"),
        ("no credential", "AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00"),
        (
            "surrogate",
            "AWS4-HMAC-SHA256 Credential=\u2603/x/y/z/aws4_request, SignedHeaders=host, Signature=0",
        ),
        ("basic", "Basic " + base64.b64encode(b"a:b").decode()),
    ):
        raw = control_request(server, good_target, "ecs", good)
        raw = b"\r\n".join(
            line for line in raw.split(b"\r\n") if not line.lower().startswith(b"authorization:")
        )
        if value:
            raw = raw.replace(b"\r\n", f"\r\nAuthorization: {value}".encode(), 1)
        yield Raw(f"control auth {what}", raw)
    for value in ("garbage", "20991231T000000Z", "19700101T000000Z", "\u2603"):
        yield Raw(
            f"control x-amz-date {value}",
            control_request(server, good_target, "ecs", good, [("X-Amz-Date", value)]),
        )
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "FOO"):
        yield Raw(
            f"control method {method}", control_request(server, good_target, "ecs", good, method=method)
        )
    for path in (
        "/x",
        "/%ff",
        "/..",
        "/service/x/operation/y",
        "/" + "a" * 9000,
        "/?a=%zz",
        "/healthz?x=\u2603",
    ):
        yield Raw(f"control path {path[:20]}", control_request(server, "", "ecs", good, path=path))
    cbor_headers = [("smithy-protocol", "rpc-v2-cbor")]
    for what, body in (
        ("garbage", b"\xff\xfe"),
        ("deep", b"\xa1\x61a" + b"\x81" * 5000 + b"\x01"),
        ("empty", b""),
    ):
        yield Raw(
            f"cbor {what}",
            control_request(
                server,
                "",
                "servicediscovery",
                body,
                cbor_headers,
                path=f"/service/{CLOUDMAP}/operation/ListNamespaces",
                ctype="application/cbor",
            ),
        )
    form = "application/x-www-form-urlencoded"
    for what, body in (
        ("unknown action", b"Action=Nope&Version=2015-12-01"),
        ("no action", b"Version=1"),
        ("percent garbage", b"Action=%zz"),
        ("deep keys", b"Action=X&" + b"A.1." * 2000 + b"B=1"),
        ("latin-1", b"Action=\xe9"),
        ("huge", b"Action=" + b"a" * 100000),
    ):
        yield Raw(f"query {what}", control_request(server, "", "elasticloadbalancing", body, ctype=form))
    yield Raw("control bare LF", control_request(server, good_target, "ecs", good, sep=b"\n"))
    yield Raw(
        "control chunked garbage",
        control_request(
            server, good_target, "ecs", b"zz\r\n{}\r\n0\r\n\r\n", [("Transfer-Encoding", "chunked")]
        ),
    )


def _prepare(server: Dockyard) -> tuple[str, dict, str]:
    reg = RegistryClient(server)
    config = b'{"architecture": "amd64", "os": "linux"}'
    layer = b"corpus layer" * 10
    reg.push_blob(REPO, config)
    digest = reg.push_blob(REPO, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(OCI_CONFIG, config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", layer, annotations={"a": "b"})],
        "annotations": {"k": "v"},
        "artifactType": "application/x-corpus",
    }
    return registry_token(server), manifest, digest


def test_a_corpus_of_malformed_requests_gets_no_5xx_and_logs_no_error(server: Dockyard):
    token, manifest, digest = _prepare(server)
    since = len(log_lines(server))
    http = [
        (server.ports["registry"], r)
        for r in [*registry_corpus(server, token, manifest, digest), *token_corpus(server)]
    ]
    http += [(server.ports["control"], r) for r in control_corpus(server)]
    packets = list(corpus.dns_packets())
    assert len(http) + len(packets) >= 400, len(http) + len(packets)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda pr: (pr[1], send(pr[0], pr[1].data)), http))
    fivexx = [(raw.id, answer[:300]) for raw, answer in answers if (status_of(answer) or 0) >= 500]
    unanswered = [raw.id for raw, answer in answers if status_of(answer) is None]
    assert not fivexx, f"{len(fivexx)} of {len(answers)} got a 5xx: {fivexx[:10]}"
    # only a connection the server had to give up on may close without an answer
    assert len(unanswered) <= len(answers) // 20, unanswered

    servfail = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(2)
        for what, packet in packets:
            udp.sendto(packet, ("127.0.0.1", server.ports["dns"]))
            try:
                reply, _ = udp.recvfrom(65535)
            except TimeoutError:
                continue  # dropped: no header to answer
            if len(reply) >= 4 and reply[3] & 0x0F == 2:
                servfail.append(what)
        assert not servfail, servfail
        udp.sendto(next(iter(corpus.dns_packets()))[1], ("127.0.0.1", server.ports["dns"]))  # still answering
        from dnslib import DNSRecord

        udp.sendto(DNSRecord.question("nothing.corpus.internal").pack(), ("127.0.0.1", server.ports["dns"]))
        assert udp.recvfrom(65535)[0]

    time.sleep(0.5)
    bad = errors_in_log(server, since)
    assert not bad, f"{len(bad)} error lines, e.g. {bad[:3]}"
    assert requests.get(f"{server.control_url}/healthz", timeout=10).status_code == 200


# -- secrets --------------------------------------------------------------------------------
def test_credentials_in_malformed_requests_forms_and_dropped_connections_never_reach_the_log(
    server: Dockyard,
):
    basic = base64.b64encode(f"{ADMIN_USER}:{ADMIN_PASSWORD}".encode()).decode()
    session_token = "FQoGZXIvYXdzEJr" + hashlib.sha256(b"corpus").hexdigest()
    secret = server.credentials[1]
    reg = server.registry
    sends = [
        (
            server.ports["registry"],
            f"GET /v2/ HTTP/1.1\nHost: {reg}\nAuthorization: Basic {basic}\n\n".encode(),
        ),
        (
            server.ports["registry"],
            f"GET /token HTTP/1.1\r\nHost: {reg}\r\nAuthorization: Basic {basic}\r\n folded\r\n\r\n".encode(),
        ),
        (server.ports["registry"], f"GET /v2/\x00 HTTP/1.1\r\nAuthorization: Basic {basic}\r\n\r\n".encode()),
        (
            server.ports["control"],
            f"POST / HTTP/1.1\nHost: x\nX-Amz-Security-Token: {session_token}\n"
            f"Authorization: Basic {basic}\n\n".encode(),
        ),
        (
            server.ports["control"],
            f"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Security-Token: {session_token}\r\n"
            f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{{}}".encode(),
        ),
    ]
    for body, ctype in (
        (
            f"grant_type=password&username={ADMIN_USER}&password={ADMIN_PASSWORD}&scope=%zz",
            "application/x-www-form-urlencoded",
        ),
        (
            f"grant_type=password&username={ADMIN_USER}&password={ADMIN_PASSWORD}x",
            "application/x-www-form-urlencoded",
        ),
        (
            f"grant_type=password&password={ADMIN_PASSWORD}",
            "application/x-www-form-urlencoded; charset=utf-16",
        ),
        (f"--x\r\n\r\npassword={ADMIN_PASSWORD}", "multipart/form-data; boundary=y"),
    ):
        sends.append(
            (
                server.ports["registry"],
                head(
                    "POST",
                    "/token",
                    [
                        ("Host", reg),
                        ("Connection", "close"),
                        ("Content-Type", ctype),
                        ("Content-Length", str(len(body))),
                    ],
                    body.encode(),
                ),
            )
        )
    for port, data in sends:
        send(port, data)
    # 41 clients that drop their connection mid-body, with credentials in their headers
    for i in range(41):
        port = server.ports["registry" if i % 2 else "control"]
        path = f"/v2/{REPO}/blobs/uploads/" if i % 2 else "/"
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n"
                f"X-Amz-Security-Token: {session_token}\r\nContent-Length: 100000\r\n\r\n".encode()
                + b"x" * 3000
            )
            time.sleep(0.02)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
    time.sleep(1.0)
    text = log_path(server).read_text(errors="replace")
    for needle in (basic, ADMIN_PASSWORD, session_token, secret):
        assert needle not in text, f"{needle[:6]}... is in the log"
    assert "ConnectionResetError" not in "".join(
        line for line in text.splitlines() if '"level":"debug"' not in line
    )
    assert not errors_in_log(server)


# -- connections --------------------------------------------------------------------------
def test_thousands_of_idle_and_half_sent_connections_leave_real_clients_served_and_are_closed_on_time(
    server: Dockyard,
):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < 7_000:
        pytest.fail(f"the hard open-file limit ({hard}) is too low for 6,000 connections")
    ports = [server.ports["registry"], server.ports["control"]]
    held: list[socket.socket] = []
    kept: list[socket.socket] = []  # idle after one answer: the keep-alive timeout applies
    stop = threading.Event()
    latencies: list[tuple[float, float]] = []  # (when, seconds)
    failures: list[str] = []

    def real_clients() -> None:
        while not stop.is_set():
            for port, path in ((ports[0], "/v2/"), (ports[1], "/healthz")):
                started = time.monotonic()
                try:
                    out = send(
                        port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode(), 5
                    )
                    if status_of(out) not in (200, 401):
                        failures.append(repr(out[:100]))
                except OSError as e:
                    failures.append(str(e))
                latencies.append((started, time.monotonic() - started))
            time.sleep(0.01)

    watcher = threading.Thread(target=real_clients)
    try:
        for i in range(200):
            sock = socket.create_connection(("127.0.0.1", ports[i % 2]))
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setblocking(False)
            kept.append(sock)
        opened = time.monotonic()
        for i in range(6_000):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("127.0.0.1", ports[i % 2]))
            except BlockingIOError:
                pass
            held.append(sock)
        _until_connected(held, 30.0)
        for sock in held[1::2]:  # every other one sends part of a head, then nothing
            with contextlib.suppress(OSError):
                sock.send(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        all_in = time.monotonic()
        time.sleep(0.5)  # the server has accepted them all
        watcher.start()
        time.sleep(1.0)
        holding = [s for t, s in latencies if t < time.monotonic()]
        # none is closed before its time: the header timeout runs from each one's accept
        assert time.monotonic() - opened < HEADER_TIMEOUT, "too slow to check that none closes early"
        early = len(held) - _still_open(held)
        assert not early, f"{early} closed before the header timeout ({time.monotonic() - all_in:.1f} s)"
        # every one is closed by the header timeout (the keep-alive one for those that got an
        # answer), counted from when the last was accepted, plus a sweep and some slack
        deadline = all_in + max(HEADER_TIMEOUT, KEEPALIVE_TIMEOUT) + 2.0
        open_left = len(held) + len(kept)
        while time.monotonic() < deadline and open_left:
            time.sleep(0.25)
            open_left = _still_open([*held, *kept])
        closed_at = time.monotonic() - opened
        assert open_left == 0, f"{open_left} of {len(held) + len(kept)} still open"
        stop.set()
        watcher.join()
        assert not failures, failures[:5]
        closing = [s for t, s in latencies][len(holding) :]
        for what, values in (("while held", sorted(holding)), ("while closing", sorted(closing))):
            assert values, what
            p95 = values[int(len(values) * 0.95)]
            median, top = values[len(values) // 2] * 1000, values[-1] * 1000
            print(
                f"real clients {what}: {len(values)} requests, median {median:.1f} ms, "
                f"p95 {p95 * 1000:.1f} ms, "
                f"max {top:.1f} ms; all closed {closed_at:.1f} s after opening"
            )
            # while held, as the issue asks; while thousands close at once, nine in ten
            bound = p95 if what == "while held" else values[int(len(values) * 0.9)]
            assert bound < 0.1, (what, values[-10:])
        assert not errors_in_log(server)
    finally:
        stop.set()
        if watcher.is_alive():
            watcher.join()
        for sock in [*held, *kept]:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _until_connected(socks: list[socket.socket], limit: float) -> None:
    """Wait until every non-blocking connect has completed (or ``limit`` seconds)."""
    import select

    poller = select.poll()
    pending = {s.fileno(): s for s in socks}
    for fd in pending:
        poller.register(fd, select.POLLOUT)
    deadline = time.monotonic() + limit
    while pending and time.monotonic() < deadline:
        for fd, _ in poller.poll(500):
            if fd in pending:
                poller.unregister(fd)
                del pending[fd]
    assert not pending, f"{len(pending)} connections never completed"


def _still_open(socks: list[socket.socket]) -> int:
    """How many of ``socks`` the server has not closed (one poll; what it sent is left unread)."""
    import select

    poller = select.poll()
    for sock in socks:
        poller.register(sock.fileno(), select.POLLRDHUP)
    gone = sum(1 for _, ev in poller.poll(0) if ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR))
    return len(socks) - gone
