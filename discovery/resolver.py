"""The DNS zone logic (pure): a query and an :class:`~discovery.index.Index` in, a reply out.

Each DNS namespace (private or public) is a zone Dockyard is authoritative for:

* ``<zone>``: SOA and NS; any other type is NODATA (SOA in the authority section).
* ``<service>.<zone>``: A, AAAA, SRV or CNAME from the service's DnsConfig, with its TTLs,
  built from routable instances (not UNHEALTHY); instances sharing an address give one A/AAAA
  record. MULTIVALUE gives up to 8 in random order,
  WEIGHTED one at random. SRV answers ``1 1 <port> <instance>.<service>.<zone>`` and adds the
  targets' A/AAAA records to the additional section.
* ``<instance>.<service>.<zone>``: that instance's A/AAAA (the SRV targets).
* Any other name in a zone: NXDOMAIN; a name in no zone: REFUSED. No recursion, ever.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable

from dnslib import AAAA, CNAME, NS, QTYPE, RCODE, RR, SOA, SRV, A, DNSRecord

from discovery.index import Index
from discovery.model import Instance, Namespace, Service

__all__ = ["MAX_MULTIVALUE", "NAMESERVER", "instance_label", "make_resolver", "resolve"]

MAX_MULTIVALUE = 8
NAMESERVER = "ns1.dockyard.internal."
_LABEL = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")
_ATTR = {QTYPE.A: "AWS_INSTANCE_IPV4", QTYPE.AAAA: "AWS_INSTANCE_IPV6"}
_RDATA = {QTYPE.A: A, QTYPE.AAAA: AAAA}


def instance_label(instance_id: str) -> str:
    """The DNS label naming an instance: its id when that is a valid label, else a hash."""
    if _LABEL.match(instance_id):
        return instance_id.lower()
    return "i-" + hashlib.sha1(instance_id.encode()).hexdigest()[:16]


def _find_zone(index: Index, name: str) -> tuple[Namespace, str] | None:
    """The zone holding ``name`` (lower-case, no trailing dot) and the name relative to it."""
    labels = name.split(".")
    for i in range(len(labels)):
        zone = index.zones.get(".".join(labels[i:]))
        if zone is not None:
            return zone, ".".join(labels[:i])
    return None


def _soa(zone: Namespace, revision: int) -> RR:
    ttl = zone.soa_ttl if zone.soa_ttl is not None else 15
    return RR(
        zone.name + ".", QTYPE.SOA, ttl=ttl,
        rdata=SOA(NAMESERVER, f"hostmaster.{zone.name}.", (revision % 2**32, 7200, 900, 1209600, ttl)),
    )


def _pick(service: Service, candidates: list[Instance], rng: random.Random) -> list[Instance]:
    if not candidates:
        return []
    if (service.dns_config or {}).get("RoutingPolicy") == "WEIGHTED":
        return [rng.choice(candidates)]
    if len(candidates) > MAX_MULTIVALUE:
        return rng.sample(candidates, MAX_MULTIVALUE)
    out = list(candidates)
    rng.shuffle(out)
    return out


def _one_per_address(instances: list[Instance], attribute: str) -> list[Instance]:
    """The first instance of each distinct ``attribute`` value (instances without one left out):
    two instances on one address are one A/AAAA record."""
    seen: dict[str, Instance] = {}
    for inst in instances:
        value = inst.attributes.get(attribute)
        if value and value not in seen:
            seen[value] = inst
    return list(seen.values())


def _address_rrs(name: str, instance: Instance, qtype: int, ttl: int) -> list[RR]:
    value = instance.attributes.get(_ATTR[qtype])
    if not value:
        return []
    return [RR(name, qtype, ttl=ttl, rdata=_RDATA[qtype](value))]


def _service_answer(reply: DNSRecord, qname: str, zone: Namespace, service: Service, qtype: int,
                    index: Index, rng: random.Random) -> None:
    routable = [i for i in index.instances_of(service.id) if i.routable]
    if qtype in (QTYPE.A, QTYPE.AAAA):
        ttl = service.ttl(QTYPE[qtype])
        if ttl is None:
            return
        for inst in _pick(service, _one_per_address(routable, _ATTR[qtype]), rng):
            reply.add_answer(*_address_rrs(qname, inst, qtype, ttl))
    elif qtype == QTYPE.SRV:
        ttl = service.ttl("SRV")
        if ttl is None:
            return
        with_port = [i for i in routable if i.attributes.get("AWS_INSTANCE_PORT", "").isdigit()]
        for inst in _pick(service, with_port, rng):
            target = f"{instance_label(inst.id)}.{service.name.lower()}.{zone.name}."
            port = int(inst.attributes["AWS_INSTANCE_PORT"])
            reply.add_answer(RR(qname, QTYPE.SRV, ttl=ttl, rdata=SRV(1, 1, port, target)))
            for kind in (QTYPE.A, QTYPE.AAAA):
                extra_ttl = service.ttl(QTYPE[kind])
                for rr in _address_rrs(target, inst, kind, ttl if extra_ttl is None else extra_ttl):
                    reply.add_ar(rr)
    if qtype in (QTYPE.CNAME, QTYPE.A, QTYPE.AAAA) and not reply.rr:
        ttl = service.ttl("CNAME")
        if ttl is None:
            return
        with_cname = [i for i in routable if i.attributes.get("AWS_INSTANCE_CNAME")]
        for inst in _pick(service, with_cname, rng)[:1]:
            cname = inst.attributes["AWS_INSTANCE_CNAME"].rstrip(".") + "."
            reply.add_answer(RR(qname, QTYPE.CNAME, ttl=ttl, rdata=CNAME(cname)))


def _instance_answer(reply: DNSRecord, qname: str, service: Service, instance: Instance, qtype: int) -> None:
    if qtype not in (QTYPE.A, QTYPE.AAAA) or not instance.routable:
        return
    ttl = service.ttl(QTYPE[qtype])
    if ttl is None:
        ttl = service.ttl("SRV")
    if ttl is not None:
        for rr in _address_rrs(qname, instance, qtype, ttl):
            reply.add_answer(rr)


def resolve(index: Index, query: DNSRecord, rng: random.Random | None = None) -> DNSRecord:
    """The authoritative reply to ``query`` from ``index`` (see module docstring)."""
    rng = rng or random.Random()
    reply = query.reply(ra=0, aa=1)
    question = query.questions[0]
    qname = str(question.qname).lower()
    name = qname.rstrip(".")
    qtype = question.qtype
    found = _find_zone(index, name)
    if found is None or question.qclass not in (1, 255):
        reply.header.aa = 0
        reply.header.rcode = RCODE.REFUSED
        return reply
    zone, rel = found
    if rel == "":
        if qtype in (QTYPE.SOA, QTYPE.ANY):
            reply.add_answer(_soa(zone, index.revision))
        if qtype in (QTYPE.NS, QTYPE.ANY):
            reply.add_answer(RR(qname, QTYPE.NS, ttl=zone.soa_ttl or 15, rdata=NS(NAMESERVER)))
        if not reply.rr:
            reply.add_auth(_soa(zone, index.revision))
        return reply
    service = index.services_by_name.get((zone.id, rel))
    if service is not None and service.dns_config:
        _service_answer(reply, qname, zone, service, qtype, index, rng)
    else:
        head, _, parent = rel.partition(".")
        owner = index.services_by_name.get((zone.id, parent)) if parent else None
        instance = None
        if owner is not None and owner.dns_config:
            instance = next((i for i in index.instances_of(owner.id) if instance_label(i.id) == head), None)
        if instance is not None and owner is not None:
            _instance_answer(reply, qname, owner, instance, qtype)
        elif service is None and not any(
            z == zone.id and n.endswith("." + rel) for z, n in index.services_by_name
        ):
            reply.header.rcode = RCODE.NXDOMAIN
    if not reply.rr:
        reply.add_auth(_soa(zone, index.revision))
    return reply


def make_resolver(
    current: Callable[[], Index], rng: random.Random | None = None
) -> Callable[[DNSRecord], DNSRecord]:
    """A :data:`discovery.dns.Resolver` answering from whatever index ``current()`` returns."""
    rng = rng or random.Random()

    def resolver(query: DNSRecord) -> DNSRecord:
        return resolve(current(), query, rng)

    return resolver
