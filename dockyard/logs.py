"""JSON-lines logging; every line carries the request id of the request it belongs to.

No line carries a credential: :func:`redact` runs over every formatted line (message, extra
fields and traceback alike) and replaces the value of an ``Authorization`` or
``Proxy-Authorization`` header (after its scheme), of ``X-Amz-Security-Token``,
``X-Amz-Signature`` and ``Signature=``, of a ``password`` or ``secret`` field (form, JSON or
Python repr), and of a ``Cookie`` header with ``[redacted]``, whatever the case and however a
repr or JSON escaped the quotes around them."""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import random
import re
import sys
import time

__all__ = ["JsonFormatter", "new_request_id", "principal", "redact", "request_id", "setup"]

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
# Who signed the request being answered (an access key id), once the AWS layer verified it;
# the access log reads it (dockyard.accesslog).
principal: contextvars.ContextVar[str] = contextvars.ContextVar("principal", default="")

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


_ID_PREFIX = f"{random.getrandbits(80):020x}"  # per process
_id_counter = itertools.count()


def new_request_id() -> str:
    """32 hex digits: a random per-process prefix and a counter (unique, and cheaper than
    drawing 128 random bits per request)."""
    rid = f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFF:012x}"
    request_id.set(rid)
    return rid


# a name, its separator (``: ``, ``=``, ``": "``, ``': '``, escaped quotes too), then the value
_SEP = r"""(?:\\?["'])?\s*[:=]\s*(?:\\?["'])?\s*"""
_SECRET = re.compile(
    r"(?i)(\b(?:proxy-)?authorization" + _SEP + r"(?:(?:basic|bearer|digest|aws4-hmac-sha256)\s+)?)"
    r"[^\s\"'\\,&]+"
    r"|(\b(?:x-amz-security-token|x-amz-signature|signature|cookie|set-cookie|"
    r"[a-z_-]*password|[a-z_-]*secret(?:_access_key|accesskey)?)" + _SEP + r")[^\s\"'\\,&;]+"
    r"|(\b(?:basic|bearer)\s+)[A-Za-z0-9+/=._~-]{12,}"
)


def _hide(match: re.Match[str]) -> str:
    return (match.group(1) or match.group(2) or match.group(3)) + "[redacted]"


def redact(line: str) -> str:
    """``line`` with every credential in it replaced by ``[redacted]`` (module docstring)."""
    return _SECRET.sub(_hide, line)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": round(record.created, 3),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            out["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(out, separators=(",", ":")))


def setup(level: str = "info") -> None:
    # The JSON lines never show where a call was made from nor its thread or process: spare
    # every record those look-ups (the logging docs' "Optimization"), about a third of the
    # cost of an access line, written once per request.
    logging._srcfile = None  # type: ignore[attr-defined]
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
