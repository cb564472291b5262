"""App Mesh virtual gateways through the real ``aws appmesh`` CLI, a real gateway Envoy on the host
and real ECS tasks behind it.

The API test needs no task: the lifecycle of a gateway and its routes (ARNs, versions, paging,
DELETED answers) and the bad inputs, each refused with App Mesh's error and changing nothing.

The end-to-end test starts two Service Connect services (``web`` answering ``web-v1``, ``web-v2``
answering ``web-v2``, both registered in Cloud Map, no client alias), a virtual router splitting
``web.<ns>`` 90/10 between their virtual nodes, and a gateway whose routes reach it from the host:
N = 200 requests through the gateway put 10 % +- 6 points on v2 (sd 2.1 points at this N, so
about 3 sd), a hostname match sends everything to a virtual service of v2 alone, the default
prefix rewrite turns ``/shop/index.html`` into ``/index.html`` (200), a ``DISABLED`` one keeps
``/raw/index.html`` (the app's own 404, with ``x-envoy-upstream-service-time``), and a path no
gateway route matches is Envoy's 404 (no upstream).
"""

from __future__ import annotations

import json
import subprocess
import uuid

from dockyard.client import Client
from tests.integration.test_appmesh_meshes import unchecked_client
from tests.integration.test_appmesh_routes import error
from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_edge_alb import edge_port
from tests.integration.test_mesh_canary_e2e import node_spec
from tests.integration.test_mesh_service_connect import create, running, task_definition
from tests.support.server import Dockyard

N = 200


def gateway_spec(port: int) -> dict:
    return {
        "listeners": [
            {
                "portMapping": {"port": port, "protocol": "http"},
                "healthCheck": {
                    "protocol": "http",
                    "path": "/",
                    "healthyThreshold": 2,
                    "unhealthyThreshold": 2,
                    "intervalMillis": 5000,
                    "timeoutMillis": 2000,
                },
            }
        ]
    }


def http_gateway_route(
    service: str, match: dict, rewrite: dict | None = None, priority: int | None = None
) -> dict:
    action: dict = {"target": {"virtualService": {"virtualServiceName": service}}}
    if rewrite is not None:
        action["rewrite"] = rewrite
    spec: dict = {"httpRoute": {"match": match, "action": action}}
    if priority is not None:
        spec["priority"] = priority
    return spec


def curl(*args: str) -> subprocess.CompletedProcess:
    """The host's curl (URLs among ``args``: several share one keep-alive connection)."""
    return subprocess.run(
        ["curl", "-s", "--max-time", "30", *args], capture_output=True, text=True, timeout=120
    )


def test_gateway_and_gateway_route_lifecycle_and_bad_inputs(dockyard: Dockyard):
    mesh, port, other = f"gw-{uuid.uuid4().hex[:6]}", edge_port(), edge_port()
    am = dockyard.client("appmesh")
    raw = unchecked_client(dockyard)
    dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
    dockyard.aws(
        "appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1", "--spec", "{}"
    )
    dockyard.aws(
        "appmesh",
        "create-virtual-service",
        "--mesh-name",
        mesh,
        "--virtual-service-name",
        "web.local",
        "--spec",
        json.dumps({"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}),
    )
    gw = dockyard.aws(
        "appmesh",
        "create-virtual-gateway",
        "--mesh-name",
        mesh,
        "--virtual-gateway-name",
        "gw",
        "--spec",
        json.dumps(gateway_spec(port)),
    )["virtualGateway"]
    assert gw["metadata"]["arn"] == f"arn:aws:appmesh:us-east-1:000000000000:mesh/{mesh}/virtualGateway/gw"
    assert gw["status"] == {"status": "ACTIVE"} and gw["virtualGatewayName"] == "gw"
    route = dockyard.aws(
        "appmesh",
        "create-gateway-route",
        "--mesh-name",
        mesh,
        "--virtual-gateway-name",
        "gw",
        "--gateway-route-name",
        "web",
        "--spec",
        json.dumps(http_gateway_route("web.local", {"prefix": "/"})),
    )["gatewayRoute"]
    assert route["metadata"]["arn"].endswith(f"mesh/{mesh}/virtualGateway/gw/gatewayRoute/web")
    assert route["gatewayRouteName"] == "web" and route["virtualGatewayName"] == "gw"
    listed = dockyard.aws(
        "appmesh", "list-gateway-routes", "--mesh-name", mesh, "--virtual-gateway-name", "gw"
    )
    assert [(r["gatewayRouteName"], r["virtualGatewayName"]) for r in listed["gatewayRoutes"]] == [
        ("web", "gw")
    ]
    assert [
        g["virtualGatewayName"]
        for g in dockyard.aws("appmesh", "list-virtual-gateways", "--mesh-name", mesh)["virtualGateways"]
    ] == ["gw"]
    updated = dockyard.aws(
        "appmesh",
        "update-gateway-route",
        "--mesh-name",
        mesh,
        "--virtual-gateway-name",
        "gw",
        "--gateway-route-name",
        "web",
        "--spec",
        json.dumps(
            http_gateway_route(
                "web.local",
                {"prefix": "/web/", "hostname": {"suffix": "example.com"}},
                {"prefix": {"value": "/"}, "hostname": {"defaultTargetHostname": "DISABLED"}},
                priority=3,
            )
        ),
    )["gatewayRoute"]
    assert updated["metadata"]["version"] == 2 and updated["spec"]["priority"] == 3

    def refused(call, *args, **kwargs) -> tuple[str, int]:
        try:
            call(*args, **kwargs)
        except Exception as e:  # botocore's ClientError
            return error(type("E", (), {"value": e})())
        raise AssertionError("accepted")

    before = (
        am.list_virtual_gateways(meshName=mesh)["virtualGateways"],
        am.describe_gateway_route(meshName=mesh, virtualGatewayName="gw", gatewayRouteName="web")[
            "gatewayRoute"
        ]["metadata"]["version"],
    )
    bad_routes = {
        "unknown virtual service": (
            http_gateway_route("nope.local", {"prefix": "/"}),
            "NotFoundException",
            404,
        ),
        "prefix without /": (http_gateway_route("web.local", {"prefix": "web"}), "BadRequestException", 400),
        "prefix and path": (
            http_gateway_route("web.local", {"prefix": "/", "path": {"exact": "/a"}}),
            "BadRequestException",
            400,
        ),
        "no match at all": (http_gateway_route("web.local", {"method": "GET"}), "BadRequestException", 400),
        "bad regex": (http_gateway_route("web.local", {"path": {"regex": "(a"}}), "BadRequestException", 400),
        "both hostnames": (
            http_gateway_route(
                "web.local", {"prefix": "/", "hostname": {"exact": "a.example.com", "suffix": "example.com"}}
            ),
            "BadRequestException",
            400,
        ),
        "prefix rewrite of a path": (
            http_gateway_route("web.local", {"path": {"exact": "/a"}}, {"prefix": {"value": "/b/"}}),
            "BadRequestException",
            400,
        ),
        "two kinds": (
            {
                **http_gateway_route("web.local", {"prefix": "/"}),
                "http2Route": http_gateway_route("web.local", {"prefix": "/"})["httpRoute"],
            },
            "BadRequestException",
            400,
        ),
    }
    for what, (spec, code, status) in bad_routes.items():
        got = refused(
            raw.create_gateway_route,
            meshName=mesh,
            virtualGatewayName="gw",
            gatewayRouteName="bad",
            spec=spec,
        )
        assert got == (code, status), what
    # the aws CLI too: its error names App Mesh's exception
    proc = dockyard.aws(
        "appmesh",
        "create-gateway-route",
        "--mesh-name",
        mesh,
        "--virtual-gateway-name",
        "gw",
        "--gateway-route-name",
        "bad",
        "--spec",
        json.dumps(http_gateway_route("nope.local", {"prefix": "/"})),
        check=False,
    )
    assert proc.returncode != 0 and "NotFoundException" in proc.stderr and "nope.local" in proc.stderr
    assert refused(
        raw.create_gateway_route,
        meshName=mesh,
        virtualGatewayName="gw",
        gatewayRouteName="web",
        spec=http_gateway_route("web.local", {"prefix": "/"}),
    ) == ("ConflictException", 409)
    assert refused(
        raw.create_gateway_route,
        meshName=mesh,
        virtualGatewayName="nogw",
        gatewayRouteName="x",
        spec=http_gateway_route("web.local", {"prefix": "/"}),
    ) == ("NotFoundException", 404)
    assert refused(
        raw.create_virtual_gateway, meshName=mesh, virtualGatewayName="gw", spec=gateway_spec(other)
    ) == ("ConflictException", 409)
    assert refused(
        raw.create_virtual_gateway, meshName=mesh, virtualGatewayName="gw2", spec=gateway_spec(port)
    ) == ("ConflictException", 409)  # the port is gw's
    assert refused(
        raw.create_virtual_gateway, meshName=mesh, virtualGatewayName="gw2", spec=gateway_spec(80)
    ) == ("BadRequestException", 400)  # outside edge_ports
    no_path = gateway_spec(other)
    del no_path["listeners"][0]["healthCheck"]["path"]
    assert refused(raw.create_virtual_gateway, meshName=mesh, virtualGatewayName="gw2", spec=no_path) == (
        "BadRequestException",
        400,
    )
    assert refused(
        raw.create_virtual_gateway,
        meshName=mesh,
        virtualGatewayName="gw2",
        spec={"listeners": [{"portMapping": {"port": other, "protocol": "tcp"}}]},
    ) == ("BadRequestException", 400)  # the model's enum: http, http2, grpc
    assert refused(raw.delete_virtual_gateway, meshName=mesh, virtualGatewayName="gw") == (
        "ResourceInUseException",
        409,
    )
    assert refused(raw.delete_virtual_service, meshName=mesh, virtualServiceName="web.local") == (
        "ResourceInUseException",
        409,
    )
    assert refused(
        raw.describe_gateway_route, meshName=mesh, virtualGatewayName="gw", gatewayRouteName="bad"
    ) == ("NotFoundException", 404)
    after = (
        am.list_virtual_gateways(meshName=mesh)["virtualGateways"],
        am.describe_gateway_route(meshName=mesh, virtualGatewayName="gw", gatewayRouteName="web")[
            "gatewayRoute"
        ]["metadata"]["version"],
    )
    assert after == before
    assert [
        r["gatewayRouteName"]
        for r in am.list_gateway_routes(meshName=mesh, virtualGatewayName="gw")["gatewayRoutes"]
    ] == ["web"]

    deleted = dockyard.aws(
        "appmesh",
        "delete-gateway-route",
        "--mesh-name",
        mesh,
        "--virtual-gateway-name",
        "gw",
        "--gateway-route-name",
        "web",
    )["gatewayRoute"]
    assert deleted["status"] == {"status": "DELETED"}
    gone = dockyard.aws(
        "appmesh", "delete-virtual-gateway", "--mesh-name", mesh, "--virtual-gateway-name", "gw"
    )["virtualGateway"]
    assert gone["status"] == {"status": "DELETED"}
    dockyard.aws(
        "appmesh", "delete-virtual-service", "--mesh-name", mesh, "--virtual-service-name", "web.local"
    )
    dockyard.aws("appmesh", "delete-virtual-node", "--mesh-name", mesh, "--virtual-node-name", "web-v1")
    dockyard.aws("appmesh", "delete-mesh", "--mesh-name", mesh)


def test_a_gateway_brings_outside_traffic_to_a_canary_inside_the_mesh(dockyard: Dockyard):
    ns = namespace(dockyard, f"gw-{uuid.uuid4().hex[:6]}.local")["Name"]
    mesh, port = f"gw-{uuid.uuid4().hex[:6]}", edge_port()
    ecs = dockyard.client("ecs")
    url = f"http://127.0.0.1:{port}"

    def am(*args: str) -> dict:
        return dockyard.aws("appmesh", *args, "--mesh-name", mesh)

    with own_cluster(dockyard, "gateway") as cluster:
        v1 = task_definition(dockyard, "gateway-web", {"VERSION": "web-v1"})
        v2 = task_definition(dockyard, "gateway-web", {"VERSION": "web-v2"})
        for name, td in (("web", v1), ("web-v2", v2)):
            create(
                dockyard,
                cluster,
                name,
                td,
                {"enabled": True, "namespace": ns, "services": [{"portName": "web", "discoveryName": name}]},
            )
        dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
        for node, service in (("web-v1", "web"), ("web-v2", "web-v2")):
            am("create-virtual-node", "--virtual-node-name", node, "--spec", node_spec(ns, service))
        am(
            "create-virtual-router",
            "--virtual-router-name",
            "web",
            "--spec",
            json.dumps({"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}]}),
        )
        am(
            "create-route",
            "--virtual-router-name",
            "web",
            "--route-name",
            "canary",
            "--spec",
            json.dumps(
                {
                    "httpRoute": {
                        "match": {"prefix": "/"},
                        "action": {
                            "weightedTargets": [
                                {"virtualNode": "web-v1", "weight": 90},
                                {"virtualNode": "web-v2", "weight": 10},
                            ]
                        },
                    }
                }
            ),
        )
        am(
            "create-virtual-service",
            "--virtual-service-name",
            f"web.{ns}",
            "--spec",
            json.dumps({"provider": {"virtualRouter": {"virtualRouterName": "web"}}}),
        )
        am(
            "create-virtual-service",
            "--virtual-service-name",
            f"v2.{ns}",
            "--spec",
            json.dumps({"provider": {"virtualNode": {"virtualNodeName": "web-v2"}}}),
        )
        am(
            "create-virtual-gateway",
            "--virtual-gateway-name",
            "ingress",
            "--spec",
            json.dumps(gateway_spec(port)),
        )
        routes = {
            "by-host": http_gateway_route(
                f"v2.{ns}", {"prefix": "/", "hostname": {"exact": "v2.example.com"}}, priority=0
            ),
            "shop": http_gateway_route(f"web.{ns}", {"prefix": "/shop/"}, priority=1),
            "raw": http_gateway_route(
                f"web.{ns}", {"prefix": "/raw/"}, {"prefix": {"defaultPrefix": "DISABLED"}}, priority=2
            ),
        }
        for name, spec in routes.items():
            am(
                "create-gateway-route",
                "--virtual-gateway-name",
                "ingress",
                "--gateway-route-name",
                name,
                "--spec",
                json.dumps(spec),
            )
        for name in ("web", "web-v2"):
            wait_for(
                lambda name=name: running(ecs, cluster, name), timeout=180, what=f"{name}'s task running"
            )

        def answers(count: int, *args: str, path: str = "/shop/") -> list[str]:
            return curl(*args, *[f"{url}{path}"] * count).stdout.split()

        wait_for(
            lambda: set(answers(40)) == {"web-v1", "web-v2"},
            timeout=60,
            what="both versions answering through the gateway",
        )
        bodies = answers(N)
        assert len(bodies) == N and set(bodies) <= {"web-v1", "web-v2"}, bodies[:5]
        share = 100 * bodies.count("web-v2") / N
        print(f"through the gateway at 90/10: {bodies.count('web-v2')} of {N} on v2 ({share:.1f}%)")
        assert abs(share - 10) <= 6

        assert set(answers(20, "-H", "Host: v2.example.com", path="/")) == {
            "web-v2"
        }  # hostname match, priority 0
        assert set(answers(20, "-H", "Host: V2.Example.com:8443", path="/")) == {
            "web-v2"
        }  # any case, any port
        page = curl(f"{url}/shop/index.html", "-o", "/dev/null", "-w", "%{http_code}")
        assert page.stdout == "200"  # /shop/ rewritten to /
        kept = curl(f"{url}/raw/index.html", "-D", "-", "-o", "/dev/null")
        assert kept.stdout.startswith("HTTP/1.1 404") and "x-envoy-upstream-service-time" in kept.stdout
        unrouted = curl(f"{url}/elsewhere", "-D", "-", "-o", "/dev/null")
        assert (
            unrouted.stdout.startswith("HTTP/1.1 404")
            and "x-envoy-upstream-service-time" not in unrouted.stdout
        )

        # the gateway's Envoy is a node of the mesh, connected, with every type ACKed
        status = Client(dockyard.control_url, *dockyard.credentials)
        rows = {s["Node"]: s for s in status.call("DockyardMesh", "GetMeshStatus", {})["Sidecars"]}
        row = rows[f"mesh/{mesh}/virtualGateway/ingress"]
        assert row["Meshed"] and row["Connected"] and row["Ready"], row

        # a bad update changes nothing; a new port moves the listener (LDS, the same Envoy)
        bad = dockyard.aws(
            "appmesh",
            "update-virtual-gateway",
            "--mesh-name",
            mesh,
            "--virtual-gateway-name",
            "ingress",
            "--spec",
            json.dumps(gateway_spec(80)),
            check=False,
        )
        assert bad.returncode != 0 and "BadRequestException" in bad.stderr
        assert set(answers(5)) <= {"web-v1", "web-v2"} and len(answers(5)) == 5
        moved = edge_port()
        am(
            "update-virtual-gateway",
            "--virtual-gateway-name",
            "ingress",
            "--spec",
            json.dumps(gateway_spec(moved)),
        )
        wait_for(
            lambda: curl(f"http://127.0.0.1:{moved}/shop/").stdout.strip() in ("web-v1", "web-v2"),
            timeout=30,
            what="the gateway on its new port",
        )
        wait_for(lambda: curl(url).returncode != 0, timeout=30, what="the old port closed")

        # the gateway's Envoy goes with its gateway
        for name in routes:
            am("delete-gateway-route", "--virtual-gateway-name", "ingress", "--gateway-route-name", name)
        am("delete-virtual-gateway", "--virtual-gateway-name", "ingress")
        wait_for(
            lambda: curl(f"http://127.0.0.1:{moved}/").returncode != 0,
            timeout=30,
            what="the gateway's listener closed",
        )


async def test_a_leftover_gateway_envoy_is_stopped_and_another_process_is_not(tmp_path):
    import asyncio
    import sys

    from mesh.gateways import _stop_leftover

    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    leftover = subprocess.Popen([*sleeper, str(tmp_path / "envoy.json")])
    other = subprocess.Popen(sleeper)
    try:
        (tmp_path / "envoy.pid").write_text(str(other.pid))
        await _stop_leftover(tmp_path)
        assert other.poll() is None  # not started from this directory: left alone
        (tmp_path / "envoy.pid").write_text(str(leftover.pid))
        stopping = asyncio.create_task(_stop_leftover(tmp_path))
        assert await asyncio.to_thread(leftover.wait, 10) == -15
        await stopping
    finally:
        for proc in (leftover, other):
            proc.kill()
            proc.wait()
