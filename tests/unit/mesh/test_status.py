"""The sidecars' status and the NACKs kept in the store (``mesh.status``, ``mesh.data``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockyard.aws.errors import InvalidParameterException
from dockyard.aws.protocol import Call
from dockyard.store import Store
from mesh import data as mesh_data
from mesh.cache import SnapshotCache
from mesh.data import MIGRATIONS, Data
from mesh.delta import DeltaStream
from mesh.model import Node
from mesh.server import AdsServer
from mesh.snapshot import CLUSTER, ENDPOINT, LISTENER, ORDER, ROUTE, compute
from mesh.status import Status, sidecar_rows
from mesh.stream import AdsStream, TypeState
from tests.unit.mesh.fixtures import sample_config, sample_endpoints

# the data module's SQL on both state backends (tests/conftest.py: state_backend)
pytestmark = pytest.mark.usefixtures("state_backend")

CALL = Call({}, "DockyardMesh", "x", None, "test")


def test_a_row_per_meshed_connected_or_cached_node():
    snap = compute(sample_config(), sample_endpoints(), Node("task-a"))
    stream = AdsStream()
    stream.node = "task-a"
    stream.types = {t: TypeState(acked_version=snap.versions[t]) for t in ORDER}
    stranger = AdsStream()
    stranger.node = "stranger"
    stranger.types = {CLUSTER: TypeState(acked_version="")}
    rows = {
        r["Node"]: r for r in sidecar_rows(["task-a", "task-b"], [stream, stranger], {"task-a": snap}, {})
    }
    a = rows["task-a"]
    assert (a["Meshed"], a["Connected"], a["Ready"], a["Transport"]) == (True, True, True, "sotw")
    assert a["Acked"] == a["Snapshot"] and set(a["Acked"]) == {"CDS", "EDS", "LDS", "RDS"}
    b = rows["task-b"]
    assert (b["Meshed"], b["Connected"], b["Ready"], b["Snapshot"], b["LastNack"]) == (
        True,
        False,
        False,
        {},
        None,
    )
    assert rows["stranger"]["Meshed"] is False and rows["stranger"]["Ready"] is False
    assert a["ResourcesSent"] == {}  # state of the world: not counted


def test_a_delta_stream_row_counts_the_resources_sent_on_it():
    stream = DeltaStream()
    stream.node = "task-a"
    stream.resources_sent = {CLUSTER: 2, ENDPOINT: 3, LISTENER: 1, ROUTE: 0}
    [row] = sidecar_rows(["task-a"], [stream], {}, {})
    assert row["Transport"] == "delta"
    assert row["ResourcesSent"] == {"CDS": 2, "EDS": 3, "LDS": 1, "RDS": 0}


async def test_nacks_are_kept_newest_first_bounded_and_listed(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(mesh_data, "NACKS_KEPT", 5)
    data = Data(Store.open(tmp_path / "state.db", MIGRATIONS))
    for i in range(8):
        await data.record_nack(f"task-{i % 2}", CLUSTER, f"v{i}", f"bad {i}", 1000.0 + i)
    assert [n.version for n in data.nacks()] == ["v7", "v6", "v5", "v4", "v3"]
    assert [n.version for n in data.nacks("task-0")] == ["v6", "v4"]
    last = data.last_nacks()
    assert last["task-1"].message == "bad 7" and last["task-0"].version == "v6"
    status = Status(AdsServer(SnapshotCache()), data, lambda: ["task-1"])
    out = await status.list_nacks(CALL, {"Node": "task-1", "MaxResults": 1})
    assert out == {
        "Nacks": [
            {"Node": "task-1", "TypeUrl": CLUSTER, "Version": "v7", "ErrorDetail": "bad 7", "At": 1007.0}
        ]
    }
    (row,) = (await status.get_status(CALL, {}))["Sidecars"]
    assert row["Node"] == "task-1" and row["LastNack"]["ErrorDetail"] == "bad 7" and not row["Connected"]
    for bad in ({"MaxResults": 0}, {"MaxResults": "3"}, {"Node": 5}):
        with pytest.raises(InvalidParameterException):
            await status.list_nacks(CALL, bad)
    data.store.close()
