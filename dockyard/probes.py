"""``/healthz`` and ``/metrics`` on the control port (the main process's and every control
worker's): open to probes and Prometheus, telling an attacker nothing.

* ``GET /healthz`` answers ``{"status": "ok"}`` (200, after a store read) to anyone. With
  credentials it adds what helps an operator and would help an attacker: ``role``, ``pid`` and
  the store ``revision``. Credentials are an access key, as the control API takes them (SigV4,
  or ``curl -u KEY_ID:SECRET``), or ``Authorization: Bearer <metrics_key>`` when that is set.
  Wrong credentials get the AWS error envelope (403), never the detail.
* ``GET /metrics`` is open unless the ``metrics_key`` setting is set; then it needs
  ``Authorization: Bearer <metrics_key>`` (Prometheus' ``authorization.credentials``) and answers
  401 with ``WWW-Authenticate: Bearer`` otherwise.

The transports (aiohttp in the main process, ``dockyard.control._http1`` in a worker) call
:func:`healthz` and :func:`metrics`, which take lower-case headers and return
``(status, content type, body, extra headers)``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Callable, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from dockyard.aws.errors import AwsError
from dockyard.aws.protocol import Operations

__all__ = ["JSON", "Answer", "healthz", "metrics", "process_detail"]

JSON = "application/json; charset=utf-8"
METRICS = CONTENT_TYPE_LATEST.split(";")[0] + "; charset=utf-8"
_EMPTY = hashlib.sha256(b"").hexdigest()

Answer = tuple[int, str, bytes, tuple[tuple[str, str], ...]]


def _bearer_ok(headers: Mapping[str, str], key: str) -> bool:
    auth = headers.get("authorization", "")
    return bool(key) and auth[:7].lower() == "bearer " and hmac.compare_digest(
        auth[7:].strip().encode(), key.encode()
    )


def healthz(
    ops: Operations, metrics_key: str, method: str, raw_path: str, raw_query: str,
    headers: Mapping[str, str], detail: Callable[[], dict[str, object]],
) -> Answer:
    """The ``/healthz`` answer (module docstring); ``detail()`` gives role, pid and revision
    (and does the store read)."""
    info = detail()
    public = {"status": info.get("status", "ok")}
    if not headers.get("authorization"):
        return 200, JSON, json.dumps(public).encode(), ()
    if not _bearer_ok(headers, metrics_key):
        try:
            ops.authenticate(method, raw_path, raw_query, headers, _EMPTY, basic=True)
        except AwsError as e:
            return e.status, JSON, json.dumps(e.body()).encode(), ()
    return 200, JSON, json.dumps(info).encode(), ()


def metrics(metrics_key: str, headers: Mapping[str, str]) -> Answer:
    """The ``/metrics`` answer (module docstring)."""
    if metrics_key and not _bearer_ok(headers, metrics_key):
        body = b"metrics need Authorization: Bearer <metrics_key>\n"
        challenge = (("WWW-Authenticate", 'Bearer realm="dockyard-metrics"'),)
        return 401, "text/plain; charset=utf-8", body, challenge
    return 200, METRICS, generate_latest(), ()


def process_detail(status: str, role: str, revision: int) -> dict[str, object]:
    return {"status": status, "revision": revision, "role": role, "pid": os.getpid()}
