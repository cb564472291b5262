"""The tasks' resolver: Dockyard's zones, and the host's resolvers for every other name.

A task's containers get this as their only nameserver (``HostConfig.Dns``; the runner asks
:meth:`TaskDns.serve` for an address first), as a VPC's tasks get the VPC resolver:

* a name in a zone Dockyard serves (a DNS namespace) is answered from the zone, exactly as on
  ``dns_port`` (:mod:`discovery.resolver`);
* any other name is forwarded to the upstream resolvers, in order, and their answer relayed
  (over UDP for a UDP query, a truncated answer included, so that the client retries over TCP;
  over TCP for a TCP one). The query leaves with an ID of its own and only an answer bearing
  that ID from the upstream it was sent to is taken. No answer from any of them within
  ``TIMEOUT`` seconds each is SERVFAIL; without upstreams such a name is REFUSED.

Upstreams (setting ``task_dns_upstream``): a path (default ``/etc/resolv.conf``) names a
resolv.conf whose ``nameserver`` lines are the upstreams, re-read when the file changes, so
names resolve as the host resolves them. Loopback nameservers (``127.0.0.53``, systemd-resolved's
stub) are kept: Dockyard runs in the host's network namespace and reaches them, which the tasks
could not. ``none`` means no upstream (REFUSED); else a comma-separated list of ``ip``,
``ip:port`` or ``[ipv6]:port``. An address Dockyard itself serves tasks on is never an upstream.

Each listener is an address of this machine, port 53 (a resolv.conf names no port), UDP and TCP.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import struct
from collections.abc import Callable
from pathlib import Path

from dnslib import RCODE, DNSRecord

from discovery.dns import DnsServer, Resolver

__all__ = ["TIMEOUT", "TaskDns", "Upstreams", "ask_upstreams", "parse_addresses", "parse_resolv_conf",
           "servfail"]

log = logging.getLogger("dockyard.dns")

TIMEOUT = 2.0
PORT = 53
Address = tuple[str, int]


def parse_resolv_conf(text: str) -> list[Address]:
    """The ``nameserver`` addresses of a resolv.conf, in order, port 53 (an IPv6 zone index such
    as ``%eth0`` dropped; lines that are no address ignored)."""
    out: list[Address] = []
    for line in text.splitlines():
        words = line.split()
        if len(words) < 2 or words[0] != "nameserver":
            continue
        host = words[1].split("%", 1)[0]
        try:
            ipaddress.ip_address(host)
        except ValueError:
            continue
        if (host, PORT) not in out:
            out.append((host, PORT))
    return out


def parse_addresses(text: str) -> list[Address]:
    """``ip``, ``ip:port``, ``[ipv6]:port`` or ``ipv6``, comma-separated; ValueError names a bad one."""
    out: list[Address] = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        host, port = item, PORT
        if item.startswith("["):
            host, sep, rest = item[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise ValueError(f"not an address: {item!r}")
            port = int(rest[1:]) if rest else PORT
        elif item.count(":") == 1:
            host, _, text_port = item.partition(":")
            port = int(text_port) if text_port.isdigit() else -1
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ValueError(f"not an address: {item!r}") from None
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {item!r}")
        out.append((host, port))
    return out


class Upstreams:
    """The upstream resolvers of a ``task_dns_upstream`` setting (module docstring).
    Raises ValueError for a malformed list."""

    def __init__(self, setting: str) -> None:
        self.setting = setting.strip()
        self.path: Path | None = None
        self._fixed: list[Address] = []
        self._seen: tuple[int, int] | None = None
        self._read: list[Address] = []
        if self.setting.startswith("/"):
            self.path = Path(self.setting)
        elif self.setting.lower() != "none":
            self._fixed = parse_addresses(self.setting)

    def current(self) -> list[Address]:
        """The upstreams now (a resolv.conf is re-read when its mtime or size changed; an
        unreadable one gives none)."""
        if self.path is None:
            return list(self._fixed)
        try:
            st = os.stat(self.path)
        except OSError:
            self._seen, self._read = None, []
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._seen:
            try:
                self._read = parse_resolv_conf(self.path.read_text(errors="replace"))
            except OSError:
                self._read = []
            self._seen = stamp
        return list(self._read)


def servfail(packet: bytes) -> bytes | None:
    try:
        query = DNSRecord.parse(packet)
    except Exception:
        return None
    reply = query.reply(ra=1, aa=0)
    reply.header.rcode = RCODE.SERVFAIL
    return reply.pack()


class _Once(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes, done: asyncio.Future[bytes]) -> None:
        self.ident = ident
        self.done = done

    def datagram_received(self, data: bytes, addr: tuple) -> None:
        if data[:2] == self.ident and len(data) >= 12 and data[2] & 0x80 and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


async def _ask_udp(packet: bytes, upstream: Address) -> bytes:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Once(packet[:2], done), remote_addr=upstream
    )
    try:
        transport.sendto(packet)
        return await done
    finally:
        transport.close()


async def _ask_tcp(packet: bytes, upstream: Address) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(struct.pack("!H", len(packet)) + packet)
        await writer.drain()
        while True:
            (length,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(length)
            if data[:2] == packet[:2]:
                return data
    finally:
        writer.close()


async def ask_upstreams(
    packet: bytes, upstreams: list[Address], udp: bool, timeout: float = TIMEOUT
) -> bytes | None:
    """Ask ``upstreams`` in order; the first answer with the client's ID restored, SERVFAIL when
    none answers, None when there is no upstream."""
    if not upstreams or len(packet) < 12:
        return None
    ident = secrets.token_bytes(2)
    ask = _ask_udp if udp else _ask_tcp
    for upstream in upstreams:
        try:
            async with asyncio.timeout(timeout):
                data = await ask(ident + packet[2:], upstream)
            return packet[:2] + data[2:]
        except (OSError, TimeoutError, asyncio.IncompleteReadError, struct.error) as e:
            where = f"{upstream[0]}:{upstream[1]}"
            log.debug("dns upstream failed", extra={"upstream": where, "error": str(e)})
    return servfail(packet)


class TaskDns:
    """Listeners on the addresses tasks use as their nameserver (module docstring).

    ``serve(address)`` is idempotent and answers whether ``address``:``port`` is being served;
    a failure to listen (port 53 taken, not an address of this machine, no privilege for a
    port below 1024) is False, logged once per address and reason.
    """

    def __init__(self, resolver: Resolver, version: Callable[[], int], upstreams: Upstreams,
                 port: int = PORT) -> None:
        self.resolver = resolver
        self.version = version
        self.upstreams = upstreams
        self.port = port
        self.servers: dict[str, DnsServer] = {}
        self._lock = asyncio.Lock()
        self._logged: set[tuple[str, str]] = set()

    async def serve(self, address: str) -> bool:
        async with self._lock:
            if address in self.servers:
                return True
            server = DnsServer(self.resolver, address, self.port, version=self.version, forward=self.forward)
            try:
                await server.start()
            except OSError as e:
                reason = e.strerror or str(e)
                if (address, reason) not in self._logged:
                    self._logged.add((address, reason))
                    log.warning("tasks' DNS not served", extra={"address": f"{address}:{self.port}",
                                                              "error": reason})
                return False
            self.servers[address] = server
            log.info("tasks' DNS served", extra={"address": f"{address}:{self.port}"})
            return True

    async def forward(self, packet: bytes, udp: bool) -> bytes | None:
        own = {(a, s.port) for a, s in self.servers.items()}
        return await ask_upstreams(packet, [u for u in self.upstreams.current() if u not in own], udp)

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()
        self.servers.clear()
