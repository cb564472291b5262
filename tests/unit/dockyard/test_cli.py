"""The CLI's own behaviour: usage on a wrong flag, a server that does not answer, finding the
server a data dir records, naming the data dir a write used."""

import os
import socket

import pytest

from dockyard import cli, endpoints, keys
from dockyard.client import resolve_endpoint
from dockyard.config import load
from dockyard.platform import open_store


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_wrong_flag_shows_the_usage_of_the_subcommand_it_was_given_to(capsys):
    for argv, usage in (
        (["ps", "--bogus"], "usage: dockyard ps"),
        (["keys", "list", "--bogus"], "usage: dockyard keys list"),
        (["discovery", "instances", "srv-1", "--nope"], "usage: dockyard discovery instances"),
    ):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith(usage), err
        assert "unrecognized arguments: --" in err


def test_no_server_is_one_line_naming_the_url_and_how_to_point_elsewhere(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("DOCKYARD_ENDPOINT", raising=False)
    port = _closed_port()
    monkeypatch.setenv("DOCKYARD_CONTROL_PORT", str(port))
    assert cli.main(["ps", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert f"http://127.0.0.1:{port}" in err and "Connection refused" in err
    assert "--endpoint-url" in err and "DOCKYARD_ENDPOINT" in err and str(tmp_path) in err
    monkeypatch.setenv("DOCKYARD_ENDPOINT", f"http://127.0.0.1:{port}")
    assert cli.main(["services", "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "dockyard: cluster default" in err  # where it looked
    assert "URL from DOCKYARD_ENDPOINT" in err.splitlines()[-1]


def test_the_endpoint_recorded_by_a_live_server_wins_over_the_configured_port(tmp_path, monkeypatch):
    monkeypatch.delenv("DOCKYARD_ENDPOINT", raising=False)
    config = load({"data_dir": str(tmp_path)}, None, {})
    endpoints.write(str(tmp_path), [("registry", "http://0.0.0.0:5001/v2/"), ("control", "http://0.0.0.0:9999/")])
    url, source = resolve_endpoint(config)
    assert url == "http://127.0.0.1:9999/" and f"pid {os.getpid()}" in source
    assert resolve_endpoint(config, "http://elsewhere:1")[0] == "http://elsewhere:1"
    endpoints.remove(str(tmp_path), pid=1)  # not ours: kept
    assert (tmp_path / endpoints.FILE).exists()
    endpoints.remove(str(tmp_path))
    assert not (tmp_path / endpoints.FILE).exists()
    # a record left by a server that died (SIGKILL) is ignored
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    endpoints.write(str(tmp_path), [("control", "http://127.0.0.1:9999/")], pid=dead)
    url, source = resolve_endpoint(config)
    assert url == "http://127.0.0.1:8080" and "no running server recorded" in source


def test_commands_that_write_the_data_dir_name_it(tmp_path, capsys):
    assert cli.main(["keys", "create", "--name", "ci", "--data-dir", str(tmp_path)]) == 0
    assert f"data dir:          {tmp_path}" in capsys.readouterr().out
    (key,) = keys.list_keys(open_store(load({"data_dir": str(tmp_path)}, None, {})))
    assert cli.main(["keys", "delete", key.access_key_id, "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"deleted {key.access_key_id} (data dir {tmp_path})"
