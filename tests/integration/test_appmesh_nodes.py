"""App Mesh virtual nodes and virtual services through the real ``aws appmesh`` CLI and boto3."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from tests.integration.test_appmesh_meshes import unchecked_client
from tests.support.discovery import unique
from tests.support.server import Dockyard

NODE = {
    "serviceDiscovery": {"awsCloudMap": {
        "namespaceName": "shop.local", "serviceName": "web",
        "attributes": [{"key": "ECS_TASK_DEFINITION_FAMILY", "value": "web"},
                       {"key": "VERSION", "value": "v1"}]}},
    "listeners": [{
        "portMapping": {"port": 8080, "protocol": "http"},
        "healthCheck": {"protocol": "http", "path": "/health", "healthyThreshold": 2, "unhealthyThreshold": 3,
                        "intervalMillis": 5000, "timeoutMillis": 2000},
        "outlierDetection": {"maxServerErrors": 5, "interval": {"unit": "s", "value": 10},
                             "baseEjectionDuration": {"unit": "s", "value": 30}, "maxEjectionPercent": 50},
        "connectionPool": {"http": {"maxConnections": 100, "maxPendingRequests": 10}},
        "timeout": {"http": {"perRequest": {"unit": "ms", "value": 1500},
                             "idle": {"unit": "s", "value": 60}}}}],
    "backends": [{"virtualService": {"virtualServiceName": "db.shop.local"}}],
}


def error(excinfo: pytest.ExceptionInfo) -> tuple[str, int, str]:
    response = excinfo.value.response
    return (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"],
            response["Error"].get("Message", ""))


def test_virtual_node_and_service_lifecycle_through_the_aws_cli(dockyard: Dockyard):
    mesh = unique("vn")
    aws = dockyard.aws
    aws("appmesh", "create-mesh", "--mesh-name", mesh)
    node = aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1",
               "--spec", json.dumps(NODE), "--tags", "key=team,value=shop")["virtualNode"]
    assert node["virtualNodeName"] == "web-v1" and node["spec"] == NODE
    assert node["status"] == {"status": "ACTIVE"}
    assert node["metadata"]["arn"] == f"arn:aws:appmesh:us-east-1:000000000000:mesh/{mesh}/virtualNode/web-v1"
    got = aws("appmesh", "describe-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1")
    assert got["virtualNode"]["metadata"]["uid"] == node["metadata"]["uid"]
    v2 = json.loads(json.dumps(NODE).replace('"v1"', '"v2"'))
    updated = aws("appmesh", "update-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1",
                  "--spec", json.dumps(v2))["virtualNode"]
    assert updated["metadata"]["version"] == 2
    attributes = updated["spec"]["serviceDiscovery"]["awsCloudMap"]["attributes"]
    assert attributes[1] == {"key": "VERSION", "value": "v2"}
    listed = aws("appmesh", "list-virtual-nodes", "--mesh-name", mesh)["virtualNodes"]
    assert [(n["virtualNodeName"], n["version"]) for n in listed] == [("web-v1", 2)]

    service = aws("appmesh", "create-virtual-service", "--mesh-name", mesh, "--virtual-service-name",
                  "web.shop.local", "--spec",
                  "provider={virtualNode={virtualNodeName=web-v1}}")["virtualService"]
    assert service["virtualServiceName"] == "web.shop.local"
    assert service["spec"] == {"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}
    assert service["metadata"]["arn"].endswith(f":mesh/{mesh}/virtualService/web.shop.local")
    aws("appmesh", "create-virtual-router", "--mesh-name", mesh, "--virtual-router-name", "web-router",
        "--spec", json.dumps({"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}))
    moved = aws("appmesh", "update-virtual-service", "--mesh-name", mesh, "--virtual-service-name",
                "web.shop.local", "--spec", "provider={virtualRouter={virtualRouterName=web-router}}")
    assert moved["virtualService"]["metadata"]["version"] == 2
    services = aws("appmesh", "list-virtual-services", "--mesh-name", mesh)["virtualServices"]
    assert [s["virtualServiceName"] for s in services] == ["web.shop.local"]
    described = aws("appmesh", "describe-virtual-service", "--mesh-name", mesh, "--virtual-service-name",
                    "web.shop.local")["virtualService"]
    assert described["spec"]["provider"] == {"virtualRouter": {"virtualRouterName": "web-router"}}

    in_use = aws("appmesh", "delete-virtual-router", "--mesh-name", mesh, "--virtual-router-name",
                 "web-router", check=False)
    assert in_use.returncode != 0 and "ResourceInUseException" in in_use.stderr
    gone = aws("appmesh", "delete-virtual-service", "--mesh-name", mesh, "--virtual-service-name",
               "web.shop.local")["virtualService"]
    assert gone["status"] == {"status": "DELETED"}
    aws("appmesh", "delete-virtual-router", "--mesh-name", mesh, "--virtual-router-name", "web-router")
    deleted = aws("appmesh", "delete-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1")
    assert deleted["virtualNode"]["status"] == {"status": "DELETED"}
    missing = aws("appmesh", "describe-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1",
                  check=False)
    assert missing.returncode != 0 and "NotFoundException" in missing.stderr
    aws("appmesh", "delete-mesh", "--mesh-name", mesh)


def test_bad_nodes_and_services_get_app_mesh_errors(dockyard: Dockyard):
    am = dockyard.client("appmesh")
    mesh = unique("badvn")
    with pytest.raises(ClientError) as e:
        am.create_virtual_node(meshName=mesh, virtualNodeName="n", spec={})
    assert error(e)[:2] == ("NotFoundException", 404)
    am.create_mesh(meshName=mesh)
    unchecked = unchecked_client(dockyard)
    listener = NODE["listeners"][0]
    bad_nodes = [
        ({**NODE, "listeners": [listener, listener]}, "at most one listener"),
        ({"listeners": [listener]}, "serviceDiscovery"),
        ({**NODE, "serviceDiscovery": {"awsCloudMap": {"namespaceName": " ", "serviceName": "web"}}},
         "namespaceName must not be empty"),
        ({**NODE, "serviceDiscovery": {"awsCloudMap": {"namespaceName": "shop.local", "serviceName": ""}}},
         ""),
        ({**NODE, "listeners": [{**listener, "portMapping": {"port": 70000, "protocol": "http"}}]}, ""),
        ({**NODE, "listeners": [{**listener, "portMapping": {"port": 8080, "protocol": "udp"}}]}, ""),
        ({**NODE, "listeners": [{**listener, "timeout": {"http": {"idle": {"unit": "h", "value": 1}}}}]}, ""),
        ({**NODE, "listeners": [{**listener, "timeout": {"http": {"idle": {"value": 1}}}}]},
         "unit (s or ms)"),
        ({**NODE, "listeners": [{**listener, "connectionPool": {"grpc": {"maxRequests": 1}}}]},
         "does not match"),
        ({**NODE, "listeners": [{**listener, "outlierDetection": {
            **listener["outlierDetection"], "maxEjectionPercent": 101}}]}, ""),
        ({**NODE, "serviceDiscovery": {}}, "exactly one of awsCloudMap, dns"),
    ]
    for spec, words in bad_nodes:
        with pytest.raises(ClientError) as e:
            unchecked.create_virtual_node(meshName=mesh, virtualNodeName="n", spec=spec)
        code, status, message = error(e)
        assert (code, status) == ("BadRequestException", 400), spec
        assert words in message, (message, words)
    assert am.list_virtual_nodes(meshName=mesh)["virtualNodes"] == []

    with pytest.raises(ClientError) as e:
        am.create_virtual_service(meshName=mesh, virtualServiceName="web.shop.local",
                                  spec={"provider": {"virtualNode": {"virtualNodeName": "nope"}}})
    assert error(e)[:2] == ("NotFoundException", 404) and "nope" in error(e)[2]
    with pytest.raises(ClientError) as e:
        am.create_virtual_service(meshName=mesh, virtualServiceName="web.shop.local",
                                  spec={"provider": {"virtualRouter": {"virtualRouterName": "nope"}}})
    assert error(e)[:2] == ("NotFoundException", 404)
    am.create_virtual_node(meshName=mesh, virtualNodeName="n", spec=NODE)
    with pytest.raises(ClientError) as e:
        am.create_virtual_node(meshName=mesh, virtualNodeName="n", spec=NODE)
    assert error(e)[:2] == ("ConflictException", 409)
    with pytest.raises(ClientError) as e:
        unchecked.create_virtual_service(meshName=mesh, virtualServiceName="s", spec={"provider": {
            "virtualNode": {"virtualNodeName": "n"}, "virtualRouter": {"virtualRouterName": "r"}}})
    assert error(e)[:2] == ("BadRequestException", 400)
    am.create_virtual_service(meshName=mesh, virtualServiceName="s",
                              spec={"provider": {"virtualNode": {"virtualNodeName": "n"}}})
    with pytest.raises(ClientError) as e:
        am.delete_virtual_node(meshName=mesh, virtualNodeName="n")
    assert error(e)[:2] == ("ResourceInUseException", 409)
    am.create_virtual_router(meshName=mesh, virtualRouterName="r", spec={})
    am.create_route(meshName=mesh, virtualRouterName="r", routeName="rt", spec={"httpRoute": {
        "match": {"prefix": "/"}, "action": {"weightedTargets": [{"virtualNode": "n", "weight": 1}]}}})
    am.delete_virtual_service(meshName=mesh, virtualServiceName="s")
    with pytest.raises(ClientError) as e:
        am.delete_virtual_node(meshName=mesh, virtualNodeName="n")
    assert error(e)[:2] == ("ResourceInUseException", 409) and "route" in error(e)[2]


def test_tags_on_mesh_arns_through_the_aws_cli(dockyard: Dockyard):
    mesh = unique("tag")
    aws = dockyard.aws
    aws("appmesh", "create-mesh", "--mesh-name", mesh)
    arn = aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "n",
              "--spec", "{}", "--tags", "key=team,value=shop")["virtualNode"]["metadata"]["arn"]
    aws("appmesh", "tag-resource", "--resource-arn", arn, "--tags", "key=team,value=web", "key=tier,value=1")
    aws("appmesh", "untag-resource", "--resource-arn", arn, "--tag-keys", "tier")
    assert aws("appmesh", "list-tags-for-resource", "--resource-arn", arn)["tags"] == [
        {"key": "team", "value": "web"}]
    missing = aws("appmesh", "list-tags-for-resource", "--resource-arn", arn + "-gone", check=False)
    assert missing.returncode != 0 and "NotFoundException" in missing.stderr
    am = dockyard.client("appmesh")
    with pytest.raises(ClientError) as e:
        am.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    assert error(e)[:2] == ("TooManyTagsException", 400)
