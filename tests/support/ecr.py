"""ECR helpers the integration tests share: a docker login by ``get-login-password`` and
access keys with a policy."""

from __future__ import annotations

import json

from tests.support.registry_auth import DockerLogin
from tests.support.server import Dockyard

ACCOUNT = "000000000000"


def ecr_login(dockyard: Dockyard, docker: DockerLogin, env: dict[str, str] | None = None) -> None:
    """``aws ecr get-login-password | docker login --username AWS --password-stdin`` (as the
    key of ``env``, else the admin key)."""
    password = dockyard.aws("ecr", "get-login-password", env=env, check=False)
    assert password.returncode == 0, password.stderr
    login = docker.run(
        "login", "--username", "AWS", "--password-stdin", dockyard.registry, input=password.stdout
    )
    assert login.returncode == 0, login.stderr


def make_key(dockyard: Dockyard, name: str, policy: dict) -> dict[str, str]:
    """A new access key of user ``name`` with IAM ``policy``, as ``aws`` environment variables."""
    proc = dockyard.cli(
        "keys",
        "create",
        "--name",
        name,
        "--json",
        "--data-dir",
        str(dockyard.data_dir),
        "--policy",
        "-",
        input=json.dumps(policy),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return {"AWS_ACCESS_KEY_ID": out["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": out["SecretAccessKey"]}
