"""The discovery part: Cloud Map API, health checks, DNS and the watch.

* API: ``Route53AutoNaming_v20170314.*`` on the control port (:mod:`discovery.handlers`), plus
  Dockyard's own long poll ``WatchChanges`` (:mod:`discovery.watch`).
* Health: Dockyard probes HTTP/HTTPS/TCP itself (:mod:`discovery.health`). The interval is a
  Dockyard extension carried as the service tag ``dockyard:health-check-interval`` (seconds,
  1 to 300, default 10), because the aws CLI validates HealthCheckConfig against Cloud Map's
  model and would refuse an extra field.
* DNS: every DNS namespace is a zone served on ``dns_port`` (:mod:`discovery.resolver`), and to
  tasks as their resolver, which forwards other names upstream (:mod:`discovery.taskdns`: the
  runner asks ``task_dns.serve(address)`` for the address it gives its tasks).
* State: the store's ``cm_*`` tables, read and written only by :mod:`discovery.data`; reads
  come from an in-memory index (:mod:`discovery.index`).

Other parts reach discovery in process through the :class:`Discovery` that :func:`install`
returns (the assembly hands its members to other parts): ``instances`` registers and deregisters instances
(:class:`discovery.registrar.Registrar`), ``namespace_service_ids(namespace)`` gives a
namespace's service ids (for ECS's ListServicesByNamespace), ``namespace(namespace)`` a
namespace (for ECS Service Connect), ``watch.wait(...)`` follows changes,
``healthy_endpoints(catalog.index, ns, svc)`` reads endpoints, and ``mesh_instances`` is the mesh's
``mesh.seams.InstanceView`` (:class:`MeshInstances`, over the in-memory index).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from discovery import model, tables
from discovery.dns import DnsServer
from discovery.handlers import Context, bind
from discovery.health import Checker
from discovery.index import Catalog
from discovery.model import Namespace
from discovery.registrar import Registrar
from discovery.resolver import make_resolver
from discovery.tables import MIGRATIONS
from discovery.taskdns import TaskDns, Upstreams
from discovery.watch import Watch
from dockyard.aws.protocol import CLOUDMAP, Call
from dockyard.config import ConfigError

if TYPE_CHECKING:
    from dockyard.platform import Platform

__all__ = ["MIGRATIONS", "Discovery", "MeshInstance", "MeshInstances", "install"]


@dataclass(frozen=True)
class MeshInstance:
    """One instance as the mesh sees it (``mesh.seams.Instance``): routable = healthy."""

    instance_id: str
    attributes: dict[str, str]
    healthy: bool


class MeshInstances:
    """The mesh's ``InstanceView``: instances by namespace and service name, from the index
    (which this process's writers keep current), and the topics that change them."""

    change_topics = tables.TOPICS

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def instances(self, namespace: str, service: str) -> list[MeshInstance] | None:
        index = self.catalog.index
        srv = index.service_named(namespace, service)
        if srv is None:
            return None
        return [MeshInstance(i.id, dict(i.attributes), i.routable) for i in index.instances_of(srv.id)]


@dataclass
class Discovery:
    """Discovery's live objects inside one platform."""

    catalog: Catalog
    checker: Checker
    watch: Watch
    instances: Registrar
    task_dns: TaskDns
    dns: DnsServer | None = None

    def namespace_service_ids(self, namespace: str) -> set[str] | None:
        """The ids of the services of the namespace with this id, ARN or name, None when there is
        none (the seam ``runner.seams.NamespaceLookup``); read from the store, as committed."""
        return self.catalog.data.namespace_service_ids(namespace)

    def namespace(self, namespace: str) -> Namespace | None:
        """The namespace with this id, ARN or name (the seam ``runner.seams.NamespaceInfo``:
        Service Connect's namespaces), None when there is none; read from the store."""
        return self.catalog.data.namespace(namespace)

    @property
    def mesh_instances(self) -> MeshInstances:
        """The seam ``mesh.seams.InstanceView``."""
        return MeshInstances(self.catalog)


async def _serve(d: Discovery, platform: Platform) -> AsyncIterator[None]:
    d.catalog.reload()
    await d.checker.start()
    d.dns = DnsServer(make_resolver(lambda: d.catalog.index), platform.config.host, platform.config.dns_port,
                      version=lambda: d.catalog.index.revision)
    await d.dns.start()
    platform.endpoints.append(("dns", f"udp+tcp://{platform.config.address(d.dns.port)}"))
    try:
        yield
    finally:
        await d.task_dns.stop()
        await d.dns.stop()
        await d.checker.stop()


# Answered by control workers too (see dockyard.control.workers): they only read the index.
READONLY = {
    "GetNamespace", "ListNamespaces", "GetService", "ListServices", "GetInstance", "ListInstances",
    "DiscoverInstances", "DiscoverInstancesRevision", "GetInstancesHealthStatus", "GetOperation",
    "ListOperations", "ListTagsForResource",
}


def _synced(catalog: Catalog, handler: Any) -> Any:
    """In a control worker, bring the index up to the store's revision before reading it, so
    a client reads its own writes (which the main process committed) on any connection."""

    async def read(call: Call, params: dict[str, Any]) -> Any:
        current = catalog.store.current_revision()
        if current > catalog.index.revision:
            catalog.reload(current)
        return await handler(call, params)

    return read


def install(platform: Platform) -> Discovery:
    catalog = Catalog(platform.store)
    catalog.reload()
    checker = Checker(catalog.data, catalog)
    config = platform.config
    registrar = Registrar(catalog.data, catalog, on_instances=checker.sync,
                          arn=lambda kind, ident: model.arn(config.region, config.account_id, kind, ident))
    ops = bind(Context(catalog.data, catalog, platform.config, registrar, on_instances=checker.sync))
    watch = Watch(platform.store, catalog)
    try:
        upstreams = Upstreams(platform.config.task_dns_upstream)
    except ValueError as e:
        raise ConfigError(f"config task_dns_upstream: {e}") from None
    task_dns = TaskDns(make_resolver(lambda: catalog.index), lambda: catalog.index.revision, upstreams)
    discovery = Discovery(catalog, checker, watch, registrar, task_dns)
    worker = platform.role == "worker"
    for name, handler in ops.items():
        readonly = name in READONLY
        platform.ops.add(CLOUDMAP, name, _synced(catalog, handler) if worker else handler, readonly)
    platform.ops.add(CLOUDMAP, "WatchChanges", watch.handle)

    def serve(p: Platform) -> AsyncIterator[None]:
        return _serve(discovery, p)

    platform.contexts.append(serve)
    return discovery
