"""Each wire protocol end to end: a real botocore client against an in-process server with a
stub operation (REST-JSON: App Mesh, Query: ELBv2, RPC v2 CBOR: Cloud Map)."""

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from botocore.config import Config
from botocore.exceptions import ClientError

from dockyard.aws.errors import InvalidParameterException, ResourceNotFoundException, ValidationException
from dockyard.aws.protocol import CLOUDMAP, Call, Operations

KEY, SECRET = "DKYDTEST", "s3cret"
BOTOCORE_DATA = Path(botocore.__file__).parent / "data"


@pytest.fixture
async def served() -> AsyncIterator[tuple[Operations, Callable[..., Any]]]:
    ops = Operations({KEY: SECRET}.get)
    app = web.Application()
    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/healthz", healthz)  # the app's own route goes first
    servers: list[TestServer] = []

    async def start() -> str:
        ops.install(app.router, rest=True)
        server = TestServer(app)
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield ops, start
    for s in servers:
        await s.close()


def client(service: str, url: str, session: Any = None) -> Any:
    session = session or botocore.session.get_session()
    return session.create_client(
        service, endpoint_url=url, region_name="us-east-1", aws_access_key_id=KEY,
        aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}, inject_host_prefix=False),
    )


async def call(c: Any, op: str, **params: Any) -> Any:
    return await asyncio.to_thread(getattr(c, op), **params)


# -- REST-JSON ------------------------------------------------------------------------------


async def test_rest_json_routes_by_method_and_path_and_places_members(served):
    ops, start = served
    seen: list[dict[str, Any]] = []

    async def list_meshes(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        return {"meshes": [{"meshName": "m1", "arn": "arn:m1", "meshOwner": "o", "resourceOwner": "o",
                            "version": 1, "createdAt": 1700000000.5, "lastUpdatedAt": 1700000000.5}],
                "nextToken": "t2"}

    async def describe_mesh(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        if params["meshName"] == "gone":
            raise ResourceNotFoundException("no mesh gone")
        return {"mesh": {"meshName": params["meshName"], "metadata": {"arn": "a", "version": 3}}}

    ops.add("appmesh", "ListMeshes", list_meshes)
    ops.add("appmesh", "DescribeMesh", describe_mesh)
    mesh = client("appmesh", await start())
    out = await call(mesh, "list_meshes", limit=5, nextToken="t1")
    assert out["meshes"][0]["meshName"] == "m1"
    assert out["meshes"][0]["createdAt"] == datetime.fromtimestamp(1700000000.5, UTC)
    assert out["nextToken"] == "t2"
    assert seen[-1] == {"limit": 5, "nextToken": "t1"}
    out = await call(mesh, "describe_mesh", meshName="my mesh", meshOwner="123456789012")
    assert out["mesh"] == {"meshName": "my mesh", "metadata": {"arn": "a", "version": 3}}
    assert seen[-1] == {"meshName": "my mesh", "meshOwner": "123456789012"}
    with pytest.raises(ClientError) as e:
        await call(mesh, "describe_mesh", meshName="gone")
    assert e.value.response["Error"] == {"Code": "ResourceNotFoundException", "Message": "no mesh gone"}


async def test_rest_json_a_path_no_operation_serves_is_a_404_and_the_apps_routes_still_answer(served):
    ops, start = served

    async def noop(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    ops.add("appmesh", "ListMeshes", noop)
    url = await start()
    from aiohttp import ClientSession

    from dockyard.aws import sigv4

    host = url.split("//", 1)[1]
    signed = sigv4.sign("GET", "/nowhere", {"host": host}, b"", KEY, SECRET, "us-east-1", "appmesh")
    async with ClientSession() as s:
        async with s.get(url + "/nowhere") as r:  # unsigned: refused before routing, as AWS does
            assert r.status == 403
        async with s.get(url + "/nowhere", headers=signed) as r:
            assert r.status == 404
            assert r.headers["x-amzn-ErrorType"] == "UnknownOperationException"
        async with s.get(url + "/healthz") as r:
            assert (r.status, await r.text()) == (200, "ok")
        async with s.get(url + "/v20190125/meshes") as r:  # unsigned
            assert r.status == 403


# -- Query with XML answers -----------------------------------------------------------------


async def test_query_decodes_the_form_by_the_model_and_answers_xml(served):
    ops, start = served
    seen: list[dict[str, Any]] = []

    async def describe(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append(params)
        if "nope" in params.get("Names", []):
            raise ValidationException("load balancer name nope is not valid")
        return {
            "LoadBalancers": [
                {"LoadBalancerName": n, "LoadBalancerArn": f"arn:{n}", "CreatedTime": 1700000000.0,
                 "Scheme": "internal", "State": {"Code": "active"},
                 "AvailabilityZones": [{"ZoneName": "z1"}, {"ZoneName": "z2"}]}
                for n in params.get("Names", [])
            ],
            "NextMarker": "m2",
        }

    ops.add("elbv2", "DescribeLoadBalancers", describe)
    elb = client("elbv2", await start())
    out = await call(elb, "describe_load_balancers", Names=["a", "b"], PageSize=10)
    assert seen[-1] == {"Names": ["a", "b"], "PageSize": 10}
    lbs = out["LoadBalancers"]
    assert [lb["LoadBalancerName"] for lb in lbs] == ["a", "b"]
    assert lbs[0]["CreatedTime"] == datetime.fromtimestamp(1700000000, UTC)
    assert lbs[0]["State"] == {"Code": "active"}
    assert [z["ZoneName"] for z in lbs[1]["AvailabilityZones"]] == ["z1", "z2"]
    assert out["NextMarker"] == "m2"
    with pytest.raises(ClientError) as e:
        await call(elb, "describe_load_balancers", Names=["nope"])
    err = e.value.response["Error"]
    assert (err["Code"], err["Message"], err["Type"]) == (
        "ValidationException", "load balancer name nope is not valid", "Sender"
    )
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


async def test_query_an_unknown_action_is_an_error_document(served):
    ops, start = served

    async def noop(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    ops.add("elbv2", "DescribeLoadBalancers", noop)
    elb = client("elbv2", await start())
    with pytest.raises(ClientError) as e:
        await call(elb, "describe_target_groups")
    assert e.value.response["Error"]["Code"] == "UnknownOperationException"


# -- Smithy RPC v2 CBOR ---------------------------------------------------------------------


def cbor_session(tmp_path: Path) -> Any:
    """A botocore session whose Cloud Map model lists only RPC v2 CBOR (botocore prefers JSON
    while the model lists both)."""
    (src,) = (BOTOCORE_DATA / "servicediscovery").glob("*/service-2.json.gz")
    data = json.loads(gzip.decompress(src.read_bytes()))
    data["metadata"]["protocol"] = "smithy-rpc-v2-cbor"
    data["metadata"]["protocols"] = ["smithy-rpc-v2-cbor"]
    out = tmp_path / "servicediscovery" / src.parent.name
    out.mkdir(parents=True)
    (out / "service-2.json").write_text(json.dumps(data))
    session = botocore.session.get_session()
    session.get_component("data_loader").search_paths.insert(0, str(tmp_path))
    return session


async def test_rpc_v2_cbor_reaches_the_json_handler_and_tags_timestamps(served, tmp_path):
    ops, start = served
    seen: list[tuple[Call, dict[str, Any]]] = []

    async def list_namespaces(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        seen.append((call_, params))
        ns = {"Id": "ns-1", "Name": "local", "Type": "DNS_PRIVATE", "CreateDate": 1700000000.25}
        return {"Namespaces": [ns]}

    async def get_namespace(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        raise InvalidParameterException("no such id")

    ops.add(CLOUDMAP, "ListNamespaces", list_namespaces)
    ops.add(CLOUDMAP, "GetNamespace", get_namespace)
    sd = client("servicediscovery", await start(), cbor_session(tmp_path))
    assert sd.meta.service_model.protocol == "smithy-rpc-v2-cbor"
    filters = [{"Name": "TYPE", "Values": ["DNS_PRIVATE"]}]
    out = await call(sd, "list_namespaces", MaxResults=5, Filters=filters)
    assert out["Namespaces"][0]["Name"] == "local"
    assert out["Namespaces"][0]["CreateDate"] == datetime.fromtimestamp(1700000000.25, UTC)
    call_, params = seen[0]
    assert params == {"MaxResults": 5, "Filters": [{"Name": "TYPE", "Values": ["DNS_PRIVATE"]}]}
    assert call_.headers["smithy-protocol"] == "rpc-v2-cbor"
    with pytest.raises(ClientError) as e:
        await call(sd, "get_namespace", Id="ns-x")
    assert e.value.response["Error"] == {"Code": "InvalidParameterException", "Message": "no such id"}


async def test_rpc_v2_cbor_refuses_a_bad_signature(served, tmp_path):
    ops, start = served

    async def noop(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    ops.add(CLOUDMAP, "ListNamespaces", noop)
    session = cbor_session(tmp_path)
    sd = session.create_client(
        "servicediscovery", endpoint_url=await start(), region_name="us-east-1", aws_access_key_id=KEY,
        aws_secret_access_key="wrong", config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as e:
        await call(sd, "list_namespaces")
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"


async def test_query_names_authentication_errors_as_query_services_do(served):
    ops, start = served

    async def noop(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    ops.add("elbv2", "DescribeLoadBalancers", noop)
    url = await start()
    session = botocore.session.get_session()
    wrong = (("wrong", KEY, "SignatureDoesNotMatch"), (SECRET, "NOPE", "InvalidClientTokenId"))
    for secret, key, code in wrong:
        elb = session.create_client(
            "elbv2", endpoint_url=url, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}),
        )
        with pytest.raises(ClientError) as e:
            await call(elb, "describe_load_balancers")
        assert (e.value.response["Error"]["Code"], e.value.response["Error"]["Type"]) == (code, "Sender")
    elb = session.create_client(
        "elbv2", endpoint_url=url, region_name="eu-west-1", aws_access_key_id=KEY,
        aws_secret_access_key=SECRET, config=Config(retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as e:  # the endpoint answers us-east-1 only
        await call(elb, "describe_load_balancers")
    assert "scoped to a valid region" in e.value.response["Error"]["Message"]


def test_install_mounts_the_rest_json_catch_all_only_once_a_rest_json_operation_is_registered():
    async def noop(call_: Call, params: dict[str, Any]) -> dict[str, Any]:
        return {}

    def paths(ops: Operations) -> list[tuple[str, str]]:
        app = web.Application()
        ops.install(app.router)
        return [(r.method, r.resource.canonical) for r in app.router.routes() if r.resource is not None]

    ops = Operations({KEY: SECRET}.get)
    ops.add(CLOUDMAP, "ListNamespaces", noop)
    assert paths(ops) == [("POST", "/"), ("POST", "/service/{tail}")]  # GET / stays a 405
    ops.add("appmesh", "ListMeshes", noop)
    assert paths(ops)[-1] == ("*", "/{tail}")
