"""mTLS, the pure parts and the CA: which certificate a node needs and gets over SDS, the
transport sockets of TLS clusters and ingress listeners (STRICT, PERMISSIVE), the SPIFFE ids
checked, Service Connect's ``tls`` compiled into the desired mesh, and the CA's certificates
and their renewal at half their lifetime."""

from __future__ import annotations

import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from envoy.extensions.transport_sockets.tls.v3 import secret_pb2, tls_pb2

from mesh import resources as res
from mesh.ca import Issuer, MeshCA, ca_arn, spiffe_id
from mesh.desired import AppMeshSpecs, build
from mesh.model import Client, Ingress, MeshConfig, Node, NodeSecrets, Route, Service, Target, Tls
from mesh.snapshot import CLUSTER, LISTENER, SECRET, compute, identity_needed
from tests.unit.mesh.desired_fakes import Alias, ConnectService, Task, TaskIngress, instance

FRONT = "spiffe://dockyard.local/ns/shop.local/sa/front"
WEB = "spiffe://dockyard.local/ns/shop.local/sa/web"
SECRETS = NodeSecrets("CERT", "KEY", "BUNDLE")
WEB_TLS, INGRESS_TLS = Tls(peers=(WEB,)), Tls(peers=(FRONT,))


def mesh(web_tls: Tls | None = WEB_TLS, ingress_tls: Tls | None = INGRESS_TLS) -> MeshConfig:
    return MeshConfig(
        services=(Service("web", tls=web_tls), Service("db")),
        routes=(Route("web.shop.local", 80, (Target("web", 1),)),
                Route("db.shop.local", 81, (Target("db", 1),))),
        clients=(Client("front", ("web.shop.local",), identity=FRONT),
                 Client("web", (), (Ingress("web", 15100, 8080, tls=ingress_tls),), identity=WEB),
                 Client("plain", ("db.shop.local",), identity="spiffe://dockyard.local/ns/shop.local/sa/plain")))


def tls_context(socket, kind):
    out = kind()
    assert socket.name == "envoy.transport_sockets.tls"
    socket.typed_config.Unpack(out)
    return out


def test_a_node_needs_its_certificate_only_when_it_speaks_tls_on_either_side():
    config = mesh()
    assert identity_needed(config, "front") == FRONT  # calls a TLS service
    assert identity_needed(config, "web") == WEB  # a TLS ingress
    assert identity_needed(config, "plain") == ""  # only plaintext
    assert identity_needed(config, "unknown") == ""
    assert identity_needed(mesh(web_tls=None, ingress_tls=None), "front") == ""


def test_a_tls_node_gets_its_two_secrets_and_a_plain_one_none():
    s = compute(mesh(), {"web": ()}, Node("front"), secrets=SECRETS)
    assert s.names(SECRET) == {res.IDENTITY_SECRET, res.TRUST_SECRET}
    by_name = {x.name: x for x in s.resources[SECRET]}
    assert isinstance(by_name[res.IDENTITY_SECRET], secret_pb2.Secret)
    assert by_name[res.IDENTITY_SECRET].tls_certificate.certificate_chain.inline_string == "CERT"
    assert by_name[res.IDENTITY_SECRET].tls_certificate.private_key.inline_string == "KEY"
    assert by_name[res.TRUST_SECRET].validation_context.trusted_ca.inline_string == "BUNDLE"
    assert s.consistent()
    plain = compute(mesh(), {"db": ()}, Node("plain"), secrets=SECRETS)
    assert plain.resources[SECRET] == () and plain.consistent()


def test_without_its_certificate_a_tls_snapshot_is_inconsistent():
    s = compute(mesh(), {"web": ()}, Node("front"))
    assert "cluster web names missing secret mesh_identity" in s.problems()


def test_a_renewed_certificate_changes_only_the_sds_version():
    before = compute(mesh(), {"web": ()}, Node("front"), secrets=SECRETS)
    after = compute(mesh(), {"web": ()}, Node("front"), secrets=NodeSecrets("CERT2", "KEY2", "BUNDLE"))
    assert {t for t in before.versions if before.versions[t] != after.versions[t]} == {SECRET}


def test_a_tls_cluster_originates_mtls_and_checks_the_servers_spiffe_id():
    s = compute(mesh(), {"web": ()}, Node("front"), secrets=SECRETS)
    [web] = s.resources[CLUSTER]
    ctx = tls_context(web.transport_socket, tls_pb2.UpstreamTlsContext).common_tls_context
    assert [c.name for c in ctx.tls_certificate_sds_secret_configs] == [res.IDENTITY_SECRET]
    assert ctx.tls_certificate_sds_secret_configs[0].sds_config.HasField("ads")
    combined = ctx.combined_validation_context
    assert combined.validation_context_sds_secret_config.name == res.TRUST_SECRET
    [san] = combined.default_validation_context.match_typed_subject_alt_names
    assert san.san_type == san.URI and san.matcher.exact == WEB


def test_a_strict_ingress_has_one_tls_chain_that_requires_and_checks_the_callers_certificate():
    s = compute(mesh(), {}, Node("web"), secrets=SECRETS)
    [listener] = s.resources[LISTENER]
    assert not listener.listener_filters
    [chain] = listener.filter_chains
    ctx = tls_context(chain.transport_socket, tls_pb2.DownstreamTlsContext)
    assert ctx.require_client_certificate.value
    validation = ctx.common_tls_context.combined_validation_context.default_validation_context
    [san] = validation.match_typed_subject_alt_names
    assert san.matcher.exact == FRONT


def test_a_permissive_ingress_tells_tls_from_plaintext_with_the_tls_inspector():
    s = compute(mesh(ingress_tls=Tls("PERMISSIVE")), {}, Node("web"), secrets=SECRETS)
    [listener] = s.resources[LISTENER]
    assert [f.name for f in listener.listener_filters] == [res.TLS_INSPECTOR]
    tls, plain = listener.filter_chains
    assert tls.filter_chain_match.transport_protocol == "tls" and tls.HasField("transport_socket")
    assert plain.filter_chain_match.transport_protocol == "raw_buffer"
    assert not plain.HasField("transport_socket")
    assert list(plain.filters) == list(tls.filters)
    ctx = tls_context(tls.transport_socket, tls_pb2.DownstreamTlsContext).common_tls_context
    assert not ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names


def test_one_way_tls_asks_for_no_client_certificate():
    socket = res.downstream_socket(Tls(client_certificate=False))
    ctx = tls_context(socket, tls_pb2.DownstreamTlsContext)
    assert not ctx.require_client_certificate.value
    assert not ctx.common_tls_context.HasField("combined_validation_context")


def test_a_disabled_ingress_is_plain():
    s = compute(mesh(ingress_tls=None, web_tls=None), {}, Node("web"))
    [listener] = s.resources[LISTENER]
    assert not listener.filter_chains[0].HasField("transport_socket") and s.resources[SECRET] == ()


def test_an_unknown_tls_mode_is_refused():
    with pytest.raises(ValueError, match="tls mode"):
        Tls("DISABLED")


# -- Service Connect's tls in the desired mesh ---------------------------------------------------

def test_service_connect_tls_makes_the_callers_clusters_and_the_tasks_ingress_mtls():
    web = ConnectService("shop.local", "web", aliases=(Alias("web.shop.local", 80),), tls=True)
    tasks = [Task("front", alias_addresses={"web.shop.local": "127.255.0.1"}),
             Task("web-1", service="web", ingress=(TaskIngress("web", 15100, 8080, tls=True),))]
    desired = build(tasks, {"shop.local": [web]}, AppMeshSpecs(),
                    lambda ns, name: [instance("web-1", "10.0.0.5", 15100)], trust_domain="dockyard.local")
    config = desired.config
    assert config.client("front").identity == FRONT
    assert config.client("web-1").identity == WEB
    [service] = config.services
    assert service.tls == Tls()  # any certificate of the mesh CA
    assert config.client("web-1").ingress[0].tls == Tls("STRICT")
    assert identity_needed(config, "front") == FRONT and identity_needed(config, "web-1") == WEB


def test_without_a_trust_domain_no_task_has_an_identity():
    tasks = [Task("front")]
    desired = build(tasks, {}, AppMeshSpecs(), lambda ns, name: None)
    assert desired.config.client("front").identity == ""


# -- the CA ---------------------------------------------------------------------------------------

def test_the_ca_is_made_once_with_its_key_private_and_issues_spiffe_certificates(tmp_path):
    ca = MeshCA.load_or_create(tmp_path / "ca", "dockyard.local")
    assert stat.S_IMODE((tmp_path / "ca" / "ca-key.pem").stat().st_mode) == 0o600
    assert isinstance(ca.key.curve, ec.SECP256R1)
    again = MeshCA.load_or_create(tmp_path / "ca", "dockyard.local")
    assert again.certificate == ca.certificate
    cred = ca.issue(WEB, 60, now=1_000_000)
    cert = x509.load_pem_x509_certificate(cred.certificate.encode())
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.UniformResourceIdentifier) == [WEB]
    cert.verify_directly_issued_by(ca.certificate)
    assert cert.not_valid_after_utc.timestamp() == 1_000_060 and cred.renew_at == 1_000_030
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_the_trust_bundle_keeps_a_previous_ca_while_it_is_rotated(tmp_path):
    old = MeshCA.load_or_create(tmp_path / "old", "dockyard.local")
    (tmp_path / "new" / "trust").mkdir(parents=True)
    (tmp_path / "new" / "trust" / "old.pem").write_text(old.certificate_pem)
    new = MeshCA.load_or_create(tmp_path / "new", "dockyard.local")
    assert new.bundle == new.certificate_pem + old.certificate_pem


def test_the_issuer_renews_at_half_the_lifetime_and_forgets_gone_nodes(tmp_path):
    now = [1_000_000.0]
    issuer = Issuer(MeshCA.load_or_create(tmp_path, "dockyard.local"), 10, clock=lambda: now[0])
    first = issuer.credential("task-1", WEB)
    assert issuer.credential("task-1", WEB) is first and issuer.next_renewal() == 1_000_005
    now[0] = 1_000_005
    second = issuer.credential("task-1", WEB)
    assert second.serial != first.serial and second.key != first.key and issuer.issued == 2
    assert issuer.credential("task-1", FRONT).identity == FRONT  # a new identity: a new certificate
    issuer.keep([])
    assert issuer.next_renewal() is None
    with pytest.raises(ValueError):
        Issuer(issuer.ca, 0)


def test_the_ca_arn_names_dockyards_ca_in_the_pca_form():
    assert ca_arn("us-east-1", "000000000000") == \
        "arn:aws:acm-pca:us-east-1:000000000000:certificate-authority/dockyard-mesh"
    assert spiffe_id("dockyard.local", "shop.local", "web") == WEB


# -- App Mesh's listener tls and client policies in the desired mesh -----------------------------

SDS = {"sds": {"secretName": "mesh"}}


def app_mesh(listener_tls: dict | None, attributes: tuple = (), backends: tuple = ()) -> AppMeshSpecs:
    listener = {"portMapping": {"port": 8080, "protocol": "http"}}
    if listener_tls is not None:
        listener["tls"] = listener_tls
    cloud_map = {"namespaceName": "shop.local", "serviceName": "web",
                 "attributes": [{"key": k, "value": v} for k, v in attributes]}
    nodes = {"web": {"listeners": [listener], "serviceDiscovery": {"awsCloudMap": cloud_map}}}
    if backends:
        nodes["front"] = {"backends": list(backends)}
    provider = {"provider": {"virtualNode": {"virtualNodeName": "web"}}}
    return AppMeshSpecs(("default",), {"default": nodes}, {"default": {"web.shop.local": provider}})


def app_mesh_build(specs: AppMeshSpecs, sc_tls: bool = False):
    web = ConnectService("shop.local", "web", aliases=(Alias("web.shop.local", 80),), tls=sc_tls)
    tasks = [Task("arn:task/c/front1", alias_addresses={"web.shop.local": "127.255.0.1"}),
             Task("arn:task/c/web1", service="web", family="web", revision=1,
                  ingress=(TaskIngress("web", 15100, 8080, tls=sc_tls),))]
    desired = build(tasks, {"shop.local": [web]}, specs,
                    lambda ns, name: [instance("web1", "10.0.0.5", 15100, ECS_TASK_ARN_ID="web1")],
                    trust_domain="dockyard.local")
    config = desired.config
    return config, config.client("arn:task/c/web1").ingress[0].tls, {s.name: s.tls for s in config.services}


def test_a_strict_virtual_node_makes_its_tasks_ingress_strict_with_the_allowed_callers_and_callers_tls():
    tls = {"mode": "STRICT", "certificate": SDS,
           "validation": {"trust": SDS, "subjectAlternativeNames": {"match": {"exact": [FRONT]}}}}
    config, ingress, services = app_mesh_build(app_mesh(tls))
    assert ingress == Tls("STRICT", (FRONT,), client_certificate=True)
    assert services == {"am/default/web": Tls()}
    assert identity_needed(config, "arn:task/c/front1") == FRONT


def test_a_permissive_virtual_node_without_validation_asks_no_client_certificate():
    _, ingress, _ = app_mesh_build(app_mesh({"mode": "PERMISSIVE", "certificate": SDS}))
    assert ingress == Tls("PERMISSIVE", (), client_certificate=False)


def test_a_disabled_virtual_node_is_plain_and_service_connect_tls_still_applies():
    config, ingress, services = app_mesh_build(app_mesh({"mode": "DISABLED", "certificate": SDS}))
    assert ingress is None and services == {"am/default/web": None}
    assert identity_needed(config, "arn:task/c/front1") == ""
    _, ingress, _ = app_mesh_build(app_mesh({"mode": "DISABLED", "certificate": SDS}), sc_tls=True)
    assert ingress == Tls("STRICT")


def test_a_virtual_node_selecting_another_revision_leaves_the_task_alone():
    tls = {"mode": "STRICT", "certificate": SDS}
    _, ingress, _ = app_mesh_build(app_mesh(tls, (("ECS_TASK_DEFINITION_REVISION", "2"),)))
    assert ingress is None
    _, ingress, _ = app_mesh_build(app_mesh(tls, (("ECS_TASK_DEFINITION_REVISION", "1"),)))
    assert ingress == Tls("STRICT", client_certificate=False)


def test_a_backend_client_policy_enforces_tls_and_names_the_servers_spiffe_id():
    policy = {"tls": {"validation": {"trust": SDS, "subjectAlternativeNames": {"match": {"exact": [WEB]}}}}}
    backend = {"virtualService": {"virtualServiceName": "web.shop.local", "clientPolicy": policy}}
    _, ingress, services = app_mesh_build(app_mesh(None, backends=(backend,)))
    assert ingress is None and services == {"am/default/web": Tls(peers=(WEB,))}
    off = {"virtualService": {"virtualServiceName": "web.shop.local",
                              "clientPolicy": {"tls": {**policy["tls"], "enforce": False}}}}
    _, _, services = app_mesh_build(app_mesh(None, backends=(off,)))
    assert services == {"am/default/web": None}
