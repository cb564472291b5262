"""Read-only mode (``DOCKYARD_REGISTRY_READ_ONLY``): pulls work, pushes and deletes answer 405
``UNSUPPORTED`` as Distribution's read-only mode does, and garbage collection is off."""

from __future__ import annotations

import hashlib
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.registry import RegistryClient, skopeo_copy, skopeo_ref
from tests.support.registry_auth import ensure_admin
from tests.support.server import Dockyard


def _unsupported(r) -> None:  # type: ignore[no-untyped-def]
    assert r.status_code == 405, (r.status_code, r.text)
    assert [e["code"] for e in r.json()["errors"]] == ["UNSUPPORTED"], r.text


def test_a_read_only_registry_serves_pulls_and_refuses_every_write(
    fresh_dockyard: Dockyard, tmp_path: Path
) -> None:
    server = fresh_dockyard.start()
    name = f"ro/{uuid.uuid4().hex[:8]}"
    digest, body = RegistryClient(server).push_image(name, "v1", [b"layer of a read-only registry"])
    server.stop()
    server.env["DOCKYARD_REGISTRY_READ_ONLY"] = "true"
    server.start()
    reg = RegistryClient(server)

    assert reg.get(f"/v2/{name}/manifests/v1").content == body
    assert reg.get(f"/v2/{name}/tags/list").json()["tags"] == ["v1"]
    layer = "sha256:" + hashlib.sha256(b"layer of a read-only registry").hexdigest()
    assert reg.get(f"/v2/{name}/blobs/{layer}").content == b"layer of a read-only registry"
    creds = ":".join(ensure_admin(server))
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"--creds={creds}",
                          skopeo_ref(server, f"{name}:v1")], capture_output=True, timeout=300)
    assert raw.returncode == 0 and raw.stdout == body, raw.stderr
    skopeo_copy(server, skopeo_ref(server, f"{name}:v1"), f"oci:{tmp_path / 'pulled'}:v1")

    _unsupported(reg.post(f"/v2/{name}/blobs/uploads/"))
    _unsupported(reg.put(f"/v2/{name}/manifests/v2", data=body,
                         headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"}))
    _unsupported(reg.delete(f"/v2/{name}/manifests/{digest}"))
    _unsupported(reg.delete(f"/v2/{name}/manifests/v1"))
    assert reg.get(f"/v2/{name}/manifests/v1").status_code == 200  # nothing was deleted
    with pytest.raises(AssertionError, match=r"(?i)405|unsupported") as refused:
        skopeo_copy(server, f"oci:{tmp_path / 'pulled'}:v1", skopeo_ref(server, f"{name}:copy"))
    assert "skopeo copy" in str(refused.value)

    gc = server.cli("registry", "gc", "--data-dir", str(server.data_dir), "--endpoint-url",
                    server.control_url, "--json")
    assert gc.returncode != 0 and "read-only" in gc.stderr, (gc.returncode, gc.stdout, gc.stderr)
