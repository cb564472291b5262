"""Access log: one JSON line per HTTP request, written once the response has been sent.

A line (logger ``dockyard.access``, level info) carries ``msg: "request"`` and::

    request_id, method, path, status, bytes, duration (seconds), principal (when known),
    operation (when known)

``bytes`` is what was written for the response, status line and headers included (as
aiohttp counts it), plus ``response["sendfile_bytes"]``: a body sent with ``sendfile`` (the
registry's blobs) bypasses aiohttp's writer and is counted by the response itself.

``principal`` is ``request["principal"]`` when a handler set it, else the subject of the
registry's ``request["auth"]`` (a user name; ``anonymous`` for an anonymous pull);
``operation`` is ``request["operation"]`` (an AWS operation, for the control API).

The ``access_log`` setting chooses where lines go: ``true`` (the default: with the other logs,
JSON on stderr), ``false`` (none), or a file path (JSON lines appended to that file only).
Use it as aiohttp's access logger: ``web.AppRunner(app, access_log=logger_for(setting),
access_log_class=AccessLogger)``; ``logger_for`` returns None when the log is off, which
turns aiohttp's access logging off.
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp.abc import AbstractAccessLogger

__all__ = ["LOGGER", "AccessLogger", "fields", "logger_for"]

LOGGER = "dockyard.access"
_OFF = {"false", "off", "no", "0", "none", ""}
_ON = {"true", "on", "yes", "1", "stderr"}


def fields(request: Any, response: Any, duration: float) -> dict[str, Any]:
    """The fields of one access line (pure: reads the request and response only)."""
    out: dict[str, Any] = {
        "request_id": request.get("request_id", ""),
        "method": request.method,
        "path": request.path,
        "status": response.status,
        "bytes": response.body_length + int(response.get("sendfile_bytes", 0)),
        "duration": round(duration, 6),
    }
    principal = request.get("principal")
    if principal is None:
        principal = getattr(request.get("auth"), "subject", None)
    if principal:
        out["principal"] = principal
    operation = request.get("operation")
    if operation:
        out["operation"] = operation
    return out


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
