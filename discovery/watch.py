"""The watch: how the mesh, the runner and the CLI follow discovery by revision.

In process, :class:`Watch` ``wait(since, timeout)`` returns the changes after revision
``since`` (waiting up to ``timeout`` seconds for one) together with the revision to pass next
time; :func:`healthy_endpoints` gives the routable instances of a service from the current
index. Over the control port, ``Route53AutoNaming_v20170314.WatchChanges`` (Dockyard's own
operation, signed like every other) is the same long poll::

    {"Since": 41, "TimeoutSeconds": 20, "NamespaceName": "ns", "ServiceName": "web"}
    -> {"Revision": 43, "Changes": [{"Revision": 42, "Type": "INSTANCE", "ServiceId": "srv-...",
        "InstanceId": "i-1"}, ...]}

A change only names what changed; consumers re-read the state (DiscoverInstances or
``healthy_endpoints``) at or after the returned revision.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from discovery import tables
from discovery.errors import InvalidInput, NamespaceNotFound, ServiceNotFound
from discovery.index import Catalog, Index
from dockyard.aws.protocol import Call
from dockyard.store import Change, Store

__all__ = ["Endpoint", "Event", "Watch", "healthy_endpoints"]

MAX_WAIT = 60.0
_TYPES = {tables.NAMESPACE: "NAMESPACE", tables.SERVICE: "SERVICE", tables.INSTANCE: "INSTANCE",
          tables.HEALTH: "HEALTH"}


@dataclass(frozen=True)
class Event:
    """One change: ``type`` is NAMESPACE, SERVICE, INSTANCE (register, deregister,
    attributes) or HEALTH (a flip); ids name the object."""

    revision: int
    type: str
    namespace_id: str = ""
    service_id: str = ""
    instance_id: str = ""

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Revision": self.revision, "Type": self.type}
        for key, value in (("NamespaceId", self.namespace_id), ("ServiceId", self.service_id),
                           ("InstanceId", self.instance_id)):
            if value:
                out[key] = value
        return out


@dataclass(frozen=True)
class Endpoint:
    instance_id: str
    ipv4: str | None
    ipv6: str | None
    port: int | None
    health: str
    attributes: dict[str, str]


def event_from(change: Change) -> Event:
    kind = _TYPES[change.topic]
    if kind == "NAMESPACE":
        return Event(change.revision, kind, namespace_id=change.key)
    if kind == "SERVICE":
        return Event(change.revision, kind, service_id=change.key)
    service_id, _, instance_id = change.key.partition("/")
    return Event(change.revision, kind, service_id=service_id, instance_id=instance_id)


def healthy_endpoints(index: Index, namespace: str, service: str) -> list[Endpoint]:
    """The routable (not UNHEALTHY) instances of ``service`` in ``namespace`` (by name)."""
    srv = index.service_named(namespace, service)
    if srv is None:
        return []
    out = []
    for inst in index.instances_of(srv.id):
        if not inst.routable:
            continue
        a = inst.attributes
        port = a.get("AWS_INSTANCE_PORT")
        out.append(Endpoint(inst.id, a.get("AWS_INSTANCE_IPV4"), a.get("AWS_INSTANCE_IPV6"),
                            int(port) if port and port.isdigit() else None, inst.health, dict(a)))
    return out


class Watch:
    """Long poll over the store's change feed, limited to discovery's topics."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self.store = store
        self.catalog = catalog

    @property
    def index(self) -> Index:
        return self.catalog.index

    @property
    def revision(self) -> int:
        return self.store.revision

    async def wait(
        self, since: int, timeout: float, service_id: str | None = None
    ) -> tuple[int, list[Event]]:
        """Changes after ``since`` (only of ``service_id`` if given) and the revision to
        resume from; ``(revision, [])`` once ``timeout`` seconds pass without one."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = max(0.0, deadline - loop.time())
            changes = await self.store.changes(since, tables.TOPICS, timeout=remaining)
            if not changes:
                return max(since, self.store.revision), []
            events = [event_from(c) for c in changes]
            since = changes[-1].revision
            if service_id is not None:
                events = [e for e in events if e.service_id == service_id]
            if events or loop.time() >= deadline:
                return since, events

    async def handle(self, call: Call, params: dict[str, Any]) -> dict[str, Any]:
        """``WatchChanges``: the long poll over the control API."""
        since = params.get("Since", 0)
        if not isinstance(since, int) or isinstance(since, bool) or since < 0:
            raise InvalidInput("Since must be a revision (an integer >= 0).")
        timeout = params.get("TimeoutSeconds", 20)
        if not isinstance(timeout, int | float) or isinstance(timeout, bool) or not 0 <= timeout <= MAX_WAIT:
            raise InvalidInput(f"TimeoutSeconds must be a number from 0 to {MAX_WAIT:g}.")
        service_id = None
        ns_name, srv_name = params.get("NamespaceName"), params.get("ServiceName")
        if ns_name is not None or srv_name is not None:
            if not isinstance(ns_name, str) or not isinstance(srv_name, str):
                raise InvalidInput("NamespaceName and ServiceName go together.")
            if self.index.namespace_named(ns_name) is None:
                raise NamespaceNotFound(f"Namespace not found: {ns_name}")
            srv = self.index.service_named(ns_name, srv_name)
            if srv is None:
                raise ServiceNotFound(f"Service not found: {srv_name}")
            service_id = srv.id
        revision, events = await self.wait(since, float(timeout), service_id)
        return {"Revision": revision, "Changes": [e.as_json() for e in events]}
