"""AWS-style errors: raised anywhere below a handler, written once by the dispatcher.

Every error the control API returns is a subclass of :class:`AwsError` with its wire name
(``__type``) and HTTP status as class attributes, so a handler says ``raise
ClusterNotFoundException("Cluster not found.")`` and the dispatcher writes
``{"__type": "ClusterNotFoundException", "message": "Cluster not found."}`` with status 400.
Parts define their own service-specific errors with :func:`error_type`.
"""

from __future__ import annotations

__all__ = [
    "AwsError",
    "IncompleteSignatureException",
    "InvalidSignatureException",
    "MissingAuthenticationTokenException",
    "RequestEntityTooLargeException",
    "SerializationException",
    "UnknownOperationException",
    "UnrecognizedClientException",
    "ValidationException",
    "error_type",
]


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
        if "code" not in cls.__dict__ and cls.__bases__[0] is AwsError:
            cls.code = cls.__name__

    def body(self) -> dict[str, str]:
        return {"__type": self.code, "message": self.message}


def error_type(name: str, status: int = 400) -> type[AwsError]:
    """Make an ``AwsError`` subclass named ``name`` answering with ``status``."""
    return type(name, (AwsError,), {"status": status, "code": name})


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
