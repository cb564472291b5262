"""A real CNCF Distribution registry (Debian's ``docker-registry``) as a pull-through upstream.

:class:`Distribution` runs ``docker-registry serve`` with a generated config on a free
127.0.0.1 port and a directory of its own, optionally behind ``htpasswd`` auth (bcrypt, as
Distribution requires; hashed with the C library's crypt). :meth:`Distribution.push` copies a
local Docker image into it with skopeo.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support.server import free_port

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # bcrypt through libxcrypt; no htpasswd binary is installed

__all__ = ["Distribution"]

CONFIG = """version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
{auth}"""

AUTH = """auth:
  htpasswd:
    realm: upstream
    path: {path}
"""


@dataclass
class Distribution:
    """One ``docker-registry`` process; ``user``/``password`` set: htpasswd auth on."""

    directory: Path
    user: str | None = None
    password: str | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self, timeout: float = 30) -> Distribution:
        self.directory.mkdir(parents=True, exist_ok=True)
        auth = ""
        if self.user is not None and self.password is not None:
            htpasswd = self.directory / "htpasswd"
            hashed = crypt.crypt(self.password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # cost 4
            htpasswd.write_text(f"{self.user}:{hashed}\n")
            auth = AUTH.format(path=htpasswd)
        config = self.directory / "config.yml"
        config.write_text(CONFIG.format(root=self.directory / "data", port=self.port, auth=auth))
        log = open(self.directory / "registry.log", "ab")
        self.proc = subprocess.Popen(
            [shutil.which("docker-registry") or "/usr/bin/docker-registry", "serve", str(config)],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {(self.directory / 'registry.log').read_text()}")
            try:
                if requests.get(f"{self.url}/v2/", timeout=2).status_code in (200, 401):
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("docker-registry did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def _auth(self) -> tuple[str, str] | None:
        return (self.user, self.password) if self.user is not None and self.password is not None else None

    def push_blob(self, repository: str, data: bytes) -> str:
        """A monolithic blob upload over plain HTTP; returns the digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        r = requests.post(f"{self.url}/v2/{repository}/blobs/uploads/", auth=self._auth(), timeout=30)
        assert r.status_code == 202, r.text
        location = r.headers["Location"]
        location = location if location.startswith("http") else self.url + location
        r = requests.put(
            location,
            params={"digest": digest},
            data=data,
            auth=self._auth(),
            timeout=60,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        r = requests.put(
            f"{self.url}/v2/{repository}/manifests/{reference}",
            data=body,
            auth=self._auth(),
            headers={"Content-Type": media_type},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        return r.headers["Docker-Content-Digest"]

    def push(self, local_image: str, reference: str) -> str:
        """``skopeo copy`` the local Docker image into ``<this registry>/<reference>``; returns
        the manifest digest the registry stored."""
        creds = [f"--dest-creds={self.user}:{self.password}"] if self.user else []
        digest_file = self.directory / "pushed.digest"
        proc = subprocess.run(
            [
                "skopeo",
                "copy",
                "--dest-tls-verify=false",
                *creds,
                "--digestfile",
                str(digest_file),
                f"docker-daemon:{local_image}",
                f"docker://{self.address}/{reference}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if proc.returncode != 0:
            raise AssertionError(f"skopeo copy to the upstream failed: {proc.stderr}")
        return digest_file.read_text().strip()
