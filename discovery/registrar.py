"""Instance registration: the one path by which instances enter and leave discovery.

:class:`Registrar` serves both the RegisterInstance/DeregisterInstance handlers
(:meth:`Registrar.put`, :meth:`Registrar.remove`) and other parts in process, through the seam
``Discovery.instances`` (:meth:`Registrar.register`, :meth:`Registrar.deregister`): the runner
registers the tasks of an ECS service with ``serviceRegistries`` or Service Connect there, and
creates a Service Connect service's Cloud Map service with :meth:`Registrar.ensure_service`. Both validate the
attributes as Cloud Map does, commit, refresh the catalog and resync the health checker before
returning, so a caller reads its own write (DiscoverInstances, DNS, the watch).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from discovery import model
from discovery.data import Data
from discovery.errors import InvalidInput, NamespaceNotFound, ServiceAlreadyExists, ServiceNotFound
from discovery.index import Catalog
from discovery.model import Service

__all__ = ["Registrar", "ident"]

log = logging.getLogger("dockyard.discovery")


def ident(value: str) -> str:
    """An id from an id or an ARN (``arn:...:service/srv-x`` -> ``srv-x``)."""
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


class Registrar:
    """Registers and deregisters instances (see module docstring)."""

    def __init__(self, data: Data, catalog: Catalog,
                 on_instances: Callable[[str], None] | None = None,
                 arn: Callable[[str, str], str] | None = None) -> None:
        self.data = data
        self.catalog = catalog
        self.on_instances = on_instances or (lambda service_id: None)
        self.arn = arn or (lambda kind, ident: model.arn("us-east-1", "000000000000", kind, ident))

    # -- the seam other parts use ----------------------------------------------------------
    async def register(self, service_id: str, instance_id: str, attributes: Mapping[str, str]) -> None:
        """Register (or re-register with new attributes) ``instance_id`` in the service with this
        id or ARN. Raises ServiceNotFound, or InvalidInput / ResourceLimitExceeded for what
        RegisterInstance would refuse (an invalid id, attributes the service's records need)."""
        await self.put(self._service(service_id), model.check_instance_id(instance_id), dict(attributes))

    async def deregister(self, service_id: str, instance_id: str) -> None:
        """Deregister ``instance_id``; an unknown service or instance is not an error (it is gone)."""
        srv = self.catalog.index.services.get(ident(service_id))
        if srv is not None:
            await self.remove(srv, instance_id)

    async def ensure_service(self, namespace: str, name: str) -> str:
        """The ARN of the service ``name`` (case-insensitive) in the namespace with this id, ARN or
        name; created first when missing, as ECS creates a Service Connect ``discoveryName``:
        type HTTP, tagged ``AmazonECSManaged=true``, its CreatorRequestId derived from the
        namespace and name (two concurrent calls create one service). Raises NamespaceNotFound."""
        ns = self.data.namespace(namespace)
        if ns is None:
            raise NamespaceNotFound(f"Namespace not found: {namespace}")
        existing = self.catalog.index.services_by_name.get((ns.id, name.lower()))
        if existing is not None:
            return existing.arn
        srv_id = model.new_id("srv")
        new = Service(srv_id, self.arn("service", srv_id), model.check_service_name(name), ns.id, "HTTP", "",
                      None, None, None, f"ecs-service-connect-{ns.id}-{name.lower()}"[:64], time.time(), 0)
        try:
            tags = [{"Key": "AmazonECSManaged", "Value": "true"}]
            srv_id = await self.data.create_service(new, tags, ns.name)
        except ServiceAlreadyExists as e:  # created meanwhile by someone else: use it
            srv_id = str(e.body().get("ServiceId") or "")
            if not srv_id:
                raise
        self.catalog.reload()
        log.info("service created for Service Connect", extra={"service": name, "id": srv_id})
        return self.catalog.index.services[srv_id].arn

    # -- what the handlers and the seam share ----------------------------------------------
    async def put(self, service: Service, instance_id: str, attributes: dict[str, str],
                  request_id: str = "") -> str:
        """Validate ``attributes`` for ``service`` and register; the operation id."""
        attributes = model.check_attributes(attributes)
        model.check_instance_for_service(attributes, service)
        op = await self.data.put_instance(service, instance_id, attributes, request_id)
        self._after(service.id)
        log.info("instance registered", extra={"service": service.name, "instance": instance_id})
        return op

    async def remove(self, service: Service, instance_id: str) -> str | None:
        """Deregister; the operation id, or None when there was no such instance."""
        op = await self.data.delete_instance(service.id, instance_id)
        if op is not None:
            self._after(service.id)
            log.info("instance deregistered", extra={"service": service.name, "instance": instance_id})
        return op

    def _service(self, service_id: str) -> Service:
        return find_service(self.catalog, service_id, "ServiceId")

    def _after(self, service_id: str) -> None:
        self.catalog.reload_service(service_id)
        self.on_instances(service_id)


def find_service(catalog: Catalog, value: object, key: str = "Id") -> Service:
    """The service with this id or ARN (InvalidInput naming ``key`` if missing, ServiceNotFound)."""
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key} is required.")
    srv = catalog.index.services.get(ident(value))
    if srv is None:
        raise ServiceNotFound(f"Service not found: {value}")
    return srv
