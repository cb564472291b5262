"""A canary through ``dockyard up`` with the real aws CLI: two ECS Service Connect services, ``web``
(task definition revision 1, answering ``web-v1``, alias ``web.<ns>:80``) and ``web-v2`` (revision 2,
no alias), a client service ``front``; App Mesh virtual nodes over their Cloud Map services and a
virtual service named like the alias, which takes the alias over; ``dockyard mesh route`` splits it.

From front's network namespace, N = 2,000 requests over curl's keep-alive put 10% +- 3 points on v2
at 90/10 (sd 0.67 points at this N, so +-3 is 4.5 sd), 50% +- 5 at 50/50 and all of them at 0/100.
The tight proof (10,000 requests, 10% +- 1.5 points, zero failures while shifting under load) is
at the Envoy level in ``test_mesh_canary.py``.

For the 90/10 -> 50/50 shift it prints the time from the CLI's answer to the moment every affected
sidecar (every one whose RDS snapshot version changed) has ACKed the new RDS version, read from
``DockyardMesh.GetMeshStatus``; no timing is asserted (docs/benchmarks.md keeps the observation).

Bad input: an escape RE2 does not know (``\\u0041``) and a header regex whose RE2 program is over
Envoy's size limit (``.{98}``, size 200 > 100) are refused by the API. A per-request timeout that
App Mesh's model allows (``DurationValue``: any long from 0) but that is past the range of
protobuf's ``Duration`` (315,576,000,001 s, over 10,000 years) passes the API and is NACKed by
every sidecar ("Duration out-of-range"), the NACK visible through ``ListMeshNacks`` and ``dockyard
mesh status``, and traffic keeps flowing on the last good routes.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from dockyard.client import Client
from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import service_tasks, wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_service_connect import (
    app_container,
    create,
    curl_alias,
    mesh_status,
    running,
    task_definition,
)

N = 2000


def node_spec(ns: str, service: str) -> str:
    return json.dumps({"listeners": [{"portMapping": {"port": 8080, "protocol": "http"}}],
                       "serviceDiscovery": {"awsCloudMap": {"namespaceName": ns, "serviceName": service}}})


def shares(app: str, alias: str) -> tuple[int, int]:
    """(v1, v2) answers of N keep-alive requests; every one must be answered."""
    bodies = [b.strip() for b in curl_alias(app, alias, N).splitlines()]
    v1, v2 = bodies.count("web-v1"), bodies.count("web-v2")
    assert v1 + v2 == N, f"{N - v1 - v2} of {N} requests failed: {sorted(set(bodies))[:5]}"
    return v1, v2


def rds(client: Client) -> dict[str, tuple[str, str]]:
    """Each sidecar's (Snapshot, Acked) RDS versions, straight from ``GetMeshStatus``."""
    sidecars = client.call("DockyardMesh", "GetMeshStatus", {})["Sidecars"]
    return {s["Node"]: (s["Snapshot"].get("RDS", ""), s["Acked"].get("RDS", "")) for s in sidecars}


def test_a_canary_through_app_mesh_and_service_connect(dockyard):
    ns = namespace(dockyard, f"can-{uuid.uuid4().hex[:6]}.local")["Name"]
    alias, mesh = f"web.{ns}", f"canary-{uuid.uuid4().hex[:6]}"
    ecs = dockyard.client("ecs")
    status_client = Client(dockyard.control_url, *dockyard.credentials)
    common = ["--data-dir", str(dockyard.data_dir), "--endpoint-url", dockyard.control_url]

    def route(*weights: str) -> None:
        proc = dockyard.cli("mesh", "route", alias, *weights, "--mesh", mesh, *common)
        assert proc.returncode == 0, proc.stderr

    with own_cluster(dockyard, "canary-e2e") as cluster:
        v1 = task_definition(dockyard, "canary-web", {"VERSION": "web-v1"})
        v2 = task_definition(dockyard, "canary-web", {"VERSION": "web-v2"})
        assert v1.endswith(":1") and v2.endswith(":2")
        create(dockyard, cluster, "web", v1, {"enabled": True, "namespace": ns, "services": [
            {"portName": "web", "discoveryName": "web", "clientAliases": [{"port": 80, "dnsName": alias}]}]})
        create(dockyard, cluster, "web-v2", v2, {"enabled": True, "namespace": ns, "services": [
            {"portName": "web", "discoveryName": "web-v2"}]})
        front = task_definition(dockyard, "canary-front", {"VERSION": "front"})
        create(dockyard, cluster, "front", front, {"enabled": True, "namespace": ns})
        for name in ("web", "web-v2", "front"):
            wait_for(lambda name=name: running(ecs, cluster, name), timeout=180,
                     what=f"{name}'s task running")
        [task] = service_tasks(ecs, cluster, "front")
        app = app_container(task["taskArn"])
        assert wait_for(lambda: curl_alias(app, alias).strip() == "web-v1", timeout=60,
                        what=f"{alias} through Service Connect")

        dockyard.aws("appmesh", "create-mesh", "--mesh-name", mesh)
        for node, service in (("web-v1", "web"), ("web-v2", "web-v2")):
            dockyard.aws("appmesh", "create-virtual-node", "--mesh-name", mesh, "--virtual-node-name", node,
                         "--spec", node_spec(ns, service))
        dockyard.aws("appmesh", "create-virtual-service", "--mesh-name", mesh,
                     "--virtual-service-name", alias,
                     "--spec", json.dumps({"provider": {"virtualNode": {"virtualNodeName": "web-v1"}}}))
        route("v1=90", "v2=10")
        shown = dockyard.aws("appmesh", "describe-route", "--mesh-name", mesh, "--virtual-router-name",
                             f"{alias}-router", "--route-name", f"{alias}-route")["route"]
        targets = shown["spec"]["httpRoute"]["action"]["weightedTargets"]
        assert {t["virtualNode"]: t["weight"] for t in targets} == {"web-v1": 90, "web-v2": 10}

        def settled() -> bool:
            return all(snap == ack for snap, ack in rds(status_client).values())

        wait_for(settled, timeout=30, what="every sidecar ACKed the 90/10 routes")
        wait_for(lambda: "web-v2" in curl_alias(app, alias, 50), timeout=30, what="v2 answering")
        _, got = shares(app, alias)
        print(f"90/10: {got} of {N} on v2 ({100 * got / N:.1f}%)")
        assert abs(100 * got / N - 10) <= 3

        before = rds(status_client)
        route("v1=50", "v2=50")
        answered = time.monotonic()
        affected: set[str] = set()
        while time.monotonic() - answered < 30:
            now = rds(status_client)
            affected = {n for n, (snap, _) in now.items() if snap != before.get(n, ("", ""))[0]}
            if affected and all(now[n][0] == now[n][1] for n in affected):
                break
            time.sleep(0.002)
        took = (time.monotonic() - answered) * 1000
        assert affected and all(rds(status_client)[n][1] for n in affected)
        print(f"50/50 shift: CLI answer -> last RDS ACK of {len(affected)} affected sidecars: {took:.1f} ms")
        _, got = shares(app, alias)
        print(f"50/50: {got} of {N} on v2 ({100 * got / N:.1f}%)")
        assert abs(100 * got / N - 50) <= 5

        route("v1=0", "v2=100")
        wait_for(settled, timeout=30, what="every sidecar ACKed the 0/100 routes")
        assert shares(app, alias) == (0, N)

        # bad input: RE2 has no \u escape, so the API refuses it before any sidecar sees it
        router, name = f"{alias}-router", f"{alias}-route"
        spec = dockyard.aws("appmesh", "describe-route", "--mesh-name", mesh, "--virtual-router-name", router,
                            "--route-name", name)["route"]["spec"]

        def with_header(regex: str) -> str:
            bad = json.loads(json.dumps(spec))
            bad["httpRoute"]["match"]["headers"] = [{"name": "x-canary", "match": {"regex": regex}}]
            return json.dumps(bad)

        for regex, words in (("\\u0041", "invalid escape sequence"), (".{98}", "program of size 200")):
            refused = dockyard.aws("appmesh", "update-route", "--mesh-name", mesh, "--virtual-router-name",
                                   router, "--route-name", name, "--spec", with_header(regex), check=False)
            assert refused.returncode != 0 and "BadRequestException" in refused.stderr, refused.stderr
            assert words in refused.stderr, refused.stderr

        # a timeout App Mesh's model allows but Envoy's Duration cannot hold passes the API and is
        # NACKed; traffic stays on 0/100
        nodes = set(rds(status_client))
        too_long = json.loads(json.dumps(spec))
        too_long["httpRoute"]["timeout"] = {"perRequest": {"unit": "s", "value": 315_576_000_001}}
        dockyard.aws("appmesh", "update-route", "--mesh-name", mesh, "--virtual-router-name", router,
                     "--route-name", name, "--spec", json.dumps(too_long))

        def nacked() -> list[dict[str, Any]] | None:
            got = status_client.call("DockyardMesh", "ListMeshNacks", {"Node": task["taskArn"]})["Nacks"]
            return got or None

        [nack, *_] = wait_for(nacked, timeout=30, what="front's sidecar NACKs the timeout")
        assert nack["TypeUrl"].endswith("RouteConfiguration") and "out-of-range" in nack["ErrorDetail"]
        rows = mesh_status(dockyard, *common)
        assert rows[task["taskArn"]]["LastNack"]["Version"] == nack["Version"]
        assert rows[task["taskArn"]]["Acked"]["RDS"] != nack["Version"]
        assert nodes <= set(rows)
        assert shares(app, alias) == (0, N)
