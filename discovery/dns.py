"""DNS server transport (UDP and TCP): parses queries with dnslib, asks a resolver, answers.

The resolver is a plain function ``DNSRecord -> DNSRecord`` (the reply), so the zone logic is
testable without sockets. Malformed queries get FORMERR when a header can be read and are
dropped otherwise; other opcodes get NOTIMP. With EDNS0 a UDP reply may use the client's
advertised size (up to 4,096 bytes); a larger one is sent empty with TC set, so that the
client retries over TCP. Truncated TCP frames close the connection; nothing a client sends can stop
the server.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Callable

from dnslib import EDNS0, QTYPE, RCODE, DNSHeader, DNSRecord

__all__ = ["DnsServer", "Resolver", "refuse_all"]

log = logging.getLogger("dockyard.dns")

Resolver = Callable[[DNSRecord], DNSRecord]
UDP_MAX = 512
EDNS_MAX = 4096


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
    if len(query.questions) != 1:
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
    data = reply.pack()
    if udp and len(data) > limit:
        reply.rr = []
        reply.auth = []
        reply.ar = [EDNS0(udp_len=EDNS_MAX)] if opt is not None else []
        reply.header.tc = 1
        data = reply.pack()
    return data


def _Buffer(data: bytes):
    from dnslib.buffer import Buffer

    return Buffer(data)


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        try:
            out = answer(data, self.resolver, udp=True)
        except Exception:
            log.exception("dns answer failed")
            return
        if out is not None and self.transport is not None:
            self.transport.sendto(out, addr)


class DnsServer:
    """Serves one resolver on ``host:port`` over UDP and TCP."""

    def __init__(self, resolver: Resolver, host: str, port: int) -> None:
        self.resolver = resolver
        self.host = host
        self.port = port
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tcp = await asyncio.start_server(self._serve_tcp, self.host, self.port, reuse_address=True)
        self.port = self._tcp.sockets[0].getsockname()[1]
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self.resolver), local_addr=(self.host, self.port)
        )

    async def stop(self) -> None:
        if self._udp:
            self._udp.close()
        if self._tcp:
            self._tcp.close()
            await self._tcp.wait_closed()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), timeout=30)
                (length,) = struct.unpack("!H", head)
                packet = await asyncio.wait_for(reader.readexactly(length), timeout=30)
                out = answer(packet, self.resolver, udp=False)
                if out is None:
                    break
                writer.write(struct.pack("!H", len(out)) + out)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
