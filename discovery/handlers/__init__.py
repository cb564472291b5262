"""Cloud Map's API (``Route53AutoNaming_v20170314``), one module per resource.

:data:`HANDLERS` maps each operation name to its handler ``(ctx, call, params)``;
:func:`bind` binds them to one :class:`~discovery.handlers.base.Context`. Handlers read
the catalog's index, write through :class:`discovery.data.Data` (instances through
:class:`discovery.registrar.Registrar`) and reload the catalog before answering, so a client
reads its own writes. Asynchronous operations (namespaces, instances, UpdateService) complete
inside the request: their OperationId is already SUCCESS when returned. Errors are the
:mod:`discovery.errors` types; the protocol layer writes the envelope.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from discovery.handlers import discover, instances, namespaces, operations, services, tags
from discovery.handlers.base import Context
from dockyard.aws.protocol import Call

__all__ = ["HANDLERS", "Context", "bind"]

Handler = Callable[..., Awaitable[Any]]
Bound = Callable[[Call, dict[str, Any]], Awaitable[Any]]

HANDLERS: dict[str, Handler] = {
    "CreateHttpNamespace": namespaces.create_http,
    "CreatePrivateDnsNamespace": namespaces.create_private_dns,
    "CreatePublicDnsNamespace": namespaces.create_public_dns,
    "GetNamespace": namespaces.get,
    "ListNamespaces": namespaces.list_all,
    "UpdateHttpNamespace": namespaces.update,
    "UpdatePrivateDnsNamespace": namespaces.update,
    "UpdatePublicDnsNamespace": namespaces.update,
    "DeleteNamespace": namespaces.delete,
    "CreateService": services.create,
    "GetService": services.get,
    "ListServices": services.list_all,
    "UpdateService": services.update,
    "DeleteService": services.delete,
    "RegisterInstance": instances.register,
    "DeregisterInstance": instances.deregister,
    "GetInstance": instances.get,
    "ListInstances": instances.list_all,
    "DiscoverInstances": discover.discover,
    "DiscoverInstancesRevision": discover.revision,
    "GetInstancesHealthStatus": instances.health_status,
    "UpdateInstanceCustomHealthStatus": instances.update_custom_health,
    "GetOperation": operations.get,
    "ListOperations": operations.list_all,
    "TagResource": tags.tag,
    "UntagResource": tags.untag,
    "ListTagsForResource": tags.list_all,
}


def bind(ctx: Context) -> dict[str, Bound]:
    """Every handler bound to ``ctx``, by operation name (a ``partial``: no extra frame)."""
    return {name: partial(handler, ctx) for name, handler in HANDLERS.items()}
