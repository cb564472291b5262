"""Every AWS wire protocol on a real control port, through the real ``aws`` CLI and botocore,
against one process (aiohttp) and against two control workers (their own transport, which
answers read-only operations itself and forwards the rest):

- Smithy RPC v2 CBOR with Cloud Map, Dockyard's own service: botocore's model lists
  ``smithy-rpc-v2-cbor`` among Cloud Map's protocols but botocore prefers JSON while JSON is
  listed, so the clients here load that same model with JSON dropped (``AWS_DATA_PATH``).
- REST-JSON (App Mesh) and Query (ELBv2), which no Dockyard service speaks yet: stub
  operations registered through the public ``Operations`` API (``tests.support.stub_protocols``)
  on a real ``dockyard up``.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from dockyard.aws import sigv4
from tests.support.server import BIN, ROOT, Dockyard
from tests.support.stub_protocols import ENTRY

CM = "Route53AutoNaming_v20170314"


@pytest.fixture(scope="module")
def cbor_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A botocore data path whose Cloud Map model is botocore's own listing only RPC v2 CBOR."""
    root = tmp_path_factory.mktemp("models")
    (src,) = (Path(botocore.__file__).parent / "data" / "servicediscovery").glob("*/service-2.json.gz")
    data = json.loads(gzip.decompress(src.read_bytes()))
    assert "smithy-rpc-v2-cbor" in data["metadata"]["protocols"]
    data["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    data["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    out = root / "servicediscovery" / src.parent.name
    out.mkdir(parents=True)
    (out / "service-2.json").write_text(json.dumps(data))
    return root


@pytest.fixture(scope="module", params=["one-process", "control-workers"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockyard]:
    request.getfixturevalue("docker_engine")
    extra = ["--control-workers", "2"] if request.param == "control-workers" else []
    srv = Dockyard(
        tmp_path_factory.mktemp("protocols") / "data", extra_args=extra,
        command=[sys.executable, "-m", ENTRY], env={"PYTHONPATH": str(ROOT), "DOCKYARD_DOCKER_HOST": "none"},
    )
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def main_pid(server: Dockyard) -> int:
    assert server.proc is not None
    return server.proc.pid


def cbor_client(server: Dockyard, models: Path, **kw: Any) -> Any:
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(models))
    key, secret = server.credentials
    c = session.create_client(
        "servicediscovery", endpoint_url=server.control_url, region_name=kw.pop("region", "us-east-1"),
        aws_access_key_id=kw.pop("key", key), aws_secret_access_key=kw.pop("secret", secret),
        config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )
    assert c.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    return c


def cli(server: Dockyard, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The real aws CLI, with ``--debug`` so that the test can see what went on the wire."""
    return subprocess.run(
        [str(BIN / "aws"), "--debug", "--endpoint-url", server.control_url, "--output", "json", *args],
        capture_output=True, text=True, env={**server.aws_env(), **(env or {})}, timeout=120,
    )


def out(proc: subprocess.CompletedProcess) -> Any:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout) if proc.stdout.strip() else {}


# -- Smithy RPC v2 CBOR: Cloud Map -----------------------------------------------------------


def test_the_aws_cli_drives_cloud_map_over_rpc_v2_cbor(server, cbor_models):
    env = {"AWS_DATA_PATH": str(cbor_models)}
    name = "cbor-cli"
    proc = cli(server, "servicediscovery", "create-http-namespace", "--name", name, env=env)
    op = out(proc)["OperationId"]
    assert f"/service/{CM}/operation/CreateHttpNamespace" in proc.stderr
    assert "smithy-protocol" in proc.stderr and "rpc-v2-cbor" in proc.stderr
    ns_id = out(cli(server, "servicediscovery", "get-operation", "--operation-id", op, env=env))[
        "Operation"]["Targets"]["NAMESPACE"]
    listed = out(cli(server, "servicediscovery", "list-namespaces", env=env))["Namespaces"]
    assert [n["Id"] for n in listed if n["Name"] == name] == [ns_id]
    proc = cli(server, "servicediscovery", "get-namespace", "--id", "ns-nosuchnamespace", env=env)
    assert proc.returncode != 0 and "NamespaceNotFound" in proc.stderr
    srv = out(cli(server, "servicediscovery", "create-service", "--name", "web", "--namespace-id", ns_id,
                  env=env))["Service"]
    attrs = "AWS_INSTANCE_IPV4=10.0.0.1,AWS_INSTANCE_PORT=80"
    out(cli(server, "servicediscovery", "register-instance", "--service-id", srv["Id"],
            "--instance-id", "i-1", "--attributes", attrs, env=env))
    proc = cli(server, "servicediscovery", "discover-instances", "--namespace-name", name,
               "--service-name", "web", env=env)
    assert [i["InstanceId"] for i in out(proc)["Instances"]] == ["i-1"]
    assert f"/service/{CM}/operation/DiscoverInstances" in proc.stderr


def test_botocore_over_cbor_gets_timestamps_errors_and_validation_in_cbor(server, cbor_models):
    sd = cbor_client(server, cbor_models)
    sent: list[Any] = []
    sd.meta.events.register("before-send", lambda request, **kw: sent.append(request))
    op = sd.create_http_namespace(Name="cbor-boto")["OperationId"]
    ns_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    ns = sd.get_namespace(Id=ns_id)["Namespace"]
    assert isinstance(ns["CreateDate"], datetime) and ns["CreateDate"].tzinfo is not None
    assert abs((datetime.now(UTC) - ns["CreateDate"]).total_seconds()) < 600
    assert sent[-1].headers["Content-Type"] == b"application/cbor" or sent[-1].headers[
        "Content-Type"] == "application/cbor"
    assert sent[-1].url.endswith(f"/service/{CM}/operation/GetNamespace")
    with pytest.raises(ClientError) as e:
        sd.get_namespace(Id="ns-nosuchnamespace")
    assert e.value.response["Error"]["Code"] == "NamespaceNotFound"
    assert e.value.response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/cbor"


def test_cbor_is_authenticated_like_json(server, cbor_models):
    for kw, code in (({"secret": "wrong"}, "InvalidSignatureException"),
                     ({"key": "DKYDNOSUCHKEY"}, "UnrecognizedClientException"),
                     ({"region": "eu-west-1"}, "InvalidSignatureException")):
        with pytest.raises(ClientError) as e:
            cbor_client(server, cbor_models, **kw).list_namespaces()
        assert e.value.response["Error"]["Code"] == code, kw


# -- REST-JSON: App Mesh stubs ---------------------------------------------------------------


def test_the_aws_cli_and_botocore_reach_a_rest_json_operation(server):
    meshes = out(cli(server, "appmesh", "list-meshes", "--limit", "3"))
    assert len(meshes["meshes"]) == 3 and meshes["nextToken"] == "after-3"
    am = server.client("appmesh")
    listed = am.list_meshes(limit=1)
    assert listed["meshes"][0]["createdAt"] == datetime.fromtimestamp(1700000000.5, UTC)
    assert am.describe_mesh(meshName="m1")["mesh"]["meshName"] == "m1"
    with pytest.raises(ClientError) as e:
        am.describe_mesh(meshName="gone")
    assert (e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]) == (
        "NotFoundException", 404)
    with pytest.raises(ClientError) as e:
        server.client("appmesh", secret="wrong").list_meshes()
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


def test_the_platforms_and_the_parts_own_routes_go_before_the_rest_json_ones(server):
    import urllib.error
    import urllib.request

    def get(path: str, signed: bool = False) -> tuple[int, dict[str, str]]:
        headers: dict[str, str] = {}
        if signed:
            key, secret = server.credentials
            host = f"127.0.0.1:{server.ports['control']}"
            headers = sigv4.sign("GET", path, {"host": host}, b"", key, secret, "us-east-1", "appmesh")
            headers.pop("host")
        req = urllib.request.Request(server.control_url + path, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, {k.lower(): v for k, v in e.headers.items()}

    assert get("/healthz")[0] == get("/metrics")[0] == 200
    assert get("/events")[0] == 403  # the event stream's own refusal of an unsigned request
    status, headers = get("/v20190125/nope")  # authentication comes first, as on AWS
    assert (status, headers["x-amzn-errortype"]) == (403, "MissingAuthenticationTokenException")
    status, headers = get("/v20190125/nope", signed=True)
    assert (status, headers["x-amzn-errortype"]) == (404, "UnknownOperationException")


# -- Query: ELBv2 stubs ----------------------------------------------------------------------


def test_the_aws_cli_and_botocore_reach_a_query_operation(server):
    lbs = out(cli(server, "elbv2", "describe-load-balancers", "--names", "a", "b"))["LoadBalancers"]
    assert [lb["LoadBalancerName"] for lb in lbs] == ["a", "b"]
    elb = server.client("elbv2")
    got = elb.describe_load_balancers(Names=["c"])["LoadBalancers"][0]
    assert got["CreatedTime"] == datetime.fromtimestamp(1700000000, UTC)
    with pytest.raises(ClientError) as e:
        elb.describe_load_balancers(Names=["nope"])
    assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Type"]) == (
        "ValidationException", "Sender")
    with pytest.raises(ClientError) as e:
        server.client("elbv2", secret="wrong").describe_load_balancers()
    assert e.value.response["Error"]["Code"] == "SignatureDoesNotMatch"


# -- who answers -----------------------------------------------------------------------------


def test_read_only_operations_of_every_protocol_are_answered_by_a_worker_when_there_are_workers(
    server, cbor_models
):
    main = main_pid(server)
    am_pids = {server.client("appmesh").list_meshes(limit=1)["meshes"][0]["meshName"] for _ in range(4)}
    elb_pids = {server.client("elbv2").describe_load_balancers(Names=["x"])["LoadBalancers"][0]["DNSName"]
                for _ in range(4)}
    if "--control-workers" in server.extra_args:
        assert f"pid-{main}" not in am_pids | elb_pids
    else:
        assert am_pids == elb_pids == {f"pid-{main}"}
    # a CBOR read (DiscoverInstances is read-only) and a CBOR write both answer, wherever served
    sd = cbor_client(server, cbor_models)
    op = sd.create_http_namespace(Name="who-answers")["OperationId"]
    ns_id = sd.get_operation(OperationId=op)["Operation"]["Targets"]["NAMESPACE"]
    sd.create_service(Name="web", NamespaceId=ns_id)
    assert sd.discover_instances(NamespaceName="who-answers", ServiceName="web")["Instances"] == []
