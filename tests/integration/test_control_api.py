"""The control API as the real aws CLI and boto3 see it, including every error case; each
test runs against one process (aiohttp) and against two control workers (their own HTTP
transport, forwarding what is not read-only to the main process)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import botocore.exceptions
import pytest

from dockyard.aws import sigv4
from tests.support.server import Dockyard

ECS = "AmazonEC2ContainerServiceV20141113"
CM = "Route53AutoNaming_v20170314"


@pytest.fixture(scope="module", params=["one-process", "control-workers"])
def dockyard(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockyard]:
    if request.param == "one-process":
        yield request.getfixturevalue("dockyard")  # the session's server
        return
    request.getfixturevalue("docker_engine")
    data_dir = tmp_path_factory.mktemp("control-workers") / "data"
    server = Dockyard(data_dir, extra_args=["--control-workers", "2"])
    server.start()
    try:
        yield server
    finally:
        server.stop()


def raw(server, body: bytes, headers: dict[str, str], sign: bool = True, when=None):
    """POST / with exactly these headers (signed with the admin key unless sign=False)."""
    hdrs = {"host": f"127.0.0.1:{server.ports['control']}", **{k.lower(): v for k, v in headers.items()}}
    if sign:
        key, secret = server.credentials
        hdrs = sigv4.sign("POST", "/", hdrs, body, key, secret, "us-east-1", "ecs", now=when)
    hdrs.pop("host")
    req = urllib.request.Request(server.control_url + "/", data=body, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


JSON11 = {"content-type": "application/x-amz-json-1.1", "x-amz-target": f"{ECS}.ListClusters"}


def test_the_aws_cli_lists_no_clusters_on_a_new_server(tmp_path):
    # A server of its own (the shared one has clusters from other tests), without Docker.
    server = Dockyard(tmp_path / "data", env={"DOCKYARD_DOCKER_HOST": "none"})
    server.start()
    try:
        assert server.aws("ecs", "list-clusters")["clusterArns"] == []
        arn = server.aws("ecs", "create-cluster", "--cluster-name", "only")["cluster"]["clusterArn"]
        assert server.aws("ecs", "list-clusters")["clusterArns"] == [arn]
    finally:
        server.stop()


def test_the_aws_cli_creates_describes_and_deletes_a_cluster(dockyard):
    created = dockyard.aws("ecs", "create-cluster", "--cluster-name", "cli-c1")["cluster"]
    assert created["clusterArn"] == "arn:aws:ecs:us-east-1:000000000000:cluster/cli-c1"
    assert created["status"] == "ACTIVE"
    assert created["clusterArn"] in dockyard.aws("ecs", "list-clusters")["clusterArns"]
    out = dockyard.aws("ecs", "describe-clusters", "--clusters", "cli-c1", "nope")
    assert [c["clusterName"] for c in out["clusters"]] == ["cli-c1"]
    assert out["failures"][0]["reason"] == "MISSING"
    assert dockyard.aws("ecs", "delete-cluster", "--cluster", "cli-c1")["cluster"]["status"] == "INACTIVE"
    assert created["clusterArn"] not in dockyard.aws("ecs", "list-clusters")["clusterArns"]


def test_boto3_paginates_list_clusters(dockyard):
    ecs = dockyard.client("ecs")
    for i in range(5):
        ecs.create_cluster(clusterName=f"page-{i}")
    arns = [a for p in ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2})
            for a in p["clusterArns"]]
    assert [a for a in arns if "/page-" in a] == [
        f"arn:aws:ecs:us-east-1:000000000000:cluster/page-{i}" for i in range(5)
    ]


def test_an_unknown_cluster_is_a_cluster_not_found_exception(dockyard):
    proc = dockyard.aws("ecs", "delete-cluster", "--cluster", "does-not-exist", check=False)
    assert proc.returncode != 0
    assert "ClusterNotFoundException" in proc.stderr


def test_a_wrong_secret_is_an_invalid_signature_for_the_cli_and_boto3(dockyard):
    key, _ = dockyard.credentials
    proc = dockyard.aws("ecs", "list-clusters", env={"AWS_SECRET_ACCESS_KEY": "wrong"}, check=False)
    assert "InvalidSignatureException" in proc.stderr
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dockyard.client("ecs", key=key, secret="wrong").list_clusters()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_key_is_an_unrecognized_client_for_the_cli_and_boto3(dockyard):
    proc = dockyard.aws("ecs", "list-clusters", env={"AWS_ACCESS_KEY_ID": "DKYDNOSUCHKEY"}, check=False)
    assert "UnrecognizedClientException" in proc.stderr
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dockyard.client("ecs", key="DKYDNOSUCHKEY", secret="x").list_clusters()
    assert e.value.response["Error"]["Code"] == "UnrecognizedClientException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_an_unknown_operation_is_an_unknown_operation_exception(dockyard):
    status, body = raw(dockyard, b"{}", {**JSON11, "x-amz-target": f"{ECS}.NoSuchThing"})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    status, body = raw(dockyard, b"{}", {**JSON11, "x-amz-target": "Nope_2020.ListClusters"})
    assert (status, body["__type"]) == (400, "UnknownOperationException")


def test_a_missing_target_is_refused(dockyard):
    status, body = raw(dockyard, b"{}", {"content-type": "application/x-amz-json-1.1"})
    assert (status, body["__type"]) == (400, "UnknownOperationException")
    assert "X-Amz-Target" in body["message"]


@pytest.mark.parametrize("payload", [b"{not json", b"[1,2]", b"\xff\xfe", b'"str"'])
def test_malformed_json_is_a_serialization_exception(dockyard, payload):
    status, body = raw(dockyard, payload, JSON11)
    assert (status, body["__type"]) == (400, "SerializationException")


def test_a_wrong_content_type_is_refused(dockyard):
    status, body = raw(dockyard, b"{}", {**JSON11, "content-type": "text/plain"})
    assert (status, body["__type"]) == (400, "SerializationException")
    assert "text/plain" in body["message"]


def test_a_body_over_10_mib_is_refused_and_the_server_keeps_serving(dockyard):
    big = b'{"x":"' + b"a" * (10 * 1024 * 1024) + b'"}'
    status, body = raw(dockyard, big, JSON11, sign=False)
    assert (status, body["__type"]) == (413, "RequestEntityTooLargeException")
    assert raw(dockyard, b"{}", JSON11)[0] == 200


def test_missing_or_garbled_authorization_is_refused(dockyard):
    status, body = raw(dockyard, b"{}", JSON11, sign=False)
    assert (status, body["__type"]) == (403, "MissingAuthenticationTokenException")
    garbled = {**JSON11, "authorization": "AWS4-HMAC-SHA256 Credential=x"}
    status, body = raw(dockyard, b"{}", garbled, sign=False)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")
    status, body = raw(dockyard, b"{}", {**JSON11, "authorization": "Basic Zm9vOmJhcg=="}, sign=False)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")


def test_a_request_signed_six_minutes_ago_is_rejected(dockyard):
    status, body = raw(dockyard, b"{}", JSON11, when=datetime.now(UTC) - timedelta(minutes=6))
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert "expired" in body["message"]


def post(server, body: bytes, headers: dict[str, str]):
    """POST / with exactly ``headers`` (already signed, or not), ``host`` dropped (urllib sets it)."""
    hdrs = {k: v for k, v in headers.items() if k != "host"}
    req = urllib.request.Request(server.control_url + "/", data=body, headers=hdrs, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_a_signed_list_clusters_sent_as_list_task_definitions_is_refused(dockyard):
    key, secret = dockyard.credentials
    host = f"127.0.0.1:{dockyard.ports['control']}"
    # the attack: the signature covers host;x-amz-date, the target is set afterwards
    hdrs = sigv4.sign("POST", "/", {"host": host}, b"{}", key, secret, "us-east-1", "ecs")
    hdrs.update({**JSON11, "x-amz-target": f"{ECS}.ListTaskDefinitions"})
    status, body = post(dockyard, b"{}", hdrs)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException"), body
    assert "x-amz-target" in body["message"]
    hdrs = sigv4.sign("POST", "/", {"host": host, "x-amz-target": f"{ECS}.ListClusters"}, b"{}", key, secret,
                      "us-east-1", "ecs")
    hdrs["content-type"] = JSON11["content-type"]  # an unsigned content type is refused as well
    status, body = post(dockyard, b"{}", hdrs)
    assert (status, body["__type"]) == (400, "IncompleteSignatureException"), body
    hdrs = sigv4.sign("POST", "/", {"host": host, **JSON11}, b"{}", key, secret, "us-east-1", "ecs")
    hdrs["x-amz-target"] = f"{ECS}.ListTaskDefinitions"  # signed, then changed
    status, body = post(dockyard, b"{}", hdrs)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert post(dockyard, b"{}", sigv4.sign("POST", "/", {"host": host, **JSON11}, b"{}", key, secret,
                                            "us-east-1", "ecs"))[0] == 200


def test_an_unsigned_payload_is_refused(dockyard):
    key, secret = dockyard.credentials
    host = f"127.0.0.1:{dockyard.ports['control']}"
    hdrs = sigv4.sign("POST", "/", {"host": host, **JSON11, "x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                      b"{}", key, secret, "us-east-1", "ecs")
    status, body = post(dockyard, b'{"maxResults": 1}', hdrs)  # any body would do: none is signed
    assert (status, body["__type"]) == (400, "IncompleteSignatureException")
    assert "UNSIGNED-PAYLOAD" in body["message"]


def test_a_scope_of_another_region_or_service_is_refused_for_the_cli_boto3_and_by_hand(dockyard):
    proc = dockyard.aws("ecs", "list-clusters", env={"AWS_DEFAULT_REGION": "eu-west-1"}, check=False)
    assert proc.returncode != 0 and "InvalidSignatureException" in proc.stderr
    assert "region" in proc.stderr
    with pytest.raises(botocore.exceptions.ClientError) as e:
        dockyard.client("ecs", region_name="eu-west-1").list_clusters()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    key, secret = dockyard.credentials
    host = f"127.0.0.1:{dockyard.ports['control']}"
    # an ECS call signed for Cloud Map
    hdrs = sigv4.sign("POST", "/", {"host": host, **JSON11}, b"{}", key, secret, "us-east-1",
                      "servicediscovery")
    status, body = post(dockyard, b"{}", hdrs)
    assert (status, body["__type"]) == (403, "InvalidSignatureException")
    assert "'ecs'" in body["message"]


def test_healthz_and_metrics_answer(dockyard):
    with urllib.request.urlopen(dockyard.control_url + "/healthz", timeout=10) as resp:
        assert json.loads(resp.read()) == {"status": "ok"}  # no pid, no store revision for anyone
    # /metrics counts what the answering process answered: ask on the same connection (a
    # control worker holding more than its share of connections may close it: then again)
    key, secret = dockyard.credentials
    hdrs = {"host": f"127.0.0.1:{dockyard.ports['control']}", "x-amz-target": f"{CM}.ListNamespaces",
            "content-type": "application/x-amz-json-1.1"}
    hdrs = sigv4.sign("POST", "/", hdrs, b"{}", key, secret, "us-east-1", "servicediscovery")
    for _ in range(10):
        conn = http.client.HTTPConnection("127.0.0.1", dockyard.ports["control"], timeout=30)
        try:
            conn.request("POST", "/", body=b"{}", headers=hdrs)
            answer = conn.getresponse()
            assert (answer.status, "Namespaces" in json.loads(answer.read())) == (200, True)
            if answer.headers.get("Connection") == "close":
                continue
            conn.request("GET", "/metrics")
            resp = conn.getresponse()
            text = resp.read().decode()
            break
        finally:
            conn.close()
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert 'dockyard_control_requests_total{code="200",operation="ListNamespaces"' in text


def test_every_log_line_is_json_and_request_lines_carry_a_request_id(dockyard):
    raw(dockyard, b"{}", {**JSON11, "x-amz-target": f"{ECS}.NoSuchThing"})
    log = (dockyard.data_dir.parent / f"{dockyard.data_dir.name}.log").read_text().splitlines()
    records = [json.loads(line) for line in log if line.strip()]
    errors = [r for r in records if r.get("msg") == "control error"]
    assert errors and all(r.get("request_id") for r in errors)
