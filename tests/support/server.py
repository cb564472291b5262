"""Start and stop a real ``dockyard up`` for tests, on free ports with its own data dir."""

from __future__ import annotations

import configparser
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def cpu_seconds(pid: int) -> float:
    """User + system CPU time process ``pid`` has used so far (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue


@dataclass
class Dockyard:
    """A running ``dockyard up`` subprocess and how to talk to it."""

    data_dir: Path
    ports: dict[str, int] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    output: list[str] = field(default_factory=list)
    command: list[str] = field(default_factory=lambda: [str(BIN / "dockyard")])  # what runs ``up``

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['control']}"

    @property
    def registry(self) -> str:
        """``host:port`` of the registry, as docker and skopeo name it."""
        return f"127.0.0.1:{self.ports['registry']}"

    @property
    def registry_url(self) -> str:
        return f"http://{self.registry}"

    @property
    def credentials_file(self) -> Path:
        return self.data_dir / "admin-credentials"

    @property
    def credentials(self) -> tuple[str, str]:
        cp = configparser.ConfigParser()
        cp.read(self.credentials_file)
        return cp["default"]["aws_access_key_id"], cp["default"]["aws_secret_access_key"]

    def start(self, timeout: float = 30) -> Dockyard:
        if not self.ports:
            self.ports = {k: free_port() for k in ("registry", "control", "xds", "dns")}
        args = [*self.command, "up", "--data-dir", str(self.data_dir)]
        for name, port in self.ports.items():
            if f"DOCKYARD_{name.upper()}_PORT" not in self.env:  # else the environment sets it
                args += [f"--{name}-port", str(port)]
        args += self.extra_args
        from tests.support import postgres  # the session's cluster, if any

        on_postgres = os.environ.get("DOCKYARD_TEST_STATE") == "postgresql" and postgres.SERVERS
        if postgres.SESSION is not None and on_postgres:
            url = self.env.setdefault("DOCKYARD_STATE_URL", postgres.SESSION.store_url(str(self.data_dir)))
            # and in the data dir's config file, where a CLI run with --data-dir finds it too
            self.data_dir.mkdir(parents=True, exist_ok=True)
            toml = self.data_dir / "dockyard.toml"
            if "state_url" not in (toml.read_text() if toml.exists() else ""):
                with toml.open("a") as f:
                    f.write(f"\nstate_url = {json.dumps(url)}\n")
        log = open(self.data_dir.parent / f"{self.data_dir.name}.log", "ab")
        self.proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=log, text=True, env={**os.environ, **self.env}
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"dockyard up exited early ({self.proc.wait()}): {self.output}")
            self.output.append(line.rstrip("\n"))
            if line.startswith("dockyard: ready"):
                return self
        raise RuntimeError(f"dockyard up not ready within {timeout}s: {self.output}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None:
            return 0
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        if self.proc.stdout:
            self.output.extend(self.proc.stdout.read().splitlines())
            self.proc.stdout.close()
        self.proc = None
        return code

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    # -- clients -------------------------------------------------------------------------
    def aws_env(self) -> dict[str, str]:
        key, secret = self.credentials
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
            "AWS_RETRY_MODE": "standard",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        }

    def aws(self, *args: str, env: dict[str, str] | None = None, check: bool = True) -> Any:
        """Run the real ``aws`` CLI against this server; returns parsed JSON output.

        With ``check=False`` returns the CompletedProcess instead.
        """
        proc = subprocess.run(
            [str(BIN / "aws"), "--endpoint-url", self.control_url, "--output", "json", *args],
            capture_output=True,
            text=True,
            env={**self.aws_env(), **(env or {})},
            timeout=120,
        )
        if not check:
            return proc
        if proc.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {proc.stderr}")
        return json.loads(proc.stdout) if proc.stdout.strip() else {}

    def client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` pointed at this server."""
        import boto3
        from botocore.config import Config

        key, secret = self.credentials
        return boto3.client(
            service,
            endpoint_url=self.control_url,
            region_name=kwargs.pop("region_name", "us-east-1"),
            aws_access_key_id=kwargs.pop("key", key),
            aws_secret_access_key=kwargs.pop("secret", secret),
            config=Config(retries={"max_attempts": 1, "mode": "standard"}, inject_host_prefix=False),
            **kwargs,
        )

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Run the ``dockyard`` CLI with this server's data dir (and its environment: the same
        ``DOCKYARD_STATE_URL``, say)."""
        return subprocess.run(
            [str(BIN / "dockyard"), *args],
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
            env={**os.environ, **self.env},
        )
