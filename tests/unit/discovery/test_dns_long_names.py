"""A query whose name is longer than 255 bytes on the wire (dnslib parses it but cannot write
it back) gets FORMERR with its id, and nothing is logged at ERROR."""

import logging
import struct

from dnslib import RCODE, DNSRecord

from discovery.dns import answer
from discovery.resolver import make_resolver
from tests.unit.discovery.fixtures import sample_index

resolver = make_resolver(sample_index)


def _query(labels: list[bytes], qid: int = 0x4242) -> bytes:
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\0"
    return struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + struct.pack(">HH", 1, 1)


def test_a_name_over_255_bytes_or_a_label_over_63_gets_formerr_without_an_error_log(caplog):
    for labels in ([b"a" * 60] * 5, [b"b" * 63] * 4, [b"c"] * 200, [b"d" * 64]):
        out = answer(_query(labels), resolver, udp=True)
        assert out is not None
        reply = DNSRecord.parse(out)
        assert (reply.header.rcode, reply.header.id) == (RCODE.FORMERR, 0x4242)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_name_of_exactly_255_bytes_is_answered():
    labels = [b"a" * 63] * 3 + [b"b" * 61]  # 4 * 64 - 2 + 1 = 255 bytes with the root
    out = answer(_query(labels), resolver, udp=True)
    assert out is not None and DNSRecord.parse(out).header.rcode != RCODE.FORMERR
