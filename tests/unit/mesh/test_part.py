"""``mesh.part.install`` on a real platform: the status operations, the controller's context,
the sidecars' xDS port, and NACKs kept in the store."""

from __future__ import annotations

import contextlib
from pathlib import Path

from dockyard.config import Config
from dockyard.platform import Platform, open_store
from mesh import part as mesh_part
from mesh.snapshot import CLUSTER
from mesh.stream import Nack


async def test_install_serves_xds_runs_the_controller_and_keeps_nacks(tmp_path: Path):
    config = Config(data_dir=str(tmp_path), xds_port=0)
    store = open_store(config)
    platform = Platform(config, store)
    mesh = mesh_part.install(platform)
    assert set(platform.ops.names("DockyardMesh")) == {"GetMeshStatus", "ListMeshNacks"}
    assert not platform.ops.readonly("DockyardMesh.GetMeshStatus")  # the main process answers it
    assert mesh.connect is None and mesh.controller is None
    telemetry, serve = platform.contexts  # the alarms' evaluation and metrics expiry, then xDS
    assert mesh.telemetry is not None and mesh.telemetry.alarms.state("none") is None
    ctx = contextlib.asynccontextmanager
    async with ctx(telemetry)(platform), ctx(serve)(platform):
        assert mesh.sidecars.port > 0 and mesh.controller is not None
        assert mesh.controller.desired.config.clients == ()
        mesh.ads._record_nack(Nack("task-n", CLUSTER, "v1", "refused"))
        mesh.node_connected("task-n")
        assert mesh.cache.get_snapshot("task-n") is not None  # not a meshed task: empty
    (kept,) = mesh.data.nacks()
    assert (kept.node, kept.type_url, kept.version, kept.message) == ("task-n", CLUSTER, "v1", "refused")
    store.close()
