"""App Mesh meshes through the real ``aws appmesh`` CLI (SigV4, REST-JSON) and boto3, against
the session server's mesh part."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from tests.support.discovery import unique
from tests.support.server import Dockyard


def error(excinfo: pytest.ExceptionInfo) -> tuple[str, int]:
    response = excinfo.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]


def unchecked_client(dockyard: Dockyard):
    import boto3
    from botocore.config import Config

    key, secret = dockyard.credentials
    return boto3.client(
        "appmesh", endpoint_url=dockyard.control_url, region_name="us-east-1", aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
    )


def test_mesh_lifecycle_through_the_aws_cli(dockyard: Dockyard):
    name = unique("mesh")
    created = dockyard.aws("appmesh", "create-mesh", "--mesh-name", name,
                           "--tags", "key=team,value=shop")["mesh"]
    assert created["meshName"] == name and created["status"] == {"status": "ACTIVE"}
    assert created["spec"] == {"egressFilter": {"type": "DROP_ALL"}}
    meta = created["metadata"]
    assert meta["arn"] == f"arn:aws:appmesh:us-east-1:000000000000:mesh/{name}"
    assert meta["version"] == 1 and meta["meshOwner"] == meta["resourceOwner"] == "000000000000"
    described = dockyard.aws("appmesh", "describe-mesh", "--mesh-name", name)["mesh"]
    assert described["metadata"]["uid"] == meta["uid"]
    listed = dockyard.aws("appmesh", "list-meshes")["meshes"]
    assert [m["arn"] for m in listed if m["meshName"] == name] == [meta["arn"]]
    updated = dockyard.aws("appmesh", "update-mesh", "--mesh-name", name,
                           "--spec", "egressFilter={type=ALLOW_ALL}")["mesh"]
    assert updated["spec"]["egressFilter"] == {"type": "ALLOW_ALL"} and updated["metadata"]["version"] == 2
    assert dockyard.aws("appmesh", "describe-mesh", "--mesh-name", name)["mesh"]["metadata"]["version"] == 2
    deleted = dockyard.aws("appmesh", "delete-mesh", "--mesh-name", name)["mesh"]
    assert deleted["status"] == {"status": "DELETED"}
    gone = dockyard.aws("appmesh", "describe-mesh", "--mesh-name", name, check=False)
    assert gone.returncode != 0 and "NotFoundException" in gone.stderr


def test_list_meshes_pages_with_limit_and_next_token(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    names = {unique("page") for _ in range(3)}
    for n in names:
        am.create_mesh(meshName=n)
    seen, token = [], None
    while True:
        got = am.list_meshes(limit=2, **({"nextToken": token} if token else {}))
        assert len(got["meshes"]) <= 2
        seen += [m["meshName"] for m in got["meshes"]]
        token = got.get("nextToken")
        if not token:
            break
    assert names <= set(seen) and len(seen) == len(set(seen))


def test_bad_mesh_requests_get_app_mesh_errors(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    name = unique("bad")
    am.create_mesh(meshName=name)
    with pytest.raises(ClientError) as e:
        am.create_mesh(meshName=name)
    assert error(e) == ("ConflictException", 409)
    for call in (lambda: am.describe_mesh(meshName="no-such-mesh"),
                 lambda: am.update_mesh(meshName="no-such-mesh"),
                 lambda: am.delete_mesh(meshName="no-such-mesh")):
        with pytest.raises(ClientError) as e:
            call()
        assert error(e) == ("NotFoundException", 404)
    with pytest.raises(ClientError) as e:
        am.list_meshes(nextToken="garbage")
    assert error(e) == ("BadRequestException", 400)
    unchecked = unchecked_client(dockyard)  # botocore checks enums itself: the server's model check
    with pytest.raises(ClientError) as e:
        unchecked.create_mesh(meshName=unique("enum"), spec={"egressFilter": {"type": "NOPE"}})
    assert error(e) == ("BadRequestException", 400)
    with pytest.raises(ClientError) as e:
        unchecked.create_mesh(meshName="")
    assert error(e)[0] in ("BadRequestException", "UnknownOperationException")
    bad = dockyard.aws("appmesh", "list-meshes", "--limit", "101", check=False)
    assert bad.returncode != 0 and "BadRequestException" in bad.stderr
