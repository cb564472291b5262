"""A small signed client for the control API, used by the CLI (and benchmarks).

Credentials come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` when set, else from the
data dir's ``admin-credentials`` file. The endpoint, first found wins: ``--endpoint-url``,
``DOCKYARD_ENDPOINT``, the control URL the data dir's live server recorded
(``<data-dir>/endpoints.json``, see :mod:`dockyard.endpoints`), the configured control port.
A server that does not answer raises :class:`Unreachable`, whose message names the URL tried,
where it came from, and how to point the CLI elsewhere.
"""

from __future__ import annotations

import configparser
import json
import os
import socket
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from dockyard import endpoints
from dockyard.aws import sigv4
from dockyard.config import Config

__all__ = ["ApiError", "Client", "Unreachable", "from_config"]

SIGNING_NAMES = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Route53AutoNaming_v20170314": "servicediscovery",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "GraniteServiceVersion20100801": "monitoring",
    "CertificateManager": "acm",
    "AWSEvents": "events",
    "AnyScaleFrontendService": "application-autoscaling",
}


class ApiError(Exception):
    """The server answered with an AWS error (``code`` is its ``__type``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class Unreachable(ConnectionError):
    """Nothing answered at the control API URL (the message says which, and what to do).

    A ``ConnectionError`` (an ``OSError``), as the ``URLError`` it replaces was: callers that
    retry on ``OSError`` (``dockyard agent`` while the control plane restarts) keep retrying."""


def unreachable_message(url: str, source: str, reason: object) -> str:
    """One line: the URL tried, why it failed, where the URL came from, how to change it."""
    return (
        f"cannot reach the control API at {url} ({reason}; URL from {source}): is `dockyard up` "
        "running? Point the CLI at a server with --endpoint-url URL or DOCKYARD_ENDPOINT=URL, "
        "or at its data dir with --data-dir DIR"
    )


def _reason(e: BaseException) -> str:
    inner = getattr(e, "reason", e)
    if isinstance(inner, (socket.timeout, TimeoutError)):
        return "timed out"
    return getattr(inner, "strerror", None) or str(inner)


class Client:
    def __init__(
        self, endpoint: str, key: str, secret: str, region: str = "us-east-1", source: str = "--endpoint-url"
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.key, self.secret, self.region = key, secret, region
        self.source = source  # where the endpoint came from, for error messages

    def unreachable(self, e: BaseException) -> Unreachable:
        """The :class:`Unreachable` for a connection error ``e`` to this client's endpoint."""
        return Unreachable(unreachable_message(self.endpoint, self.source, _reason(e)))

    def call(self, target: str, operation: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        body = json.dumps(params or {}).encode()
        host = urlsplit(self.endpoint).netloc
        headers = sigv4.sign(
            "POST", "/",
            {"host": host, "content-type": "application/x-amz-json-1.1",
             "x-amz-target": f"{target}.{operation}"},
            body, self.key, self.secret, self.region, SIGNING_NAMES.get(target, "dockyard"),
        )
        headers.pop("host")
        req = urllib.request.Request(self.endpoint + "/", data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                err = {}
            raise ApiError(e.code, err.get("__type", str(e.code)), err.get("message", e.reason)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise self.unreachable(e) from None

    def call_rest(self, service: str, method: str, path: str, body: bytes = b"") -> dict[str, Any]:
        """A REST-JSON operation (EventBridge Scheduler's ``GET /schedules``, App Mesh's), signed
        for ``service`` (the name its model signs with); ``path`` without a query string."""
        host = urlsplit(self.endpoint).netloc
        base = {"host": host, **({"content-type": "application/json"} if body else {})}
        headers = sigv4.sign(method, path, base, body, self.key, self.secret, self.region, service)
        headers.pop("host")
        req = urllib.request.Request(self.endpoint + path, data=body or None, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as e:
            try:
                err = json.loads(e.read())
            except ValueError:
                err = {}
            code = (e.headers.get("x-amzn-ErrorType") or str(e.code)).split(":", 1)[0]
            raise ApiError(e.code, code, err.get("message", e.reason)) from None
        except (urllib.error.URLError, ConnectionError, TimeoutError) as e:
            raise self.unreachable(e) from None


def resolve_endpoint(config: Config, endpoint: str | None = None) -> tuple[str, str]:
    """The control API URL and where it came from (see the module docstring for the order)."""
    if endpoint:
        return endpoint, "--endpoint-url"
    if os.environ.get("DOCKYARD_ENDPOINT"):
        return os.environ["DOCKYARD_ENDPOINT"], "DOCKYARD_ENDPOINT"
    recorded = endpoints.read(config.data_dir)
    if recorded and isinstance(recorded["endpoints"].get("control"), str):
        where = f"{config.data_path / endpoints.FILE}, written by dockyard pid {recorded['pid']}"
        return endpoints.loopback(recorded["endpoints"]["control"]), where
    host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
    where = (f"the control_port setting ({config.control_port}); no running server recorded "
             f"in data dir {config.data_dir}")
    return f"http://{Config(host=host).address(config.control_port)}", where


def from_config(config: Config, endpoint: str | None = None) -> Client:
    endpoint, source = resolve_endpoint(config, endpoint)
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        cp = configparser.ConfigParser()
        if not cp.read(config.credentials_path) or "default" not in cp:
            raise OSError(2, "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or start "
                          "dockyard once to create", str(config.credentials_path))
        key, secret = cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]
    return Client(endpoint, key, secret, config.region, source)
