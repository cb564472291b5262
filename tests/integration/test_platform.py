"""``dockyard up`` as a process: endpoints, first start, restarts, SIGKILL, the CLI."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import socket
import sqlite3
import stat
import subprocess
import threading
import time

import botocore.exceptions

from tests.support.server import BIN


def test_first_start_prints_each_endpoint_and_writes_private_admin_credentials(fresh_dockyard):
    server = fresh_dockyard.start()
    out = "\n".join(server.output)
    for name, port in (("registry", "registry"), ("control", "control"), ("xds", "xds"), ("dns", "dns")):
        assert f"dockyard: {name}" in out and str(server.ports[port]) in out
    assert f"admin credentials written to {server.credentials_file}" in out
    assert stat.S_IMODE(os.stat(server.credentials_file).st_mode) == 0o600
    for port in ("registry", "control", "xds"):
        socket.create_connection(("127.0.0.1", server.ports[port]), timeout=5).close()
    server.stop()
    server.output.clear()
    server.start()
    assert "admin credentials" not in "\n".join(server.output)


def test_sigterm_stops_cleanly_and_leaves_a_consistent_database(fresh_dockyard):
    server = fresh_dockyard.start()
    server.aws("ecs", "create-cluster", "--cluster-name", "before-stop")
    pid = server.proc.pid
    assert server.stop(signal.SIGTERM) == 0
    assert "dockyard: stopped" in server.output
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    assert children.strip() == ""
    db = sqlite3.connect(server.data_dir / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def test_sigkill_during_writes_loses_no_acknowledged_write(fresh_dockyard):
    server = fresh_dockyard.start()
    ecs = server.client("ecs")
    acknowledged: list[str] = []
    stop = threading.Event()

    def writer(n: int) -> None:
        i = 0
        while not stop.is_set():
            name = f"w{n}-{i}"
            try:
                ecs.create_cluster(clusterName=name)
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                return
            acknowledged.append(name)
            i += 1

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(writer, n) for n in range(8)]
        deadline = time.monotonic() + 20
        while len(acknowledged) < 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        server.kill()
        stop.set()
        for f in futures:
            f.result()
    assert len(acknowledged) >= 200
    server.output.clear()
    server.start()
    names = {
        arn.rsplit("/", 1)[1]
        for page in server.client("ecs").get_paginator("list_clusters").paginate()
        for arn in page["clusterArns"]
    }
    missing = set(acknowledged) - names
    assert not missing, f"{len(missing)} acknowledged writes lost"
    db = sqlite3.connect(server.data_dir / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()


def dockyard_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dockyard"), *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_keys_created_by_the_cli_sign_requests_until_deleted(dockyard):
    data = str(dockyard.data_dir)
    created = dockyard_cli("keys", "create", "--name", "ci", "--json", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    import json

    key = json.loads(created.stdout)
    env = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
    assert "clusterArns" in dockyard.aws("ecs", "list-clusters", env=env)
    listed = json.loads(dockyard_cli("keys", "list", "--json", "--data-dir", data).stdout)
    assert {k["access_key_id"] for k in listed} >= {key["AccessKeyId"]}
    table = dockyard_cli("keys", "list", "--data-dir", data).stdout
    assert table.splitlines()[0].split() == ["ACCESS_KEY_ID", "NAME", "ACCESS", "CREATED"]
    mine = [row.split() for row in table.splitlines()[1:] if row.startswith(key["AccessKeyId"])]
    assert [row[2] for row in mine] == ["admin"]
    assert dockyard_cli("keys", "delete", key["AccessKeyId"], "--data-dir", data).returncode == 0
    proc = dockyard.aws("ecs", "list-clusters", env=env, check=False)
    assert "UnrecognizedClientException" in proc.stderr


def test_cli_user_errors_are_one_line_without_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("control_port = 'many'\n")
    cases = [
        ("keys", "delete", "DKYDNOPE", "--data-dir", str(tmp_path)),
        ("up", "--config", str(bad), "--data-dir", str(tmp_path)),
        ("up", "--config", str(tmp_path / "missing.toml"), "--data-dir", str(tmp_path)),
    ]
    for args in cases:
        proc = dockyard_cli(*args)
        assert proc.returncode == 1, args
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("dockyard: ")


def test_a_port_in_use_is_one_clear_line(tmp_path, dockyard):
    proc = dockyard_cli(
        "up", "--data-dir", str(tmp_path), "--control-port", str(dockyard.ports["control"]),
        "--registry-port", "0", "--xds-port", "0", "--dns-port", "0",
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "address already in use" in proc.stderr.splitlines()[-1]


def test_environment_variables_configure_dockyard_up(tmp_path, docker_engine):
    from tests.support.server import Dockyard, free_port

    port = free_port()
    server = Dockyard(tmp_path / "data", env={"DOCKYARD_CONTROL_PORT": str(port)})
    server.ports = {k: free_port() for k in ("registry", "xds", "dns")}
    server.ports["control"] = port
    # the control port comes from the environment (the harness passes the others as flags),
    # the region from the data dir's dockyard.toml
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "dockyard.toml").write_text('region = "eu-west-3"\n')
    server.start()
    try:
        ecs = server.client("ecs", region_name="eu-west-3")
        arn = ecs.create_cluster(clusterName="r")["cluster"]["clusterArn"]
        assert arn.startswith("arn:aws:ecs:eu-west-3:")
    finally:
        server.stop()


def test_version_prints_the_version():
    proc = dockyard_cli("version")
    assert proc.returncode == 0 and proc.stdout.startswith("dockyard ")


def _up(data_dir, *extra: str) -> subprocess.CompletedProcess:
    from tests.support.server import free_port

    names = ("registry", "control", "xds", "dns")
    ports = [a for name in names for a in (f"--{name}-port", str(free_port()))]
    return dockyard_cli("up", "--data-dir", str(data_dir), *ports, *extra)


def test_one_server_per_data_dir_and_the_lock_dies_with_a_sigkilled_server(fresh_dockyard):
    server = fresh_dockyard.start()
    first = server.proc.pid
    # other ports, then the very same ports: both refused, naming the running server's pid
    for proc in (_up(server.data_dir), dockyard_cli(
        "up", "--data-dir", str(server.data_dir),
        *[a for name, port in server.ports.items() for a in (f"--{name}-port", str(port))],
    )):
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        assert f"in use by dockyard pid {first}" in proc.stderr.strip().splitlines()[-1]
    assert server.aws("ecs", "list-clusters")["clusterArns"] is not None  # the first one still serves
    server.kill()
    server.output.clear()
    server.start()  # SIGKILL left no stale lock
    assert (server.data_dir / "dockyard.lock").read_text().strip() == str(server.proc.pid)
    proc = _up(server.data_dir)
    assert proc.returncode == 1 and f"pid {server.proc.pid}" in proc.stderr
    assert server.stop() == 0


def test_the_cli_finds_a_server_started_with_other_ports_through_its_data_dir(fresh_dockyard):
    from tests.support.server import free_port

    server = fresh_dockyard.start()
    data = str(server.data_dir)
    recorded = server.data_dir / "endpoints.json"
    import json

    body = json.loads(recorded.read_text())
    assert body["pid"] == server.proc.pid
    assert body["endpoints"]["control"] == f"{server.control_url}/"
    nowhere = {"DOCKYARD_CONTROL_PORT": str(free_port()), "DOCKYARD_ENDPOINT": ""}
    listed = dockyard_cli("ps", "--data-dir", data, env=nowhere)  # no port given: found in the data dir
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.split()[0] == "TASK"
    assert server.stop() == 0
    assert not recorded.exists()  # removed on a clean stop
    gone = dockyard_cli("ps", "--data-dir", data, env=nowhere)
    assert gone.returncode == 1 and "Traceback" not in gone.stderr
    line = gone.stderr.strip()
    assert len(line.splitlines()) == 1, line
    assert f"http://127.0.0.1:{nowhere['DOCKYARD_CONTROL_PORT']}" in line and "--endpoint-url" in line
    # a SIGKILLed server's record is left behind, and ignored
    server.output.clear()
    server.start()
    server.kill()
    assert recorded.exists()
    stale = dockyard_cli("ps", "--data-dir", data, env=nowhere)
    assert stale.returncode == 1 and "no running server recorded" in stale.stderr


def _access_lines(path) -> list[dict]:
    import json

    if not path.exists():
        return []
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "dockyard.access"]


def test_every_registry_request_has_an_access_line_to_stderr_a_file_or_nowhere(fresh_dockyard, tmp_path):
    from tests.support.registry import RegistryClient
    from tests.support.registry_auth import ADMIN_USER

    server = fresh_dockyard.start()
    stderr_log = server.data_dir.parent / f"{server.data_dir.name}.log"
    reg = RegistryClient(server)
    digest = reg.push_blob("logs/app", b"x" * 1000)
    got = reg.get(f"/v2/logs/app/blobs/{digest}")
    assert got.status_code == 200
    anonymous = reg.session.get(server.registry_url + "/v2/_catalog", timeout=30)
    assert anonymous.status_code == 401
    time.sleep(0.5)
    lines = _access_lines(stderr_log)
    (blob,) = [x for x in lines if x["path"] == f"/v2/logs/app/blobs/{digest}" and x["method"] == "GET"
               and x["status"] == 200]
    assert 1000 < blob["bytes"] < 1000 + 2048  # the body and its headers
    assert blob["principal"] == ADMIN_USER and blob["level"] == "info"
    assert blob["request_id"] == got.headers["X-Request-Id"] and 0 <= blob["duration"] < 30
    (denied,) = [x for x in lines if x["path"] == "/v2/_catalog"]
    assert denied["status"] == 401 and "principal" not in denied
    assert denied["request_id"] == anonymous.headers["X-Request-Id"]
    server.stop()

    to_file = tmp_path / "access.jsonl"
    for setting in (str(to_file), "false"):
        server.env = {"DOCKYARD_ACCESS_LOG": setting}
        before = len(_access_lines(stderr_log))
        server.output.clear()
        server.start()
        assert reg.session.get(server.registry_url + "/v2/", timeout=30).status_code == 401
        time.sleep(0.5)
        server.stop()
        assert len(_access_lines(stderr_log)) == before  # not on stderr
    (line,) = _access_lines(to_file)  # only the first restart wrote it
    assert line["path"] == "/v2/" and line["status"] == 401


def test_dockyard_up_names_its_data_dir(fresh_dockyard):
    server = fresh_dockyard.start()
    assert f"dockyard: data dir  {server.data_dir}" in server.output


def test_every_control_api_request_has_one_access_line_from_the_main_process_or_a_worker(
    fresh_dockyard, tmp_path
):
    server = fresh_dockyard.start()
    stderr_log = server.data_dir.parent / f"{server.data_dir.name}.log"
    key, _ = server.credentials
    server.aws("ecs", "create-cluster", "--cluster-name", "logged")
    server.aws("ecs", "list-clusters")
    denied = server.aws("ecs", "list-clusters", env={"AWS_SECRET_ACCESS_KEY": "wrong"}, check=False)
    assert denied.returncode != 0
    time.sleep(0.5)
    lines = [x for x in _access_lines(stderr_log) if x["path"] == "/"]
    (create,) = [x for x in lines if x.get("operation") == "CreateCluster"]
    assert create["method"] == "POST" and create["status"] == 200 and create["principal"] == key
    assert create["bytes"] > 100 and 0 <= create["duration"] < 30 and len(create["request_id"]) == 32
    assert create["level"] == "info"
    ok, refused = [x for x in lines if x.get("operation") == "ListClusters"]
    assert ok["status"] == 200 and ok["principal"] == key
    assert refused["status"] == 403 and "principal" not in refused  # a bad signature
    server.stop()

    # control workers: each request once, from the worker that answered it or from the main
    # process for what the workers forward; into the file the setting names
    to_file = tmp_path / "access.jsonl"
    server.env = {"DOCKYARD_ACCESS_LOG": str(to_file)}
    server.extra_args = ["--control-workers", "2"]
    server.output.clear()
    server.start()
    for _ in range(6):
        server.aws("ecs", "list-clusters")  # read-only: a worker answers it
    server.aws("ecs", "create-cluster", "--cluster-name", "forwarded")  # the main process does
    time.sleep(0.5)
    server.stop()
    lines = _access_lines(to_file)
    listed = [x for x in lines if x.get("operation") == "ListClusters"]
    assert len(listed) == 6 and {x["status"] for x in listed} == {200}
    assert {x["principal"] for x in listed} == {key} and all(x["bytes"] > 100 for x in listed)
    (created,) = [x for x in lines if x.get("operation") == "CreateCluster"]
    assert created["status"] == 200 and created["principal"] == key
