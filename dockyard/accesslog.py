"""Access log: one JSON line per HTTP request, written once the response has been sent.

A line (logger ``dockyard.access``, level info) carries ``msg: "request"`` and::

    request_id, method, path, status, bytes, duration (seconds), principal (when known),
    operation (when known)

``bytes`` is what was written for the response, status line and headers included (as
aiohttp counts it), plus ``response["sendfile_bytes"]``: a body sent with ``sendfile`` (the
registry's blobs) bypasses aiohttp's writer and is counted by the response itself.

``principal`` is ``request["principal"]`` when a handler set it (the control API's
:func:`control_middleware` sets the access key id that signed the request, from
``dockyard.logs.principal``), else the subject of the registry's ``request["auth"]`` (a user
name; ``anonymous`` for an anonymous pull). ``operation`` is ``request["operation"]``, else
the AWS operation the request names (:func:`operation_of`: ``X-Amz-Target``, or a Smithy
RPC v2 path); a REST request is known by its path.

The control workers (``dockyard.control.workers``) answer on their own HTTP transport and
write the same line through :func:`log_line`; what they forward to the main process is
logged once, by the main process, which answers it.

The ``access_log`` setting chooses where lines go: ``true`` (the default: with the other logs,
JSON on stderr), ``false`` (none), or a file path (JSON lines appended to that file only).
Use it as aiohttp's access logger: ``web.AppRunner(app, access_log=logger_for(setting),
access_log_class=AccessLogger)``; ``logger_for`` returns None when the log is off, which
turns aiohttp's access logging off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

__all__ = ["LOGGER", "AccessLogger", "control_middleware", "fields", "log_line", "logger_for", "operation_of"]

LOGGER = "dockyard.access"
_OFF = {"false", "off", "no", "0", "none", ""}
_ON = {"true", "on", "yes", "1", "stderr"}


def operation_of(target: str, path: str) -> str:
    """The AWS operation a control request names: the operation of ``X-Amz-Target``
    (``target``), or of a Smithy RPC v2 path (``/service/<svc>/operation/<Op>``); "" if none."""
    if target:
        return target.rpartition(".")[2]
    if path.startswith("/service/"):
        _, sep, name = path.partition("/operation/")
        return name if sep and "/" not in name else ""
    return ""


def line(
    request_id: str, method: str, path: str, status: int, size: int, duration: float,
    principal: str | None = None, operation: str | None = None,
) -> dict[str, Any]:
    """The fields of one access line, in their order (pure)."""
    out: dict[str, Any] = {
        "request_id": request_id, "method": method, "path": path, "status": status, "bytes": size,
        "duration": round(duration, 6),
    }
    if principal:
        out["principal"] = principal
    if operation:
        out["operation"] = operation
    return out


def fields(request: Any, response: Any, duration: float) -> dict[str, Any]:
    """The fields of one access line of an aiohttp request (pure: reads the request and
    response only)."""
    principal = request.get("principal")
    if principal is None:
        principal = getattr(request.get("auth"), "subject", None)
    operation = request.get("operation")
    if operation is None:
        headers = getattr(request, "headers", {})
        operation = operation_of(headers.get("X-Amz-Target", ""), request.path)
    return line(
        request.get("request_id", ""), request.method, request.path, response.status,
        response.body_length + int(response.get("sendfile_bytes", 0)), duration, principal, operation,
    )


def log_line(logger: logging.Logger | None, out: dict[str, Any]) -> None:
    """Write one access line (``out`` from :func:`line`) to ``logger`` (None: the log is off)."""
    if logger is not None:
        logger.info("request", extra=out)


@web.middleware
async def control_middleware(request: web.Request, handler: Callable) -> web.StreamResponse:
    """For the control app: the principal the AWS layer authenticated (``dockyard.logs.
    principal``, set by ``Operations.authenticate``) becomes ``request["principal"]``."""
    from dockyard import logs

    token = logs.principal.set("")
    try:
        return await handler(request)
    finally:
        request["principal"] = logs.principal.get()
        logs.principal.reset(token)


class AccessLogger(AbstractAccessLogger):
    """aiohttp's hook: called after each response is sent."""

    def log(self, request: Any, response: Any, time: float) -> None:
        self.logger.info("request", extra=fields(request, response, time))

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


def logger_for(setting: str) -> logging.Logger | None:
    """The logger the ``access_log`` setting asks for (None: off). A path gets a handler of
    its own (JSON lines, appended) and does not reach stderr."""
    from dockyard.logs import JsonFormatter

    value = str(setting).strip()
    if value.lower() in _OFF:
        return None
    logger = logging.getLogger(LOGGER)
    if value.lower() in _ON:
        logger.propagate = True
        return logger
    handler = logging.FileHandler(value, encoding="utf-8")
    handler.setFormatter(JsonFormatter())
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger
