"""DNS server transport (UDP and TCP): parses queries with dnslib, asks a resolver, answers.

The resolver is a plain function ``DNSRecord -> DNSRecord`` (the reply), so the zone logic is
testable without sockets. Malformed queries get FORMERR when a header can be read and are
dropped otherwise; a query whose name is longer than 255 bytes or has a label over 63 gets
FORMERR too (RFC 1035; dnslib reads such a name but cannot write it back). Other opcodes get
NOTIMP. With EDNS0 a UDP reply may use the client's advertised size (up to 4,096 bytes); a
larger one is sent empty with TC set, so that the client retries over TCP. Truncated TCP
frames close the connection; nothing a client sends can stop the server.

A server given ``forward`` (the tasks' resolver, :mod:`discovery.taskdns`) hands every query its
resolver REFUSED (a name in none of its zones) to ``forward(packet, udp)`` and sends what that
returns instead (None keeps the REFUSED); at most ``MAX_FORWARDS`` such queries are in flight,
the ones beyond get the REFUSED.
"""

from __future__ import annotations

import asyncio
import logging
import random
import struct
from collections.abc import Awaitable, Callable

from dnslib import EDNS0, QTYPE, RCODE, DNSHeader, DNSRecord

__all__ = ["AnswerCache", "DnsServer", "Forward", "Resolver", "answer", "refuse_all", "refused"]

log = logging.getLogger("dockyard.dns")

Resolver = Callable[[DNSRecord], DNSRecord]
Forward = Callable[[bytes, bool], Awaitable[bytes | None]]
UDP_MAX = 512
MAX_NAME = 255  # bytes of a name on the wire (RFC 1035 2.3.4); a longer one gets FORMERR
EDNS_MAX = 4096
MAX_FORWARDS = 256


def refused(out: bytes | None) -> bool:
    """Whether a reply's RCODE is REFUSED."""
    return out is not None and len(out) >= 12 and (out[3] & 0x0F) == RCODE.REFUSED


def refuse_all(query: DNSRecord) -> DNSRecord:
    reply = query.reply(ra=0, aa=0)
    reply.header.rcode = RCODE.REFUSED
    reply.header.ra = 0
    return reply


def answer(packet: bytes, resolver: Resolver, udp: bool) -> bytes | None:
    """Bytes to send back for one DNS message, or None to stay silent."""
    try:
        query = DNSRecord.parse(packet)
    except Exception:  # dnslib raises DNSError, but also struct/Index/Key/Unicode errors
        if len(packet) < 12:
            return None
        try:
            header = DNSHeader.parse(_Buffer(packet[:12]))
        except Exception:
            return None
        reply = DNSRecord(DNSHeader(id=header.id, qr=1, rcode=RCODE.FORMERR))
        return reply.pack()
    if query.header.qr:
        return None  # never answer an answer (no reflection loops)
    if len(query.questions) != 1 or not _name_ok(query.q.qname):
        reply = DNSRecord(DNSHeader(id=query.header.id, qr=1, rcode=RCODE.FORMERR))
        return reply.pack()
    if query.header.opcode != 0:
        reply = query.reply(ra=0, aa=0)
        reply.header.rcode = RCODE.NOTIMP
        return reply.pack()
    opt = next((rr for rr in query.ar if rr.rtype == QTYPE.OPT), None)
    limit = max(UDP_MAX, min(int(opt.rclass), EDNS_MAX)) if opt is not None else UDP_MAX
    try:
        reply = resolver(query)
    except Exception:
        log.exception("resolver failed")
        reply = query.reply(ra=0, aa=0)
        reply.header.rcode = RCODE.SERVFAIL
    reply.header.ad = 0  # no DNSSEC here
    reply.ar = [rr for rr in reply.ar if rr.rtype != QTYPE.OPT]
    if opt is not None:
        reply.add_ar(EDNS0(udp_len=EDNS_MAX))
    try:
        data = reply.pack()
    except Exception as e:  # a reply dnslib cannot encode: a bad record, not the client's fault
        log.error("dns reply could not be encoded", extra={"error": type(e).__name__, "detail": str(e)[:200]})
        data = DNSRecord(DNSHeader(id=query.header.id, qr=1, rcode=RCODE.SERVFAIL)).pack()
    if udp and len(data) > limit:
        reply.rr = []
        reply.auth = []
        reply.ar = [EDNS0(udp_len=EDNS_MAX)] if opt is not None else []
        reply.header.tc = 1
        data = reply.pack()
    return data


def _name_ok(name: object) -> bool:
    """Whether ``name`` (a DNSLabel) can be written back: labels of at most 63 bytes, at most
    255 bytes on the wire (a length byte per label, the root's)."""
    labels = getattr(name, "label", ())
    wire = sum(len(label) + 1 for label in labels) + 1
    return all(len(label) <= 63 for label in labels) and wire <= MAX_NAME


def _Buffer(data: bytes):
    from dnslib.buffer import Buffer

    return Buffer(data)


class AnswerCache:
    """Answers by query bytes (less the ID) for one zone-data ``version``.

    Random answers (MULTIVALUE order, WEIGHTED choice) stay random: each key keeps up to
    ``VARIANTS`` replies, one more computed per query until it has them all, then one of
    them picked at random. Any change of ``version()`` empties the cache.
    """

    VARIANTS = 16
    SIZE = 4096

    def __init__(self, resolver: Resolver, version: Callable[[], int]) -> None:
        self.resolver = resolver
        self.version = version
        self._seen = -1
        self._entries: dict[tuple[bytes, bool], list[bytes]] = {}

    def answer(self, packet: bytes, udp: bool) -> bytes | None:
        version = self.version()
        if version != self._seen:
            self._entries.clear()
            self._seen = version
        if len(packet) < 12:
            return answer(packet, self.resolver, udp)
        key = (bytes(packet[2:]), udp)
        variants = self._entries.get(key)
        if variants is not None and len(variants) >= self.VARIANTS:
            return bytes(packet[:2]) + random.choice(variants)
        out = answer(packet, self.resolver, udp)
        if out is None or len(out) < 12 or (out[3] & 0x0F) in (RCODE.FORMERR, RCODE.SERVFAIL):
            return out
        if variants is None:
            if len(self._entries) >= self.SIZE:
                self._entries.clear()
            variants = self._entries[key] = []
        variants.append(bytes(out[2:]))
        return out


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, server: DnsServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            out = self.server.answer(data, True)
        except Exception:
            log.exception("dns answer failed")
            return
        if self.server.forwards(out):
            task = asyncio.ensure_future(self._relay(data, out, addr))
            self.server.pending.add(task)
            task.add_done_callback(self.server.pending.discard)
        elif out is not None and self.transport is not None:
            self.transport.sendto(out, addr)

    async def _relay(self, data: bytes, out: bytes | None, addr: tuple) -> None:
        out = await self.server.forwarded(data, out, True)
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class DnsServer:
    """Serves one resolver on ``host:port`` over UDP and TCP (``forward``: module docstring)."""

    def __init__(self, resolver: Resolver, host: str, port: int,
                 version: Callable[[], int] | None = None, forward: Forward | None = None) -> None:
        self.resolver = resolver
        self.cache = AnswerCache(resolver, version) if version is not None else None
        self.host = host
        self.port = port
        self.forward = forward
        self.pending: set[asyncio.Future[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; raises OSError (and listens on nothing) when either socket cannot be bound."""
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        self.port = self._tcp.sockets[0].getsockname()[1]
        try:
            self._udp, _ = await loop.create_datagram_endpoint(
                lambda: _Udp(self), local_addr=(self.host, self.port)
            )
        except OSError:
            self._tcp.close()
            self._tcp = None
            raise

    def forwards(self, out: bytes | None) -> bool:
        """Whether the reply ``out`` is to be replaced by a forwarded answer."""
        return self.forward is not None and refused(out) and len(self.pending) < MAX_FORWARDS

    async def forwarded(self, packet: bytes, out: bytes | None, udp: bool) -> bytes | None:
        assert self.forward is not None
        try:
            got = await self.forward(packet, udp)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("dns forward failed")
            return out
        return out if got is None else got

    def answer(self, packet: bytes, udp: bool) -> bytes | None:
        if self.cache is not None:
            return self.cache.answer(packet, udp)
        return answer(packet, self.resolver, udp)

    async def stop(self) -> None:
        if self._udp:
            self._udp.close()
        for task in list(self.pending):
            task.cancel()
        if self._tcp:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), timeout=30)
                (length,) = struct.unpack("!H", head)
                packet = await asyncio.wait_for(reader.readexactly(length), timeout=30)
                try:
                    out = self.answer(packet, False)
                except Exception:
                    log.exception("dns answer failed")
                    break
                if self.forward is not None and refused(out):
                    out = await self.forwarded(packet, out, False)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
