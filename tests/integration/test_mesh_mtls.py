"""mTLS between sidecars, end to end through a ``dockyard up`` of the module's own (the real aws
CLI, real tasks, real Envoy): Service Connect's ``tls`` on ``web`` (naming Dockyard's mesh CA)
and an App Mesh virtual node for web's tasks whose listener is STRICT and allows only front's
SPIFFE id. The certificates live 6 s (``DOCKYARD_MESH_CERT_LIFETIME``), so every sidecar's is
replaced over SDS every 3 s throughout the module.

The probes run in front's network namespace (the host's python, ``nsenter``): plaintext and
TLS connections straight to web's ingress (its sidecar's listener), TLS with client
certificates the test has the mesh CA (in the data dir) sign for front's or another SPIFFE id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mesh.ca import MeshCA
from tests.integration.test_ecs_service_connect import namespace
from tests.integration.test_ecs_services import wait_for
from tests.integration.test_ecs_tasks import own_cluster
from tests.integration.test_mesh_failover import Load, Mesh
from tests.integration.test_mesh_service_connect import app_container, create, running, task_definition
from tests.support.server import Dockyard

LIFETIME = 6  # seconds: renewed every 3

# Run in front's namespace: ``one MODE ADDRESS PORT [CERT KEY CA]`` makes one request (plain, or
# TLS with that client certificate, "-" for none) and prints how it ended; ``loop ADDRESS PORT
# CERT KEY CA STOP`` makes one new TLS connection per request until STOP exists and prints the
# counts and the distinct server certificates seen (each checked against the CA bundle,
# expiry included).
PROBE = r"""
import hashlib, http.client, json, os, socket, ssl, sys, time
mode, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

def context(cert, key, ca):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    if cert != "-":
        ctx.load_cert_chain(cert, key)
    return ctx

def request(ctx):
    sock = socket.create_connection((address, port), timeout=5)
    if ctx is not None:
        sock = ctx.wrap_socket(sock)
    conn = http.client.HTTPConnection(address, port, timeout=5)
    conn.sock = sock
    conn.request("GET", "/", headers={"Host": "web"})
    resp = conn.getresponse()
    body = resp.read().decode().strip()
    served = hashlib.sha256(sock.getpeercert(binary_form=True)).hexdigest() if ctx is not None else ""
    conn.close()
    return resp.status, body, served

if mode in ("plain", "tls"):
    try:
        status, body, _ = request(None if mode == "plain" else context(*sys.argv[4:7]))
        print(json.dumps({"answered": status, "body": body}))
    except Exception as e:
        print(json.dumps({"refused": f"{type(e).__name__}: {e}"}))
else:
    ctx, stop = context(*sys.argv[4:7]), sys.argv[7]
    ok = failed = 0
    errors, served = [], set()
    while not os.path.exists(stop):
        try:
            status, body, cert = request(ctx)
            served.add(cert)
            if status == 200:
                ok += 1
            else:
                failed += 1
                errors.append(f"{status} {body[:60]}")
        except Exception as e:
            failed += 1
            errors.append(f"{time.time():.3f} {type(e).__name__}: {e}")
        time.sleep(0.01)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:20], "served": len(served)}))
"""


@dataclass
class Tls:
    mesh: Mesh
    web: str  # web's task's address (awsvpc)
    ingress: int  # web's ingress port
    ca: MeshCA
    front_id: str
    trust_domain_prefix: str  # spiffe://dockyard.local/ns/<namespace>/sa/

    def files(self, identity: str) -> tuple[str, str, str]:
        """A client certificate the mesh CA signs for ``identity`` (5 minutes), its key and the
        CA bundle, as files."""
        cred = self.ca.issue(identity, 300)
        base = self.mesh.tmp / uuid.uuid4().hex[:8]
        paths = []
        for suffix, text in (("crt", cred.certificate), ("key", cred.key), ("ca", self.ca.bundle)):
            path = base.with_suffix(f".{suffix}")
            path.write_text(text)
            paths.append(str(path))
        return paths[0], paths[1], paths[2]

    def probe(self, *args: str) -> dict[str, Any]:
        proc = subprocess.run(["nsenter", "-t", self.mesh.pid, "-n", sys.executable, "-c", PROBE, *args],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def sidecar_admin(pid: str, path: str) -> str:
    """``http://127.0.0.1:15000<path>`` of the Envoy in the network namespace of ``pid``."""
    code = ("import urllib.request; print(urllib.request.urlopen("
            f"'http://127.0.0.1:15000{path}', timeout=5).read().decode())")
    return subprocess.run(["nsenter", "-t", pid, "-n", sys.executable, "-c", code], capture_output=True,
                          text=True, check=True).stdout


def pid_of(container: str) -> str:
    return subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", container], capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Tls]:
    tmp = tmp_path_factory.mktemp("mtls")
    server = Dockyard(tmp / "data", env={"DOCKYARD_MESH_CERT_LIFETIME": str(LIFETIME)})
    server.start()
    try:
        ns = namespace(server, f"tls-{uuid.uuid4().hex[:6]}.local")
        alias, region, account = f"web.{ns['Name']}", *ns["Arn"].split(":")[3:5]
        prefix = f"spiffe://dockyard.local/ns/{ns['Name']}/sa/"
        ca_arn = f"arn:aws:acm-pca:{region}:{account}:certificate-authority/dockyard-mesh"
        server.aws("appmesh", "create-mesh", "--mesh-name", "tls")
        listener = {"portMapping": {"port": 8080, "protocol": "http"}, "tls": {
            "mode": "STRICT", "certificate": {"sds": {"secretName": "mesh"}},
            "validation": {"trust": {"sds": {"secretName": "mesh"}},
                           "subjectAlternativeNames": {"match": {"exact": [prefix + "front"]}}}}}
        server.aws("appmesh", "create-virtual-node", "--mesh-name", "tls", "--virtual-node-name", "web",
                   "--spec", json.dumps({"listeners": [listener], "serviceDiscovery": {
                       "awsCloudMap": {"namespaceName": ns["Name"], "serviceName": "web"}}}))
        server.aws("appmesh", "create-virtual-service", "--mesh-name", "tls", "--virtual-service-name", alias,
                   "--spec", json.dumps({"provider": {"virtualNode": {"virtualNodeName": "web"}}}))
        ecs = server.client("ecs")
        with own_cluster(server, "mesh-tls") as cluster:
            web = task_definition(server, "tls-web", {"VERSION": "web-v1"})
            entry = {"portName": "web", "discoveryName": "web",
                     "clientAliases": [{"port": 80, "dnsName": alias}],
                     "tls": {"issuerCertificateAuthority": {"awsPcaAuthorityArn": ca_arn}}}
            create(server, cluster, "web", web,
                   {"enabled": True, "namespace": ns["Name"], "services": [entry]})
            [web_task] = wait_for(lambda: running(ecs, cluster, "web"), timeout=180,
                                  what="web's task running")
            front = task_definition(server, "tls-front", {"VERSION": "front"})
            create(server, cluster, "front", front, {"enabled": True, "namespace": ns["Name"]})
            [task] = wait_for(lambda: running(ecs, cluster, "front"), timeout=180,
                              what="front's task running")
            app = app_container(task["taskArn"])
            hosts = subprocess.run(["docker", "exec", app, "cat", "/etc/hosts"], capture_output=True,
                                   text=True, check=True).stdout
            address = next(line.split()[0] for line in hosts.splitlines() if line.endswith(alias))
            m = Mesh(server, cluster, alias, pid_of(app), address, tmp)
            wait_for(m.all_ready, timeout=60, what="every sidecar ready")
            ip = next(c["networkInterfaces"][0]["privateIpv4Address"] for c in web_task["containers"]
                      if c.get("networkInterfaces"))
            yield Tls(m, ip, 15100, MeshCA.load_or_create(server.data_dir / "mesh-ca", "dockyard.local"),
                      prefix + "front", prefix)
    finally:
        if server.proc is not None:
            server.stop()


def web_pid(tls: Tls) -> str:
    [arn] = tls.mesh.arns("web")
    return pid_of(app_container(arn))


def test_mtls_calls_between_two_meshed_services_succeed_with_spiffe_certificates_over_sds(tls):
    load = Load(tls.mesh)
    time.sleep(2)  # calls go on meanwhile
    result = load.finish()
    assert result["failed"] == 0 and result["ok"] > 20, result
    assert set(result["bodies"]) == {"web-v1"}
    # web's listener takes TLS only, from front's SPIFFE id only (the next tests show it), so
    # these calls were mTLS: front's cluster speaks TLS, and each sidecar holds its own SPIFFE
    # certificate (the sidecars' stats_matcher keeps no ssl stats to count handshakes with)
    clusters = json.loads(sidecar_admin(tls.mesh.pid, "/config_dump?resource=dynamic_active_clusters"))
    [web] = [c["cluster"] for c in clusters["configs"] if c["cluster"]["name"] == "am/tls/web"]
    assert web["transport_socket"]["name"] == "envoy.transport_sockets.tls"
    assert tls.trust_domain_prefix + "web" in sidecar_admin(web_pid(tls), "/certs")
    assert tls.front_id in sidecar_admin(tls.mesh.pid, "/certs")
    # the key reached the sidecars over SDS only: no task container carries a certificate or key
    for arn in tls.mesh.arns("web", "front"):
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dockyard.task-arn={arn}"],
                             capture_output=True, text=True, check=True).stdout.split()
        inspected = subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True,
                                   check=True).stdout
        assert "PRIVATE KEY" not in inspected and "BEGIN CERTIFICATE" not in inspected
        assert all(not c["HostConfig"]["Binds"] for c in json.loads(inspected))


def test_a_plaintext_connection_to_a_strict_listener_is_refused(tls):
    plain = tls.probe("plain", tls.web, str(tls.ingress))
    assert "refused" in plain, plain
    no_cert = tls.probe("tls", tls.web, str(tls.ingress), "-", "-", tls.files(tls.front_id)[2])
    assert "refused" in no_cert, no_cert
    allowed = tls.probe("tls", tls.web, str(tls.ingress), *tls.files(tls.front_id))
    assert allowed == {"answered": 200, "body": "web-v1"}


def test_a_caller_with_an_unknown_spiffe_id_is_refused(tls):
    intruder = tls.probe("tls", tls.web, str(tls.ingress), *tls.files(tls.trust_domain_prefix + "intruder"))
    assert "refused" in intruder, intruder
    other_domain = tls.probe("tls", tls.web, str(tls.ingress), *tls.files("spiffe://elsewhere/ns/x/sa/front"))
    assert "refused" in other_domain, other_domain
    # a certificate of the right SPIFFE id from another CA is refused too
    other_ca = MeshCA.load_or_create(tls.mesh.tmp / f"other-ca-{uuid.uuid4().hex[:6]}", "dockyard.local")
    cred = other_ca.issue(tls.front_id, 300)
    forged = [tls.mesh.tmp / f"forged.{s}" for s in ("crt", "key")]
    forged[0].write_text(cred.certificate)
    forged[1].write_text(cred.key)
    result = tls.probe("tls", tls.web, str(tls.ingress), str(forged[0]), str(forged[1]),
                       tls.files(tls.front_id)[2])
    assert "refused" in result, result


def test_certificates_rotate_under_continuous_calls_with_zero_failed_requests(tls):
    stop = tls.mesh.tmp / f"stop-{uuid.uuid4().hex[:6]}"
    direct = subprocess.Popen(
        ["nsenter", "-t", tls.mesh.pid, "-n", sys.executable, "-c", PROBE, "loop", tls.web, str(tls.ingress),
         *tls.files(tls.front_id), str(stop)], stdout=subprocess.PIPE, text=True)
    load = Load(tls.mesh)
    before = sidecar_admin(web_pid(tls), "/certs")
    time.sleep(3 * LIFETIME)  # six renewals of every sidecar's certificate
    after = sidecar_admin(web_pid(tls), "/certs")
    stop.touch()
    through_sidecars = load.finish()
    out, _ = direct.communicate(timeout=30)
    fresh = json.loads(out)
    assert through_sidecars["failed"] == 0 and through_sidecars["ok"] > 100, through_sidecars
    assert fresh["failed"] == 0 and fresh["ok"] > 100, fresh
    assert fresh["served"] >= 4, fresh  # new certificates were served to new handshakes
    print(f"rotation: {through_sidecars['ok']} calls through both sidecars, {fresh['ok']} new TLS "
          f"connections, {fresh['served']} server certificates, 0 failed")
    serials = [{c["serial_number"] for entry in json.loads(t)["certificates"] for c in entry["cert_chain"]}
               for t in (before, after)]
    assert serials[0] and serials[1] and not serials[0] & serials[1], serials


def test_service_connect_tls_is_echoed_and_another_issuer_is_refused(tls):
    ecs = tls.mesh.server.client("ecs")
    [svc] = ecs.describe_services(cluster=tls.mesh.cluster, services=["web"])["services"]
    [entry] = svc["deployments"][0]["serviceConnectConfiguration"]["services"]
    assert entry["tls"]["issuerCertificateAuthority"]["awsPcaAuthorityArn"].endswith(
        ":certificate-authority/dockyard-mesh")
    bad = dict(entry, tls={"issuerCertificateAuthority": {
        "awsPcaAuthorityArn": "arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/abc"}})
    proc = tls.mesh.server.aws(
        "ecs", "update-service", "--cluster", tls.mesh.cluster, "--service", "web",
        "--service-connect-configuration", json.dumps({"enabled": True, "namespace": entry.get("namespace") or
                                                       svc["deployments"][0]["serviceConnectConfiguration"]
                                                       ["namespace"], "services": [bad]}), check=False)
    assert proc.returncode != 0 and "InvalidParameterException" in proc.stderr
    assert "is not a certificate authority of Dockyard" in proc.stderr


def test_file_certificates_are_refused_on_a_virtual_node(tls):
    listener = {"portMapping": {"port": 8080, "protocol": "http"}, "tls": {
        "mode": "STRICT", "certificate": {"file": {"certificateChain": "/c.pem", "privateKey": "/k.pem"}}}}
    proc = tls.mesh.server.aws("appmesh", "create-virtual-node", "--mesh-name", "tls", "--virtual-node-name",
                               "files", "--spec", json.dumps({"listeners": [listener], "serviceDiscovery": {
                                   "dns": {"hostname": "x.example"}}}), check=False)
    assert proc.returncode != 0 and "BadRequestException" in proc.stderr and "give sds" in proc.stderr



def test_a_permissive_listener_takes_plaintext_and_tls_and_still_checks_the_callers(tls):
    """Last: it turns web's listener PERMISSIVE (a migration's middle step)."""
    def update(tls_spec: dict[str, Any]) -> None:
        listener = {"portMapping": {"port": 8080, "protocol": "http"}, "tls": tls_spec}
        discovery = {"awsCloudMap": {"namespaceName": tls.mesh.alias.split(".", 1)[1], "serviceName": "web"}}
        tls.mesh.server.aws("appmesh", "update-virtual-node", "--mesh-name", "tls", "--virtual-node-name",
                            "web", "--spec",
                            json.dumps({"listeners": [listener], "serviceDiscovery": discovery}))

    sds = {"sds": {"secretName": "mesh"}}
    update({"mode": "PERMISSIVE", "certificate": sds, "validation": {
        "trust": sds, "subjectAlternativeNames": {"match": {"exact": [tls.front_id]}}}})
    wait_for(lambda: "answered" in tls.probe("plain", tls.web, str(tls.ingress)), timeout=30,
             what="plaintext taken by the PERMISSIVE listener")
    assert tls.probe("plain", tls.web, str(tls.ingress)) == {"answered": 200, "body": "web-v1"}
    assert tls.probe("tls", tls.web, str(tls.ingress), *tls.files(tls.front_id)) == \
        {"answered": 200, "body": "web-v1"}
    assert "refused" in tls.probe("tls", tls.web, str(tls.ingress),
                                  *tls.files(tls.trust_domain_prefix + "intruder"))
    load = Load(tls.mesh)
    time.sleep(1)
    assert load.finish()["failed"] == 0
