"""Issue 10 items 3, 4 (storage) and 8 against a real ``dockyard up``: password checks that
cannot be used as a lever, secrets at rest, and probes that leak nothing."""

from __future__ import annotations

import base64
import concurrent.futures
import http.client
import json
import os
import sqlite3
import stat
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from dockyard import sealed
from dockyard.platform import all_migrations, load_parts
from dockyard.store import Store
from registry import users
from tests.support.images import echo_image
from tests.support.registry import docker_push, docker_rmi
from tests.support.registry_auth import DockerLogin, create_user, fetch_token
from tests.support.server import Dockyard

ATTACK_PASSWORD = "Att4ck-Guess-"


def token_status(server: Dockyard, source: str, user: str, password: str) -> tuple[int, dict[str, str]]:
    """``GET /token`` with Basic credentials from the loopback address ``source``."""
    conn = http.client.HTTPConnection("127.0.0.1", server.ports["registry"], timeout=120,
                                      source_address=(source, 0))
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    try:
        conn.request("GET", "/token?service=dockyard", headers={"Authorization": f"Basic {auth}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status, dict(resp.getheaders())
    finally:
        conn.close()


def test_32_concurrent_bad_logins_leave_a_real_login_working_and_log_no_password(fresh_dockyard):
    server = fresh_dockyard.start()
    create_user(server, "alice", "alice-real-password", "*=pull")
    create_user(server, "carol", "carol-real-password", "*=pull")
    started = time.perf_counter()
    assert fetch_token(server.registry_url, user="alice", password="alice-real-password").status_code == 200
    quiet = time.perf_counter() - started
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        attack = [pool.submit(token_status, server, "127.0.0.2", "alice", f"{ATTACK_PASSWORD}{i}")
                  for i in range(32)]
        time.sleep(0.2)  # the bad logins are in
        started = time.perf_counter()
        real = fetch_token(server.registry_url, user="alice", password="alice-real-password")
        again = time.perf_counter() - started
        started = time.perf_counter()  # a first login: a full scrypt check during the attack
        first = fetch_token(server.registry_url, user="carol", password="carol-real-password")
        under_attack = time.perf_counter() - started
        answers = [f.result() for f in attack]
    statuses = sorted(s for s, _ in answers)
    print(f"first login alone {quiet:.3f} s; under 32 concurrent bad logins:"
          f" a first login {under_attack:.3f} s, a repeated one {again:.3f} s;"
          f" bad logins answered {statuses.count(401)} x 401,"
          f" {statuses.count(429)} x 429")
    assert real.status_code == 200  # the attacked user, from where she logged in before
    assert first.status_code == 200
    assert statuses.count(429) >= 22 and statuses.count(401) <= 10  # the limiter engaged
    assert all(int(h["Retry-After"]) >= 1 for s, h in answers if s == 429)
    create_user(server, "bob", "bob-real-password", "*=pull")
    docker = DockerLogin()
    try:
        assert docker.login(server.registry, "bob", "bob-real-password").returncode == 0
    finally:
        docker.close()
    log = (server.data_dir.parent / f"{server.data_dir.name}.log").read_text()
    refused = [json.loads(line) for line in log.splitlines() if "registry login refused" in line]
    assert [r["reason"] for r in refused].count("wrong password") == statuses.count(401)
    assert "rate limited" in [r["reason"] for r in refused]
    assert all(r["level"].lower() == "info" for r in refused), refused[:2]
    assert ATTACK_PASSWORD not in log and "real-password" not in log


def old_data_dir(data: Path) -> tuple[str, str]:
    """A data dir as an older Dockyard left it: mode 0755, files 0644, secrets in plaintext.
    Returns the admin key it holds."""
    data.mkdir(mode=0o755)
    os.chmod(data, 0o755)
    old = os.umask(0o022)
    try:
        conn = sqlite3.connect(data / "state.db")  # what the older store made: 0644
        conn.execute("PRAGMA journal_mode=WAL")
        conn.close()
        store = Store.open(data / "state.db", [m for m in all_migrations(load_parts()) if m.step is None])
    finally:
        os.umask(old)
    key, secret = "DKYDOLDADMINKEY00001", "old-plaintext-access-secret"
    with sqlite3.connect(data / "state.db") as conn:
        conn.execute("INSERT INTO access_keys VALUES (?, ?, 'admin', 0)", (key, secret))
        conn.execute("INSERT INTO secrets VALUES ('db-password', 'old-plaintext-secret-value', 0, 0)")
        conn.execute("INSERT INTO registry_users VALUES ('dockyard-runner', ?, 0, 0)",
                     (users.hash_password("old-plaintext-pull-password"),))
        conn.execute("INSERT INTO registry_grants VALUES ('dockyard-runner', '*', 'pull')")
        conn.execute("INSERT INTO registry_pull_credential VALUES (?, ?)",
                     ("dockyard-runner", "old-plaintext-pull-password"))
    store.close()
    for p in data.iterdir():
        os.chmod(p, 0o644)
    (data / "admin-credentials").write_text(
        f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n")
    return key, secret


@pytest.mark.sqlite  # an older SQLite state.db, written by hand
def test_an_older_data_dir_is_made_private_and_its_secrets_sealed_on_first_start(tmp_path, docker_engine):
    data = tmp_path / "data"
    old_data_dir(data)
    server = Dockyard(data)
    old = os.umask(0o022)
    try:
        server.start()
    finally:
        os.umask(old)
    try:
        db = data / "state.db"
        modes = {p.name: stat.S_IMODE(p.stat().st_mode)
                 for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), data / sealed.KEY_FILE)}
        assert modes == dict.fromkeys(modes, 0o600), modes
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            stored = [conn.execute(q).fetchone()[0] for q in (
                "SELECT secret FROM access_keys", "SELECT value FROM secrets",
                "SELECT password FROM registry_pull_credential")]
        assert all(sealed.is_sealed(v) for v in stored), stored
        raw = b"".join(p.read_bytes() for p in data.glob("state.db*"))
        for plain in (b"old-plaintext-access-secret", b"old-plaintext-secret-value", b"old-plaintext-pull"):
            assert plain not in raw
        # the migrated key still signs: the real aws CLI lists clusters with it
        assert server.aws("ecs", "list-clusters") == {"clusterArns": []}
        # the CLI seals with the same key file as the server
        put = server.cli("secrets", "put", "cli-made", "--value-stdin", "--data-dir", str(data),
                         input="cli-plaintext-value")
        assert put.returncode == 0, put.stderr
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            row = conn.execute("SELECT value FROM secrets WHERE name = 'cli-made'").fetchone()[0]
        opener = sealed.Sealer.load_or_create(data / sealed.KEY_FILE)
        assert opener.open(row, sealed.context("secrets", "value", "cli-made")) == "cli-plaintext-value"
        assert opener.open(stored[1], sealed.context("secrets", "value", "db-password")) == (
            "old-plaintext-secret-value")
    finally:
        server.stop()


def curl(*args: str) -> tuple[int, str]:
    proc = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True,
                          timeout=60)
    body, _, code = proc.stdout.rpartition("\n")
    return int(code), body


@pytest.mark.parametrize("workers", ["1", "2"], ids=["main-process", "control-workers"])
def test_probes_are_open_but_tell_nothing_and_metrics_can_need_a_key(fresh_dockyard, workers):
    server = fresh_dockyard
    server.extra_args = ["--control-workers", workers]
    server.env = {"DOCKYARD_METRICS_KEY": "scrape-key-0123456789"}
    server.start()
    url = server.control_url
    assert curl(f"{url}/healthz") == (200, '{"status": "ok"}')
    key, secret = server.credentials
    status, body = curl("-u", f"{key}:{secret}", f"{url}/healthz")
    detail = json.loads(body)
    assert status == 200 and detail["role"] == ("main" if workers == "1" else "worker")
    assert isinstance(detail["pid"], int) and isinstance(detail["revision"], int)
    assert curl("-u", f"{key}:wrong", f"{url}/healthz")[0] == 403
    status, body = curl(f"{url}/metrics")
    assert status == 401 and "python_info" not in body
    status, body = curl("-H", "Authorization: Bearer scrape-key-0123456789", f"{url}/metrics")
    assert status == 200 and "python_info" in body


@pytest.mark.sqlite  # an older SQLite state.db, written by hand
def test_a_task_pulls_with_the_migrated_pull_password_and_gets_the_migrated_secret(tmp_path, docker_engine):
    data = tmp_path / "data"
    old_data_dir(data)
    server = Dockyard(data).start()
    cluster = f"sealed-{uuid.uuid4().hex[:6]}"
    try:
        name = f"sealed-echo-{uuid.uuid4().hex[:6]}"
        remote = docker_push(server, echo_image(), f"{name}:latest")
        docker_rmi(remote)  # only a pull from the registry, as dockyard-runner, brings it back
        ecs = server.client("ecs")
        ecs.create_cluster(clusterName=cluster)
        td = ecs.register_task_definition(family=name, containerDefinitions=[{
            "name": "web", "image": f"{name}:latest", "memory": 64, "stopTimeout": 2,
            "secrets": [{"name": "DB", "valueFrom": "dockyard:secret:db-password"}],
        }])["taskDefinition"]["taskDefinitionArn"]
        arn = ecs.run_task(cluster=cluster, taskDefinition=td)["tasks"][0]["taskArn"]
        deadline = time.monotonic() + 120
        while (task := ecs.describe_tasks(cluster=cluster, tasks=[arn])["tasks"][0])["lastStatus"] not in (
            "RUNNING", "STOPPED"
        ) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert task["lastStatus"] == "RUNNING", task.get("stoppedReason")
        container = task["containers"][0]["runtimeId"]
        env = json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, text=True,
                                        check=True).stdout)[0]["Config"]["Env"]
        assert "DB=old-plaintext-secret-value" in env
        ecs.stop_task(cluster=cluster, task=arn)
    finally:
        server.stop()
        ids = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=dockyard.cluster={cluster}"],
                             capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], capture_output=True)
