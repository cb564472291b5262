"""App Mesh's own wire errors (REST-JSON: the code in ``x-amzn-ErrorType``, the status as AWS
answers it)."""

from __future__ import annotations

from dockyard.aws.errors import (
    ConflictException,
    LimitExceededException,
    ResourceInUseException,
    TooManyTagsException,
    register,
)
from dockyard.control.workers import BadRequestException

__all__ = [
    "BadRequestException",
    "ConflictException",
    "LimitExceededException",
    "NotFoundException",
    "ResourceInUseException",
    "TooManyTagsException",
]

# BadRequestException (400) is registered by the control transport, which answers it too;
# TooManyTagsException (400) by dockyard.aws.errors, shared with Cloud Map; ResourceInUseException
# (409) there too, shared with ECS (capacity providers); ConflictException (409) and
# LimitExceededException (400) there too, shared with EventBridge and EventBridge Scheduler.
NotFoundException = register("NotFoundException", 404)
