"""Cloud Map's error types, as the botocore model names them.

Some Cloud Map errors carry fields besides the message (``NamespaceAlreadyExists`` names the
existing namespace); :func:`with_fields` attaches them to the envelope.
"""

from __future__ import annotations

from typing import Any

from dockyard.aws.errors import (
    AwsError,
    ResourceInUse,
    ResourceNotFoundException,
    TooManyTagsException,
    register,
)

__all__ = [
    "CustomHealthNotFound",
    "DuplicateRequest",
    "InstanceNotFound",
    "InvalidInput",
    "NamespaceAlreadyExists",
    "NamespaceNotFound",
    "OperationNotFound",
    "RequestLimitExceeded",
    "ResourceInUse",
    "ResourceLimitExceeded",
    "ResourceNotFoundException",
    "ServiceAlreadyExists",
    "ServiceNotFound",
    "TooManyTagsException",
    "with_fields",
]

NamespaceNotFound = register("NamespaceNotFound")
ServiceNotFound = register("ServiceNotFound")
InstanceNotFound = register("InstanceNotFound")
NamespaceAlreadyExists = register("NamespaceAlreadyExists")
ServiceAlreadyExists = register("ServiceAlreadyExists")
InvalidInput = register("InvalidInput")
DuplicateRequest = register("DuplicateRequest")
OperationNotFound = register("OperationNotFound")
ResourceLimitExceeded = register("ResourceLimitExceeded")
CustomHealthNotFound = register("CustomHealthNotFound")
RequestLimitExceeded = register("RequestLimitExceeded")


def with_fields(error: AwsError, **fields: Any) -> AwsError:
    """``error`` whose envelope also carries ``fields`` (None values are left out)."""
    extra = {k: v for k, v in fields.items() if v is not None}
    base = error.body

    def body() -> dict[str, Any]:
        return {**base(), **extra}

    error.body = body  # type: ignore[method-assign]
    return error
