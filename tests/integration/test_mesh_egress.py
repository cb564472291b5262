"""The data path of a meshed task (docs/mesh.md) with a real Envoy in a network namespace made
for the test: iptables redirects 127.255.0.0/16 to the virtual outbound listener, which hands
each connection to the listener of its original destination (never bound), so the app in the
same namespace still listens on 0.0.0.0:80; an unrouted address is closed; a tcp route is
proxied; the ingress listener reaches the app on loopback."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess

import pytest

from mesh.model import Client, Endpoint, Ingress, MeshConfig, Node, Route, Service, Target
from mesh.snapshot import compute
from tests.support.envoy import NODE, Mesh, Netns, text, upstream

EGRESS = 15001
REDIRECT = ["iptables", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", "127.255.0.0/16",
            "-j", "REDIRECT", "--to-ports", str(EGRESS)]


def mesh_config() -> MeshConfig:
    return MeshConfig(
        services=(Service("web"), Service("api"), Service("db")),
        routes=(Route("web.shop.local", 80, (Target("web", 1),), address="127.255.0.3"),
                Route("api.shop.local", 80, (Target("api", 1),), address="127.255.0.4"),
                Route("db.shop.local", 9000, (Target("db", 1),), protocol="tcp", address="127.255.0.5")),
        clients=(Client(NODE, ("web.shop.local", "api.shop.local", "db.shop.local"),
                        ingress=(Ingress("app", 8000, 80), Ingress("raw", 8001, 80, protocol="tcp")),
                        egress_port=EGRESS),))


async def curl(ns: Netns, *args: str) -> subprocess.CompletedProcess:
    """curl inside the namespace (in a thread: the upstreams run on this event loop)."""
    return await asyncio.to_thread(subprocess.run, [*ns.exec, "curl", "-sS", "--max-time", "5", *args],
                                   capture_output=True, text=True, timeout=30)


@pytest.fixture
async def netns():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.fail("this test needs root and iproute2 (ip netns)")
    ns = Netns()
    try:
        yield ns.create()
    finally:
        ns.delete()


async def test_redirected_aliases_reach_their_upstreams_and_the_app_keeps_port_80(netns, tmp_path):
    netns.run(*REDIRECT)
    assert "REDIRECT" in netns.run(REDIRECT[0], "-t", "nat", "-S", "OUTPUT").stdout
    names = ("web", "api", "db")
    runners = [await upstream(text(name), host=netns.host_ip) for name in names]
    eps = {name: [Endpoint(netns.host_ip, port)] for name, (_, port) in zip(names, runners, strict=True)}
    mesh = await Mesh(tmp_path, xds_host=netns.host_ip, admin_host=netns.ns_ip, prefix=netns.exec).start()
    app = None
    try:
        snap = compute(mesh_config(), eps, Node(NODE))
        await mesh.push(snap)
        await mesh.listening(f"127.0.0.1:{EGRESS}")
        await mesh.listening("0.0.0.0:8000")
        (tmp_path / "www").mkdir()
        (tmp_path / "www" / "index.html").write_text("app")
        # The app binds 0.0.0.0:80 in the same namespace as Envoy's 127.255.0.3:80 listener.
        app = subprocess.Popen([*netns.exec, "python3", "-m", "http.server", "80", "--bind", "0.0.0.0",
                                "--directory", str(tmp_path / "www")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(100):
            if (await curl(netns, "http://127.0.0.1:80/")).stdout == "app":
                break
            await asyncio.sleep(0.1)
        assert app.poll() is None and (await curl(netns, "http://127.0.0.1:80/")).stdout == "app"

        got = await curl(netns, "-H", "Host: web.shop.local", "http://127.255.0.3:80/")
        assert (got.returncode, got.stdout) == (0, "web"), got.stderr
        # as the app calls it: the alias resolves (/etc/hosts in a task) to its address
        got = await curl(netns, "--resolve", "api.shop.local:80:127.255.0.4", "http://api.shop.local/")
        assert (got.returncode, got.stdout) == (0, "api"), got.stderr
        got = await curl(netns, "http://127.255.0.5:9000/")  # a tcp route: the connection is proxied
        assert (got.returncode, got.stdout) == (0, "db"), got.stderr
        # an alias address with no listener: the virtual outbound listener has no filter chain
        got = await curl(netns, "-H", "Host: web.shop.local", "http://127.255.0.9:80/")
        assert got.returncode != 0 and got.stdout == ""
        # the wrong virtual host on a routed address: Envoy's 404
        got = await curl(netns, "-o", "/dev/null", "-w", "%{http_code}", "-H", "Host: other", "http://127.255.0.3/")
        assert got.stdout == "404"
        # ingress: from outside the namespace, port 8000 reaches the app on 127.0.0.1:80
        for port in (8000, 8001):  # HTTP, and tcp (proxied connection)
            proc = await asyncio.create_subprocess_exec("curl", "-sS", "--max-time", "5",
                                                        f"http://{netns.ns_ip}:{port}/",
                                                        stdout=asyncio.subprocess.PIPE)
            out, _ = await proc.communicate()
            assert out.decode() == "app", port
        assert mesh.stat("cluster.local_app.upstream_rq_total") >= 1
        assert mesh.stat("cluster.local_raw.upstream_cx_total") >= 1
        assert mesh.stat("cluster.web.upstream_rq_total") == 1
    finally:
        if app is not None:
            app.terminate()
            app.wait(10)
        await mesh.stop()
        for runner, _ in runners:
            await runner.cleanup()
