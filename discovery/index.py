"""The in-memory index that reads (DiscoverInstances, DNS, the mesh) are answered from.

An :class:`Index` is an immutable snapshot of every namespace, service and instance. The
:class:`Catalog` holds the current one and replaces it after each committed write (the
writers are all in this process: the API handlers and the health checker), so a read never
runs SQL and never sees a half-applied change.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from discovery.data import Data
from discovery.model import Instance, Namespace, Service
from dockyard.store import Store

__all__ = ["Catalog", "Index", "build"]


@dataclass(frozen=True)
class Index:
    revision: int = 0
    namespaces: dict[str, Namespace] = field(default_factory=dict)
    namespaces_by_name: dict[str, Namespace] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    services_by_name: dict[tuple[str, str], Service] = field(default_factory=dict)
    instances: dict[str, dict[str, Instance]] = field(default_factory=dict)
    zones: dict[str, Namespace] = field(default_factory=dict)

    def namespace_named(self, name: str) -> Namespace | None:
        return self.namespaces_by_name.get(name) or self.namespaces_by_name.get(name.rstrip(".").lower())

    def service_named(self, namespace_name: str, service_name: str) -> Service | None:
        ns = self.namespace_named(namespace_name)
        if ns is None:
            return None
        return self.services_by_name.get((ns.id, service_name)) or self.services_by_name.get(
            (ns.id, service_name.lower())
        )

    def instances_of(self, service_id: str) -> list[Instance]:
        return list(self.instances.get(service_id, {}).values())


def _key(name: str) -> str:
    return name.lower()


def build(
    namespaces: Iterable[Namespace], services: Iterable[Service], instances: Iterable[Instance], revision: int
) -> Index:
    """An index over the given rows (pure)."""
    ns = {n.id: n for n in namespaces}
    srv = {s.id: s for s in services}
    inst: dict[str, dict[str, Instance]] = {s: {} for s in srv}
    for i in instances:
        inst.setdefault(i.service_id, {})[i.id] = i
    return Index(
        revision=revision,
        namespaces=ns,
        namespaces_by_name={n.name: n for n in ns.values()},
        services=srv,
        services_by_name={(s.namespace_id, _key(s.name)): s for s in srv.values()},
        instances=inst,
        zones={n.name.lower(): n for n in ns.values() if n.is_dns},
    )


class Catalog:
    """The current :class:`Index`, reloaded from the store after writes."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.data = Data(store)
        self.index = Index()

    def reload(self, revision: int | None = None) -> Index:
        """Rebuild the whole index (after namespace and service changes, and at start), as of
        ``revision`` (default: this process's view of the store's revision)."""
        rev = self.store.revision if revision is None else revision
        self.index = build(*self.data.load_all(), revision=rev)
        return self.index

    def reload_service(self, service_id: str) -> Index:
        """Refresh one service and its instances (after instance and health changes)."""
        service, instances = self.data.load_service(service_id)
        old = self.index
        if service is None:
            return self.reload()
        services = {**old.services, service_id: service}
        by_name = {**old.services_by_name, (service.namespace_id, _key(service.name)): service}
        per = {**old.instances, service_id: {i.id: i for i in instances}}
        self.index = replace(
            old, revision=self.store.revision, services=services, services_by_name=by_name, instances=per
        )
        return self.index
