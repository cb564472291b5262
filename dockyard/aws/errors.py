"""AWS-style errors: raised anywhere below a handler, written once by the dispatcher.

Every error the control API returns is a subclass of :class:`AwsError` with its wire name
(``__type``) and HTTP status as class attributes, so a handler says ``raise
ClusterNotFoundException("Cluster not found.")`` and the dispatcher writes
``{"__type": "ClusterNotFoundException", "message": "Cluster not found."}`` with status 400.

Each wire name is registered once, in :data:`CODES`: the errors several services share
(``InvalidParameterException``, ``ResourceNotFoundException``, ``ClientException``, ...) are
defined here and imported by the parts; a part defines its service-specific ones with
:func:`register`, which refuses a name already taken (two parts giving the same name two
statuses would otherwise go unnoticed). A direct subclass of :class:`AwsError` registers its
own name the same way; a subclass of a registered error is a kind of it and registers nothing.
"""

from __future__ import annotations

__all__ = [
    "CODES",
    "AccessDeniedException",
    "AwsError",
    "ClientException",
    "ConflictException",
    "IncompleteSignatureException",
    "InvalidParameterException",
    "InvalidSignatureException",
    "LimitExceededException",
    "MissingAuthenticationTokenException",
    "RequestEntityTooLargeException",
    "ResourceInUse",
    "ResourceInUseException",
    "ResourceNotFoundException",
    "SerializationException",
    "ServerException",
    "ServiceUnavailable",
    "TooManyTagsException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationException",
    "error_type",
    "register",
]

CODES: dict[str, type[AwsError]] = {}
"""Every registered wire error by its ``__type``."""



class AwsError(Exception):
    """Base of every control-API error; ``code`` defaults to the class name."""

    status: int = 400
    code: str = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # A direct subclass is a wire error of its own name; a subclass of that is a kind of
        # it and answers with the same ``__type`` (``QueryError`` is an InvalidParameterException).
        if cls.__bases__[0] is AwsError:
            if "code" not in cls.__dict__:
                cls.code = cls.__name__
            _claim(cls.code, cls)

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def _claim(code: str, cls: type[AwsError]) -> None:
    if code in CODES:
        raise ValueError(f"AWS error {code} registered twice (first by {CODES[code].__module__})")
    CODES[code] = cls


def register(name: str, status: int = 400) -> type[AwsError]:
    """Register the wire error ``name`` answering with ``status`` and return its exception
    class; a name is registered only once (``ValueError`` otherwise)."""
    return type(name, (AwsError,), {"status": status, "code": name})


error_type = register
"""The former name of :func:`register` (kept for callers not yet renamed)."""


# -- errors several services share (ECS, Cloud Map, ECR, App Mesh, ... use the same names) -----

InvalidParameterException = register("InvalidParameterException")
ResourceNotFoundException = register("ResourceNotFoundException")
ClientException = register("ClientException")
ServerException = register("ServerException", 500)
AccessDeniedException = register("AccessDeniedException")
TooManyTagsException = register("TooManyTagsException")  # Cloud Map and App Mesh
ResourceInUseException = register("ResourceInUseException", 409)  # App Mesh (409 there) and ECS
ResourceInUse = register("ResourceInUse")  # Cloud Map and ELBv2
ConflictException = register("ConflictException", 409)  # App Mesh and EventBridge Scheduler
LimitExceededException = register("LimitExceededException")  # App Mesh and EventBridge


# -- errors of the protocol layer itself ---------------------------------------------------


class SerializationException(AwsError):
    pass


class UnknownOperationException(AwsError):
    pass


class ValidationException(AwsError):
    pass


class RequestEntityTooLargeException(AwsError):
    status = 413


class MissingAuthenticationTokenException(AwsError):
    status = 403


class IncompleteSignatureException(AwsError):
    status = 400


class InvalidSignatureException(AwsError):
    status = 403


class UnrecognizedClientException(AwsError):
    status = 403


class ServiceUnavailable(AwsError):
    """The state store cannot be reached now (AWS's generic 503, which SDKs retry); answered
    with ``Retry-After``."""

    status = 503
