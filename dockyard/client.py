"""A small signed client for the control API, used by the CLI (and benchmarks).

Credentials come from ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` when set, else from the
data dir's ``admin-credentials`` file; the endpoint from ``--endpoint-url`` /
``DOCKYARD_ENDPOINT`` or the configured control port.
"""

from __future__ import annotations

import configparser
import json
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from dockyard.aws import sigv4
from dockyard.config import Config

__all__ = ["ApiError", "Client", "from_config"]

SIGNING_NAMES = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Route53AutoNaming_v20170314": "servicediscovery",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
}


class ApiError(Exception):
    """The server answered with an AWS error (``code`` is its ``__type``)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.status, self.code, self.message = status, code, message


class Client:
    def __init__(self, endpoint: str, key: str, secret: str, region: str = "us-east-1") -> None:
        self.endpoint = endpoint.rstrip("/")
        self.key, self.secret, self.region = key, secret, region

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


def from_config(config: Config, endpoint: str | None = None) -> Client:
    endpoint = endpoint or os.environ.get("DOCKYARD_ENDPOINT")
    if not endpoint:
        host = "127.0.0.1" if config.host in ("0.0.0.0", "::") else config.host
        endpoint = f"http://{Config(host=host).address(config.control_port)}"
    key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        cp = configparser.ConfigParser()
        if not cp.read(config.credentials_path) or "default" not in cp:
            raise OSError(2, "no credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or start "
                          "dockyard once to create", str(config.credentials_path))
        key, secret = cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]
    return Client(endpoint, key, secret, config.region)
