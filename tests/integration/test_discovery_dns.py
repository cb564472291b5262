"""Dockyard's DNS server queried with dig (UDP and TCP) and dnspython, and fed garbage."""

from __future__ import annotations

import socket
import struct
import subprocess

import dns.message
import dns.query
import dns.rcode
import dns.rdatatype

from tests.support.discovery import dns_namespace, dns_service
from tests.support.server import Dockyard


def dig(dockyard: Dockyard, *args: str) -> str:
    proc = subprocess.run(
        ["dig", "@127.0.0.1", "-p", str(dockyard.ports["dns"]), "+time=2", "+tries=1", *args],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.stdout


def populated(dockyard: Dockyard, count: int = 10) -> tuple[str, str]:
    sd = dockyard.client("servicediscovery")
    ns_id, ns_name = dns_namespace(dockyard)
    srv = dns_service(dockyard, ns_id, "web", ("A", "SRV"), ttl=42)
    for n in range(count):
        sd.register_instance(
            ServiceId=srv["Id"],
            InstanceId=f"web-{n}",
            Attributes={"AWS_INSTANCE_IPV4": f"10.9.0.{n + 1}", "AWS_INSTANCE_PORT": str(8000 + n)},
        )
    return ns_name, srv["Id"]


def test_dig_gets_a_and_srv_answers_over_udp_and_tcp(dockyard: Dockyard):
    ns_name, _ = populated(dockyard)
    for transport in ("+notcp", "+tcp"):
        a = dig(dockyard, transport, "+short", f"web.{ns_name}", "A").split()
        assert len(a) == 8 and all(ip.startswith("10.9.0.") for ip in a)
        srv = dig(dockyard, transport, "+short", f"web.{ns_name}", "SRV").splitlines()
        assert len(srv) == 8 and all(line.startswith("1 1 80") for line in srv)
    full = dig(dockyard, "+noall", "+answer", f"web.{ns_name}", "A")
    assert all("\t42\tIN\tA\t" in line for line in full.splitlines() if line)


def test_dig_sees_the_zone_soa_ns_nxdomain_and_refusal(dockyard: Dockyard):
    ns_name, _ = populated(dockyard, 1)
    assert "status: NOERROR" in dig(dockyard, ns_name, "SOA") and "\tSOA\t" in dig(dockyard, ns_name, "SOA")
    assert "\tNS\t" in dig(dockyard, ns_name, "NS")
    missing = dig(dockyard, f"nothing.{ns_name}", "A")
    assert "status: NXDOMAIN" in missing and "\tSOA\t" in missing
    outside = dig(dockyard, "www.example.com", "A")
    assert "status: REFUSED" in outside and " ra" not in outside.split("flags:")[1].split(";")[0]


def test_dnspython_resolves_srv_targets_to_their_instances(dockyard: Dockyard):
    ns_name, _ = populated(dockyard, 3)
    port = dockyard.ports["dns"]
    reply = dns.query.tcp(dns.message.make_query(f"web.{ns_name}", "SRV"), "127.0.0.1", port=port, timeout=5)
    targets = {(r.target.to_text(), r.port) for r in reply.answer[0]}
    assert len(targets) == 3
    for target, srv_port in targets:
        a = dns.query.udp(dns.message.make_query(target, "A"), "127.0.0.1", port=port, timeout=5)
        ip = a.answer[0][0].address
        assert ip == f"10.9.0.{srv_port - 8000 + 1}"


def test_a_large_answer_over_plain_udp_is_truncated_and_complete_over_tcp(dockyard: Dockyard):
    ns_name, _ = populated(dockyard)
    port = dockyard.ports["dns"]
    query = dns.message.make_query(f"web.{ns_name}", "SRV", use_edns=False)
    udp = dns.query.udp(query, "127.0.0.1", port=port, timeout=5, ignore_trailing=True)
    assert udp.flags & dns.flags.TC
    tcp = dns.query.tcp(query, "127.0.0.1", port=port, timeout=5)
    assert len(tcp.answer[0]) == 8


def test_garbage_and_truncated_tcp_frames_never_stop_the_server(dockyard: Dockyard):
    ns_name, _ = populated(dockyard, 2)
    port = dockyard.ports["dns"]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        u.settimeout(2)
        u.sendto(b"\x12\x34" + b"\xff" * 20, ("127.0.0.1", port))
        reply = dns.message.from_wire(u.recv(4096))
        assert reply.rcode() == dns.rcode.FORMERR and reply.id == 0x1234
        for junk in (b"", b"\x00", b"\x00" * 11, bytes(range(256)) * 2):
            u.sendto(junk, ("127.0.0.1", port))
    for frame in (b"\x00", b"\x00\x40abc", struct.pack("!H", 12) + b"\x00" * 12, b"\xff\xff" + b"x" * 100):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(frame)
            s.shutdown(socket.SHUT_WR)
            try:
                s.recv(4096)
            except OSError:
                pass
    assert len(dig(dockyard, "+short", f"web.{ns_name}", "A").split()) == 2
    assert len(dig(dockyard, "+tcp", "+short", f"web.{ns_name}", "A").split()) == 2
