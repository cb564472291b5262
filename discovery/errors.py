"""Cloud Map's error types, as the botocore model names them.

Some Cloud Map errors carry fields besides the message (``NamespaceAlreadyExists`` names the
existing namespace); :func:`with_fields` attaches them to the envelope.
"""

from __future__ import annotations

from typing import Any

from dockyard.aws.errors import AwsError, error_type

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

NamespaceNotFound = error_type("NamespaceNotFound")
ServiceNotFound = error_type("ServiceNotFound")
InstanceNotFound = error_type("InstanceNotFound")
NamespaceAlreadyExists = error_type("NamespaceAlreadyExists")
ServiceAlreadyExists = error_type("ServiceAlreadyExists")
ResourceInUse = error_type("ResourceInUse")
InvalidInput = error_type("InvalidInput")
DuplicateRequest = error_type("DuplicateRequest")
OperationNotFound = error_type("OperationNotFound")
ResourceLimitExceeded = error_type("ResourceLimitExceeded")
CustomHealthNotFound = error_type("CustomHealthNotFound")
ResourceNotFoundException = error_type("ResourceNotFoundException")
TooManyTagsException = error_type("TooManyTagsException")
RequestLimitExceeded = error_type("RequestLimitExceeded")


def with_fields(error: AwsError, **fields: Any) -> AwsError:
    """``error`` whose envelope also carries ``fields`` (None values are left out)."""
    extra = {k: v for k, v in fields.items() if v is not None}
    base = error.body

    def body() -> dict[str, Any]:
        return {**base(), **extra}

    error.body = body  # type: ignore[method-assign]
    return error
