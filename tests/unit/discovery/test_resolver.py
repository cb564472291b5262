import random

from dnslib import QTYPE, RCODE, DNSRecord

from discovery.index import build
from discovery.resolver import MAX_MULTIVALUE, instance_label, resolve
from tests.unit.discovery.fixtures import instance, namespace, sample_index, service


def ask(name: str, qtype: str = "A") -> DNSRecord:
    return resolve(sample_index(), DNSRecord.question(name, qtype), random.Random(1))


def test_a_query_answers_up_to_eight_healthy_instances_with_the_service_ttl():
    reply = ask("web.example.internal")
    addresses = {str(rr.rdata) for rr in reply.rr}
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1 and reply.header.ra == 0
    assert len(reply.rr) == MAX_MULTIVALUE
    assert "10.0.0.99" not in addresses
    assert all(rr.ttl == 60 and rr.rtype == QTYPE.A for rr in reply.rr)


def test_multivalue_answers_come_in_random_order():
    orders = {tuple(str(rr.rdata) for rr in ask("web.example.internal").rr) for _ in range(1)}
    index = sample_index()
    rng = random.Random(7)
    for _ in range(10):
        reply = resolve(index, DNSRecord.question("web.example.internal", "A"), rng)
        orders.add(tuple(str(rr.rdata) for rr in reply.rr))
    assert len(orders) > 1


def test_instances_sharing_an_address_give_one_a_record():
    namespaces = [namespace("ns-1", "example.internal")]
    services = [service("srv-web", "ns-1", "web", [{"Type": "A", "TTL": 60}])]
    instances = [instance("srv-web", "a", "10.0.0.1", port="80"),
                 instance("srv-web", "b", "10.0.0.1", port="81"), instance("srv-web", "c", "10.0.0.2")]
    index = build(namespaces, services, instances, revision=1)
    for seed in range(5):
        reply = resolve(index, DNSRecord.question("web.example.internal", "A"), random.Random(seed))
        assert sorted(str(rr.rdata) for rr in reply.rr) == ["10.0.0.1", "10.0.0.2"]


def test_weighted_routing_answers_one_instance():
    reply = ask("db.example.internal")
    assert len(reply.rr) == 1 and str(reply.rr[0].rdata) in ("10.0.1.1", "10.0.1.2")
    assert reply.rr[0].ttl == 5


def test_srv_answers_name_instance_targets_and_add_their_addresses():
    reply = ask("web.example.internal", "SRV")
    assert len(reply.rr) == MAX_MULTIVALUE
    srv = reply.rr[0].rdata
    assert srv.port == 80 and str(srv.target).endswith(".web.example.internal.")
    assert reply.rr[0].ttl == 30
    assert {str(rr.rname) for rr in reply.ar} == {str(rr.rdata.target) for rr in reply.rr}


def test_an_srv_target_name_resolves_to_its_instance():
    reply = ask(f"{instance_label('web-3')}.web.example.internal")
    assert [str(rr.rdata) for rr in reply.rr] == ["10.0.0.3"]


def test_names_are_matched_without_regard_to_case():
    assert len(ask("WEB.Example.Internal").rr) == MAX_MULTIVALUE


def test_zone_apex_answers_soa_and_ns():
    soa = ask("example.internal", "SOA")
    assert soa.rr[0].rtype == QTYPE.SOA and soa.rr[0].ttl == 30 and soa.rr[0].rdata.times[0] == 42
    ns = ask("example.internal", "NS")
    assert ns.rr[0].rtype == QTYPE.NS


def test_unknown_name_in_a_zone_is_nxdomain_with_the_soa():
    reply = ask("nothing.example.internal")
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert reply.auth[0].rtype == QTYPE.SOA


def test_a_type_the_service_has_no_record_for_is_nodata():
    reply = ask("web.example.internal", "AAAA")
    assert reply.header.rcode == RCODE.NOERROR and not reply.rr and reply.auth[0].rtype == QTYPE.SOA


def test_names_outside_every_zone_are_refused_without_recursion():
    for name in ("example.com", "internal", "api", "backend.api"):
        reply = ask(name)
        assert reply.header.rcode == RCODE.REFUSED and reply.header.ra == 0 and not reply.rr


def test_instance_label_keeps_valid_ids_and_hashes_the_rest():
    assert instance_label("Web-1") == "web-1"
    label = instance_label("arn:aws:ecs:task/1")
    assert label.startswith("i-") and len(label) == 18
