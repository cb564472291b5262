import struct

from dnslib import EDNS0, QTYPE, RCODE, DNSRecord

from discovery.dns import answer
from discovery.resolver import make_resolver
from tests.unit.discovery.fixtures import sample_index

resolver = make_resolver(sample_index)


def test_a_well_formed_query_is_answered():
    out = answer(DNSRecord.question("web.example.internal", "A").pack(), resolver, udp=True)
    assert out is not None and DNSRecord.parse(out).header.rcode == RCODE.NOERROR


def test_garbage_with_a_header_gets_formerr_and_shorter_garbage_is_dropped():
    query = DNSRecord.question("web.example.internal", "A").pack()
    out = answer(query[:15], resolver, udp=True)
    reply = DNSRecord.parse(out)
    assert reply.header.rcode == RCODE.FORMERR and reply.header.id == DNSRecord.parse(query).header.id
    assert answer(b"\x01\x02\x03", resolver, udp=True) is None
    assert answer(b"", resolver, udp=False) is None


def test_random_bytes_never_raise():
    import random

    rng = random.Random(3)
    base = DNSRecord.question("web.example.internal", "SRV").pack()
    for n in range(2000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 6)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        answer(bytes(data[: rng.randint(0, len(data))] if n % 3 == 0 else data), resolver, udp=True)


def test_responses_are_never_answered():
    reply = DNSRecord.question("web.example.internal").reply()
    assert answer(reply.pack(), resolver, udp=True) is None


def test_a_udp_answer_too_big_for_512_bytes_is_truncated_unless_edns_allows_more():
    q = DNSRecord.question("web.example.internal", "SRV")
    small = DNSRecord.parse(answer(q.pack(), resolver, udp=True))
    assert small.header.tc == 1 and not small.rr
    tcp = DNSRecord.parse(answer(q.pack(), resolver, udp=False))
    assert tcp.header.tc == 0 and len(tcp.rr) == 8
    q.add_ar(EDNS0(udp_len=4096))
    big = DNSRecord.parse(answer(q.pack(), resolver, udp=True))
    assert big.header.tc == 0 and len(big.rr) == 8
    assert any(rr.rtype == QTYPE.OPT for rr in big.ar)


def test_other_opcodes_are_not_implemented():
    q = DNSRecord.question("web.example.internal")
    q.header.opcode = 2
    assert DNSRecord.parse(answer(q.pack(), resolver, udp=True)).header.rcode == RCODE.NOTIMP
    assert struct.unpack("!H", answer(q.pack(), resolver, udp=True)[:2])[0] == q.header.id


def test_the_answer_cache_keeps_answers_random_and_follows_the_zone_version():
    from dataclasses import replace

    from discovery.dns import AnswerCache

    index = sample_index()
    current = {"index": index}
    cache = AnswerCache(make_resolver(lambda: current["index"]), lambda: current["index"].revision)
    query = DNSRecord.question("web.example.internal", "A")
    query.add_ar(EDNS0(udp_len=4096))
    orders = set()
    for n in range(60):
        query.header.id = n
        reply = DNSRecord.parse(cache.answer(query.pack(), True))
        assert reply.header.id == n and len(reply.rr) == 8
        orders.add(tuple(str(rr.rdata) for rr in reply.rr))
    assert len(orders) > 4
    emptied = replace(index, revision=43, instances={**index.instances, "srv-web": {}})
    current["index"] = emptied
    assert DNSRecord.parse(cache.answer(query.pack(), True)).rr == []
