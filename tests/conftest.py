"""Shared fixtures: a running Docker Engine, a running ``dockyard up``, a PostgreSQL cluster.

A skipped test fails the run (``pytest_sessionfinish``): CI must run every test.

State backends: a test (or module, ``pytestmark = pytest.mark.usefixtures("state_backend")``)
that uses ``state_backend`` runs once on SQLite and once on PostgreSQL: on the latter every
``Store.open(path, ...)`` of the test opens a store of its own in the session's cluster
instead (tests/support/postgres.py). ``DOCKYARD_TEST_STATE=postgresql`` runs the whole suite
so: every test on PostgreSQL only, and every ``dockyard up`` the tests start with a
``state_url``.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard import sealed
from dockyard.store import Store
from tests.support import postgres as pg
from tests.support.seaweed import SeaweedS3
from tests.support.server import Dockyard

ON_POSTGRES = os.environ.get("DOCKYARD_TEST_STATE", "sqlite") == "postgresql"

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and not os.environ.get("DOCKYARD_ALLOW_SKIPS"):
        print(f"\n{len(_skipped)} test(s) skipped; a skip is a failure here: {_skipped[:5]}")
        session.exitstatus = 1


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "state_backend" in metafunc.fixturenames:
        backends = ["postgresql"] if ON_POSTGRES else ["sqlite", "postgresql"]
        metafunc.parametrize("state_backend", backends, indirect=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[pg.Postgres]:
    """One real PostgreSQL for the session (initdb in a temp dir, a free port)."""
    with pg.Postgres.temporary() as cluster:
        pg.SESSION = cluster
        try:
            yield cluster
        finally:
            pg.SESSION = None


def _stores_on(cluster: pg.Postgres, monkeypatch: pytest.MonkeyPatch) -> list[Store]:
    """Send the test's ``Store.open(path)`` calls to PostgreSQL, one schema per path."""
    from dockyard.pgstore import PostgresStore

    opened: list[Store] = []

    def open_(cls: type, path: str | Path, migrations=(), key_file=None) -> Store:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        key = key_file or Path(path).parent / sealed.KEY_FILE
        store = PostgresStore.open_url(cluster.store_url(str(Path(path).resolve())), migrations, key)
        opened.append(store)
        return store

    monkeypatch.setattr(Store, "open", classmethod(open_))
    return opened


@pytest.fixture
def state_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """``sqlite`` or ``postgresql``: the backend every ``Store.open`` of the test gets."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    opened = _stores_on(request.getfixturevalue("postgres"), monkeypatch)
    yield "postgresql"
    for store in opened:
        store.close()


@pytest.fixture(scope="session", autouse=True)
def _postgres_first(request: pytest.FixtureRequest) -> None:
    """With DOCKYARD_TEST_STATE=postgresql: the cluster starts before any session server (an
    autouse fixture comes first in its scope), so that every server gets a state_url."""
    if ON_POSTGRES:
        request.getfixturevalue("postgres")


@pytest.fixture(autouse=True)
def _suite_on_postgres(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """With DOCKYARD_TEST_STATE=postgresql: every test's stores on PostgreSQL."""
    own = "state_backend" in request.fixturenames or request.node.get_closest_marker("sqlite")
    if not ON_POSTGRES or own:
        pg.SERVERS = not request.node.get_closest_marker("sqlite")  # a server it starts: SQLite
        yield
        pg.SERVERS = True
        return
    opened = _stores_on(request.getfixturevalue("postgres"), monkeypatch)
    yield
    for store in opened:
        store.close()


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """Fails (never skips) when the Docker Engine cannot be reached."""
    deadline = time.monotonic() + 30
    while True:
        proc = subprocess.run(
            ["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True
        )
        if proc.returncode == 0:
            return proc.stdout.strip()
        if time.monotonic() > deadline:
            pytest.fail(f"Docker Engine not reachable (run scripts/dev setup): {proc.stderr.strip()}")
        time.sleep(1)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    """One real S3 server (SeaweedFS, ``tests/support/seaweed.py``) for the whole session."""
    server = SeaweedS3.start(tmp_path_factory.mktemp("seaweed"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dockyard(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    """One ``dockyard up`` for the whole session, on free ports with a temp data dir."""
    # Clusters named host-access-* may run tasks with host access (docs/security.md).
    # Sidecars send their stats every 2 s, alarms are judged every second (docs/telemetry.md), log
    # retention passes every second (tests/integration/test_logs.py), autoscaling every second, and
    # a deployment's bake minute is one second (docs/deployments.md), a scheduled rule's minute two
    # seconds and a failed target is retried after half a second (docs/events.md).
    env = {"DOCKYARD_HOST_ACCESS_CLUSTERS": "host-access-*", "DOCKYARD_MESH_STATS_FLUSH_INTERVAL": "2",
           "DOCKYARD_ALARM_EVALUATION_INTERVAL": "1", "DOCKYARD_LOGS_RETENTION_INTERVAL": "1",
           "DOCKYARD_AUTOSCALING_INTERVAL": "1", "DOCKYARD_AUTOSCALING_PERIOD": "10",
           "DOCKYARD_DEPLOYMENT_MINUTE_SECONDS": "1", "DOCKYARD_EVENTS_MINUTE_SECONDS": "2",
           "DOCKYARD_EVENTS_RETRY_SECONDS": "0.5"}
    server = Dockyard(tmp_path_factory.mktemp("dockyard") / "data", env=env).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_dockyard(tmp_path: Path, docker_engine: str) -> Iterator[Dockyard]:
    """A ``dockyard up`` of the test's own (for restarts, kills and other rough handling)."""
    server = Dockyard(tmp_path / "data")
    try:
        yield server
    finally:
        if server.proc is not None:
            server.stop()
