"""The sidecar's two pieces with the real Envoy: bootstraps from ``mesh.bootstrap`` pass
``envoy --mode validate``, and ``dockyard/envoy:<version>`` (``mesh.sidecar``, built locally,
never pulled) runs a sidecar that connects to a Dockyard ADS server over its generated
bootstrap and gets its cluster, seen through its loopback admin interface (on the host
network, and on the default bridge reaching the server at the bridge's gateway)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import grpc
import pytest

from mesh.bootstrap import bootstrap
from mesh.cache import SnapshotCache
from mesh.model import Client, Endpoint, MeshConfig, Node, Route, Service, Target
from mesh.server import AdsServer, add_to_server
from mesh.sidecar import DIGEST_LABEL, ensure_image, envoy_binary, file_digest
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ROUTE, compute
from tests.support.images import busybox_image
from tests.support.server import free_port

ARN = "arn:aws:ecs:us-east-1:000000000000:task/default/5f0c1e0a2b3c4d5e"


def validate(tmp_path: Path, boot: dict) -> subprocess.CompletedProcess:
    path = tmp_path / f"{uuid.uuid4().hex}.json"
    path.write_text(json.dumps(boot))
    return subprocess.run([str(envoy_binary()), "--mode", "validate", "-c", str(path)],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("kw", [{}, {"delta": True}, {"xds_host": "control.dockyard.internal"},
                                {"keepalive_interval": 5, "keepalive_timeout": 1, "connect_timeout": 0.25}])
def test_generated_bootstraps_pass_envoy_validation(tmp_path, kw):
    args = {"xds_host": "127.0.0.1", **kw}
    out = validate(tmp_path, bootstrap(ARN, "web", xds_port=18000, admin_port=19901, **args))
    assert out.returncode == 0, out.stderr[-2000:]
    assert "OK" in out.stdout + out.stderr


def test_envoy_validation_can_fail(tmp_path):
    boot = bootstrap(ARN, "web", "127.0.0.1", 18000, 19901)
    boot["dynamic_resources"]["ads_config"]["api_type"] = "NOT_A_TYPE"
    assert validate(tmp_path, boot).returncode != 0


def test_building_the_image_is_idempotent_and_labelled_with_the_binary_digest():
    first = ensure_image()
    again = ensure_image()
    assert again.tag == first.tag and not again.built
    assert first.digest == file_digest(envoy_binary())
    labels = json.loads(subprocess.run(["docker", "image", "inspect", "--format", "{{json .Config.Labels}}",
                                        first.tag], capture_output=True, text=True, check=True).stdout)
    assert labels[DIGEST_LABEL] == first.digest
    out = subprocess.run(["docker", "run", "--rm", first.tag, "--version"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0 and first.tag.split(":")[1] in out.stdout


def admin_get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
        return r.read().decode()


def admin_get_in(container: str, port: int, path: str) -> str:
    """Read the admin interface from inside ``container``'s network namespace (busybox wget)."""
    out = subprocess.run(["docker", "run", "--rm", "--network", f"container:{container}", busybox_image(),
                          "wget", "-q", "-O", "-", f"http://127.0.0.1:{port}{path}"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def bridge_gateway() -> str:
    return subprocess.run(["docker", "network", "inspect", "bridge", "--format",
                           "{{(index .IPAM.Config 0).Gateway}}"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("network", ["host", "bridge"])
async def test_a_sidecar_container_gets_its_cluster_from_dockyards_ads_server(tmp_path, network):
    image = ensure_image().tag
    xds_host = "127.0.0.1" if network == "host" else bridge_gateway()
    cache = SnapshotCache()
    ads = AdsServer(cache)
    server = grpc.aio.server()
    add_to_server(server, ads)
    xds_port = server.add_insecure_port(f"{xds_host}:0")
    await server.start()
    admin, egress, upstream = free_port(), free_port(), free_port()
    config = MeshConfig(services=(Service("web-v1"),),
                        routes=(Route("web.shop.local", egress, (Target("web-v1", 1),)),),
                        clients=(Client(ARN, ("web.shop.local",)),))
    snap = compute(config, {"web-v1": [Endpoint("127.0.0.1", upstream)]}, Node(ARN))
    cache.set_snapshot(ARN, snap)
    boot = tmp_path / "envoy.json"
    boot.write_text(json.dumps(bootstrap(ARN, "web", xds_host, xds_port, admin)))
    boot.chmod(0o644)
    name = f"dockyard-test-sidecar-{uuid.uuid4().hex[:8]}"
    subprocess.run(["docker", "run", "-d", "--name", name, "--network", network,
                    "-v", f"{boot}:/etc/envoy/envoy.json:ro", image,
                    "-c", "/etc/envoy/envoy.json", "--disable-hot-restart", "--concurrency", "1",
                    "-l", "warning"], check=True, capture_output=True, timeout=60)
    try:
        deadline = time.monotonic() + 60
        while True:
            status = ads.status().get(ARN)
            if status and all(status["acked"].get(t) == snap.versions[t]
                              for t in (CLUSTER, ENDPOINT, LISTENER, ROUTE)):
                break
            if time.monotonic() > deadline:
                logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
                raise AssertionError(f"the sidecar never ACKed: {status}\n{logs[-2000:]}")
            await asyncio.sleep(0.1)
        if network == "host":
            get = admin_get
        else:
            def get(port: int, path: str) -> str:
                return admin_get_in(name, port, path)
            with pytest.raises(OSError):  # loopback only: not reachable from the host
                admin_get(admin, "/ready")
        clusters = await asyncio.to_thread(get, admin, "/clusters")
        assert f"web-v1::127.0.0.1:{upstream}::" in clusters
        info = json.loads(await asyncio.to_thread(get, admin, "/server_info"))
        assert info["node"]["id"] == ARN and info["node"]["cluster"] == "web"
        assert info["state"] == "LIVE"
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, timeout=60)
        await server.stop(0)
