"""Registry users and tokens for tests: create users with the real CLI, fetch tokens from the
real token endpoint, log docker in with a private ``DOCKER_CONFIG`` (so that credentials never
leak between servers or tests)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import requests

from tests.support.server import Dockyard

ADMIN_USER = "dockyard-test-admin"
ADMIN_PASSWORD = "test-admin-password"


def create_user(server: Dockyard, name: str, password: str, *grants: str, admin: bool = False) -> None:
    """``dockyard users create NAME --password-stdin [--grant G ...] [--admin]`` on the
    server's data dir (works while it runs)."""
    args = ["users", "create", name, "--password-stdin", "--data-dir", str(server.data_dir)]
    for g in grants:
        args += ["--grant", g]
    if admin:
        args.append("--admin")
    proc = server.cli(*args, input=password + "\n")
    assert proc.returncode == 0, proc.stderr


def ensure_admin(server: Dockyard) -> tuple[str, str]:
    """The test admin user (all actions on all repositories), created once per data dir."""
    marker = server.data_dir / ".test-admin"
    if not marker.exists():
        create_user(server, ADMIN_USER, ADMIN_PASSWORD, admin=True)
        marker.touch()
    return ADMIN_USER, ADMIN_PASSWORD


def allow_anonymous_pull(server: Dockyard, prefix: str, allow: bool = True) -> None:
    what = "allow" if allow else "deny"
    proc = server.cli("registry", "anonymous-pull", what, prefix, "--data-dir", str(server.data_dir))
    assert proc.returncode == 0, proc.stderr


def fetch_token(
    base_url: str, *scopes: str, user: str | None = None, password: str = "", verify: Any = True
) -> requests.Response:
    """``GET /token?service=dockyard&scope=...`` with Basic credentials (none: anonymous)."""
    return requests.get(
        f"{base_url}/token",
        params=[("service", "dockyard"), *(("scope", s) for s in scopes)],
        auth=(user, password) if user is not None else None,
        timeout=30,
        verify=verify,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: requests.Response) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer k="v",...`` header."""
    header = response.headers.get("WWW-Authenticate", "")
    assert header.startswith("Bearer "), header
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (unverified) header and claims of a JWT."""
    head, body, _ = token.split(".")
    return tuple(json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (head, body))


def docker_env(server: Dockyard) -> dict[str, str]:
    """Environment for the docker CLI with a config dir of ``server``'s own (next to its data
    dir), logged in there as the test admin the first time."""
    config = server.data_dir.parent / f"{server.data_dir.name}-docker-config"
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    done = config / "config.json"
    if not (done.exists() and server.registry in done.read_text()):
        user, password = ensure_admin(server)
        proc = subprocess.run(
            ["docker", "login", server.registry, "-u", user, "--password-stdin"],
            input=password + "\n", capture_output=True, text=True, env=env, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
    return env


class DockerLogin:
    """A docker CLI with its own config dir (credentials stay in it; removed by ``close``)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="docker-config-")
        self.config = Path(self._dir.name)

    def run(self, *args: str, input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=timeout,
            env={**os.environ, "DOCKER_CONFIG": str(self.config)},
        )

    def login(self, registry: str, user: str, password: str) -> subprocess.CompletedProcess:
        return self.run("login", registry, "-u", user, "--password-stdin", input=password + "\n")

    def logout(self, registry: str) -> subprocess.CompletedProcess:
        return self.run("logout", registry)

    def close(self) -> None:
        self._dir.cleanup()


__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "DockerLogin",
    "allow_anonymous_pull",
    "bearer",
    "challenge",
    "create_user",
    "docker_env",
    "ensure_admin",
    "fetch_token",
    "jwt_parts",
]
