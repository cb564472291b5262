"""Instance registration for other parts in process (the runner's ``InstanceRegistry`` seam).

Goes through the same code as the RegisterInstance / DeregisterInstance operations (checks,
operation record, index reload, health sync), without an API call object.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from discovery.errors import InstanceNotFound, ServiceNotFound

if TYPE_CHECKING:
    from discovery.api import CloudMap

__all__ = ["Registrar"]


class Registrar:
    """``register(service_id, instance_id, attributes)`` and ``deregister(service_id, instance_id)``
    over discovery's API object. Deregistering an unknown instance or service is a no-op."""

    def __init__(self, api: CloudMap) -> None:
        self.api = api

    async def register(self, service_id: str, instance_id: str, attributes: Mapping[str, str]) -> None:
        params = {"ServiceId": service_id, "InstanceId": instance_id, "Attributes": dict(attributes)}
        await self.api.register_instance(None, params)  # type: ignore[arg-type]

    async def deregister(self, service_id: str, instance_id: str) -> None:
        try:
            params = {"ServiceId": service_id, "InstanceId": instance_id}
            await self.api.deregister_instance(None, params)  # type: ignore[arg-type]
        except (InstanceNotFound, ServiceNotFound):
            return
