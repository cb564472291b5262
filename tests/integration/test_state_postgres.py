"""``dockyard up`` with ``state_url = postgresql://...`` on a real PostgreSQL of the test's own
(tests/support/postgres.py): a bad URL stops it before it listens; PostgreSQL restarted under
load makes requests fail cleanly (503 with Retry-After) and Dockyard recovers by itself."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.support import postgres as pg
from tests.support.registry import RegistryClient
from tests.support.server import BIN, Dockyard, free_port


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize(
    ("which", "expected"),
    [
        ("malformed", "bad port"),
        ("no database", "names no database"),
        ("unreachable", "cannot connect to PostgreSQL at postgresql://dockyard:***@127.0.0.1"),
        ("wrong password", "password authentication failed"),
    ],
)
def test_a_bad_state_url_stops_dockyard_up_before_anything_listens(
    tmp_path: Path, postgres: pg.Postgres, which: str, expected: str
):
    url = {
        "malformed": "postgresql://dockyard:pw@127.0.0.1:99999/db",
        "no database": f"postgresql://dockyard:pw@127.0.0.1:{postgres.port}",
        "unreachable": f"postgresql://dockyard:pw@127.0.0.1:{free_port()}/db",
        "wrong password": postgres.url(password="not-the-password"),
    }[which]
    control = free_port()
    proc = subprocess.run(
        [str(BIN / "dockyard"), "up", "--data-dir", str(tmp_path / "data"), "--control-port", str(control),
         "--registry-port", str(free_port()), "--xds-port", str(free_port()), "--dns-port", str(free_port())],
        capture_output=True, text=True, timeout=60, env={"PATH": str(BIN) + ":/usr/bin:/bin",
                                                          "DOCKYARD_STATE_URL": url},
    )
    assert proc.returncode == 1, proc.stderr
    assert expected in proc.stderr and "Traceback" not in proc.stderr
    assert "pw" not in proc.stderr.replace("password", "") and "not-the-password" not in proc.stderr
    assert "dockyard: ready" not in proc.stdout and not _listening(control)
    assert not (tmp_path / "data" / "endpoints.json").exists()


def test_postgres_restarted_under_load_gives_503s_and_dockyard_recovers_without_a_restart(
    tmp_path: Path, docker_engine: str
):
    with pg.Postgres.temporary() as own:
        server = Dockyard(tmp_path / "data", env={"DOCKYARD_STATE_URL": own.store_url("restart")}).start(60)
        try:
            ecs = server.client("ecs")
            ecs.create_cluster(clusterName="pg-before")
            reg = RegistryClient(server)
            digest = reg.push_blob("pg/app", b"layer" * 200)
            answers: list[tuple[str, int, str, str]] = []  # (what, status, code, Retry-After)
            stop = threading.Event()

            def load() -> None:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        ecs.create_cluster(clusterName=f"pg-load-{n % 5}")
                        ecs.list_clusters()
                        answers.append(("ecs", 200, "", ""))
                    except ClientError as e:
                        meta = e.response["ResponseMetadata"]
                        answers.append(("ecs", meta["HTTPStatusCode"], e.response["Error"]["Code"],
                                        meta["HTTPHeaders"].get("retry-after", "")))
                    r = reg.get(f"/v2/pg/app/blobs/{digest}")
                    code = r.json()["errors"][0]["code"] if r.status_code >= 400 else ""
                    answers.append(("registry", r.status_code, code, r.headers.get("Retry-After", "")))

            worker = threading.Thread(target=load)
            worker.start()
            try:
                while len(answers) < 10:
                    time.sleep(0.05)
                own.restart()
                restarted = len(answers)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # both paths answer again, no Dockyard restart
                    after = answers[restarted:]
                    if {w for w, status, *_ in after[-10:] if status == 200} == {"ecs", "registry"}:
                        break
                    time.sleep(0.1)
            finally:
                stop.set()
                worker.join(120)
            statuses = {(w, status, code, retry) for w, status, code, retry in answers}
            assert {s[1] for s in statuses} <= {200, 503}, statuses
            failed = {s for s in statuses if s[1] == 503}
            assert failed, "no request fell into the restart"
            assert failed <= {("ecs", 503, "ServiceUnavailable", "1"), ("registry", 503, "UNAVAILABLE", "1")}
            assert [s for s in answers[-4:] if s[1] == 200] == answers[-4:]
            names = {c.rsplit("/", 1)[1] for c in ecs.list_clusters()["clusterArns"]}
            assert "pg-before" in names
            ecs.create_cluster(clusterName="pg-after")
            assert reg.get(f"/v2/pg/app/blobs/{digest}").content == b"layer" * 200
        finally:
            server.stop()
        log = (tmp_path / "data.log").read_text()
        assert "Traceback" not in log
