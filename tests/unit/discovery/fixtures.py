"""One known-good index for the pure discovery tests: zone ``example.internal`` with a
MULTIVALUE service ``web`` (A + SRV, 12 instances, one unhealthy), a WEIGHTED service ``db``
(A), and an HTTP namespace ``api``."""

from __future__ import annotations

from discovery.index import Index, build
from discovery.model import Instance, Namespace, Service


def namespace(ident: str, name: str, kind: str = "DNS_PRIVATE", soa_ttl: int | None = 30) -> Namespace:
    return Namespace(ident, f"arn:{ident}", name, kind, "", soa_ttl, "", 0.0)


def service(ident: str, ns: str, name: str, records: list[dict], policy: str = "MULTIVALUE",
            health: dict | None = None) -> Service:
    dns = {"RoutingPolicy": policy, "DnsRecords": records} if records else None
    return Service(ident, f"arn:{ident}", name, ns, "DNS_HTTP" if dns else "HTTP", "", dns, health, None, "",
                   0.0, 7)


def instance(service_id: str, ident: str, ip: str, port: str = "80", health: str = "HEALTHY",
             **attrs: str) -> Instance:
    return Instance(service_id, ident, {"AWS_INSTANCE_IPV4": ip, "AWS_INSTANCE_PORT": port, **attrs}, health)


def sample_index() -> Index:
    namespaces = [namespace("ns-1", "example.internal"), namespace("ns-2", "api", kind="HTTP")]
    check = {"Type": "HTTP", "ResourcePath": "/", "FailureThreshold": 1}
    services = [
        service("srv-web", "ns-1", "web", [{"Type": "A", "TTL": 60}, {"Type": "SRV", "TTL": 30}],
                health=check),
        service("srv-db", "ns-1", "db", [{"Type": "A", "TTL": 5}], policy="WEIGHTED"),
        service("srv-api", "ns-2", "backend", []),
    ]
    instances = [instance("srv-web", f"web-{n}", f"10.0.0.{n}", health="HEALTHY") for n in range(1, 12)]
    instances.append(instance("srv-web", "web-sick", "10.0.0.99", health="UNHEALTHY"))
    instances += [instance("srv-db", "db-1", "10.0.1.1", health="UNKNOWN"),
                  instance("srv-db", "db-2", "10.0.1.2", health="UNKNOWN")]
    return build(namespaces, services, instances, revision=42)
