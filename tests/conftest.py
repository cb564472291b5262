"""Shared fixtures: a running Docker Engine and a running ``dockyard up``.

A skipped test fails the run (``pytest_sessionfinish``): CI must run every test.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Dockyard

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and not os.environ.get("DOCKYARD_ALLOW_SKIPS"):
        print(f"\n{len(_skipped)} test(s) skipped; a skip is a failure here: {_skipped[:5]}")
        session.exitstatus = 1


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
