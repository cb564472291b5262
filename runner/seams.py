"""What the runner needs from other parts, as small typed interfaces (consumer side).

The assembly (:func:`dockyard.platform.assemble`) fills them in; the runner imports no other
part. All are optional: without ``InstanceRegistry`` tasks are not registered anywhere,
without ``PullAuth`` hosts pull anonymously, without ``TaskResolver`` tasks keep the
engine's default nameservers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

__all__ = ["InstanceRegistry", "PullAuth", "TaskResolver"]


class InstanceRegistry(Protocol):
    """Where a service's running tasks are registered (Cloud Map in Dockyard).

    ``service_id`` is the registry's own service id (the last part of a ``registryArn``),
    ``instance_id`` the task id."""

    async def register(self, service_id: str, instance_id: str, attributes: Mapping[str, str]) -> None:
        """Create or replace the instance. Raises if the service does not exist or refuses the
        attributes."""
        ...

    async def deregister(self, service_id: str, instance_id: str) -> None:
        """Remove the instance; an unknown instance (or service) is not an error."""
        ...


class PullAuth(Protocol):
    """Docker ``auth_config`` (``{"username", "password"}``) for pulls from Dockyard's own
    registry, made on first call; None when pulls are anonymous."""

    async def __call__(self) -> dict[str, str] | None: ...


class TaskResolver(Protocol):
    """The resolver tasks get as their nameserver (Dockyard's DNS, forwarding other names)."""

    async def serve(self, address: str) -> bool:
        """Serve DNS on ``address`` port 53 (idempotent); False when that cannot be done, the
        tasks then keep the engine's default nameservers."""
        ...
