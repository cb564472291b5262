"""``dockyard up`` with its blobs in an S3 bucket (SeaweedFS): blob GETs redirected to the
bucket, a blob lost from the bucket answered BLOB_UNKNOWN and logged, and every way a
``blob_url`` can be unusable (malformed, unreachable, wrong key, no bucket) stopping the start
with one line that names what is wrong."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from registry.reference import parse_digest
from registry.storage.paths import blob_path
from tests.integration.conftest import S3_BUCKET, s3_env
from tests.support.registry import RegistryClient
from tests.support.seaweed import SeaweedS3
from tests.support.server import BIN, Dockyard, free_port


def test_a_blob_get_is_redirected_to_a_presigned_url_of_the_bucket(
    s3_dockyard: Dockyard, seaweed: SeaweedS3
) -> None:
    reg = RegistryClient(s3_dockyard)
    data = uuid.uuid4().bytes * 100
    digest = reg.push_blob("s3/redirect", data)
    r = reg.get(f"/v2/s3/redirect/blobs/{digest}")
    assert r.status_code == 307
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == seaweed.endpoint
    assert location.path == f"/{S3_BUCKET}/registry/{blob_path(parse_digest(digest))}"
    assert reg.get(f"/v2/s3/redirect/blobs/{digest}", allow_redirects=True).content == data


def test_a_blob_lost_from_the_bucket_is_blob_unknown_and_said_in_the_log(
    s3_dockyard: Dockyard, seaweed: SeaweedS3
) -> None:
    reg = RegistryClient(s3_dockyard)
    digest = reg.push_blob("s3/lost", b"lost behind dockyard's back " + uuid.uuid4().bytes)
    key = f"registry/{blob_path(parse_digest(digest))}"
    seaweed.client().delete_object(Bucket=S3_BUCKET, Key=key)
    r = reg.get(f"/v2/s3/lost/blobs/{digest}")
    assert r.status_code == 404
    assert r.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
    assert reg.head(f"/v2/s3/lost/blobs/{digest}").status_code == 404
    log = s3_dockyard.data_dir.parent / f"{s3_dockyard.data_dir.name}.log"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        if any(x.get("msg") == "blob missing from storage" and x.get("digest") == digest for x in lines):
            break
        time.sleep(0.2)
    else:
        pytest.fail(f"no 'blob missing from storage' line for {digest} in {log}")


def _start_fails(tmp_path: Path, env: dict[str, str]) -> str:
    """Run ``dockyard up`` with ``env``; it must exit 1 before serving. Returns its stderr."""
    args = [str(BIN / "dockyard"), "up", "--data-dir", str(tmp_path / "data")]
    for name in ("registry", "control", "xds", "dns"):
        args += [f"--{name}-port", str(free_port())]
    proc = subprocess.run(
        args, env={**os.environ, **env}, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "dockyard: ready" not in proc.stdout
    assert "Traceback" not in proc.stderr
    return proc.stderr


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"DOCKYARD_BLOB_URL": "s3://Not_A_Bucket/x"}, "is not a valid bucket name"),
        ({"DOCKYARD_BLOB_URL": "https://bucket/x"}, "is not an s3://bucket/prefix URL"),
        ({"DOCKYARD_S3_ENDPOINT": "127.0.0.1:9"}, "is not an http:// or https:// URL"),
        ({"DOCKYARD_S3_ENDPOINT": "http://127.0.0.1:{port}"}, "cannot reach the S3 endpoint http://127.0.0.1:"),
        ({"DOCKYARD_S3_SECRET_ACCESS_KEY": "wrong-secret"}, "access denied by"),
        ({"DOCKYARD_S3_ACCESS_KEY_ID": "nobody"}, "access denied by"),
        ({"DOCKYARD_BLOB_URL": "s3://no-such-bucket-here/x"}, "bucket 'no-such-bucket-here' does not exist"),
        ({"DOCKYARD_S3_PART_SIZE": "1024"}, "config s3_part_size: 1024 is not between"),
    ],
)
def test_an_unusable_blob_url_stops_the_start_saying_what_is_wrong(
    tmp_path: Path, seaweed: SeaweedS3, change: dict[str, str], says: str
) -> None:
    seaweed.bucket(S3_BUCKET)
    env = s3_env(seaweed)
    env.update({k: v.format(port=free_port()) for k, v in change.items()})
    stderr = _start_fails(tmp_path, env)
    assert says in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1, stderr
