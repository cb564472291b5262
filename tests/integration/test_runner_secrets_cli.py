"""``dockyard secrets`` against a running server's data dir."""

from __future__ import annotations

import json


def test_secrets_are_put_listed_without_values_and_deleted(dockyard):
    data = ["--data-dir", str(dockyard.data_dir)]
    put = dockyard.cli("secrets", "put", "db-password", "--value-stdin", *data, input="s3cret\n")
    assert put.returncode == 0, put.stderr
    assert "dockyard:secret:db-password" in put.stdout
    listed = dockyard.cli("secrets", "list", "--json", *data)
    names = [r["name"] for r in json.loads(listed.stdout)]
    assert "db-password" in names and "s3cret" not in listed.stdout
    ecs = dockyard.client("ecs")
    td = ecs.register_task_definition(
        family="uses-secret",
        containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32,
                               "secrets": [{"name": "DB", "valueFrom": "dockyard:secret:db-password"}]}],
    )["taskDefinition"]
    ref = {"name": "DB", "valueFrom": "dockyard:secret:db-password"}
    assert td["containerDefinitions"][0]["secrets"] == [ref]
    assert "s3cret" not in json.dumps(td, default=str)
    gone = dockyard.cli("secrets", "delete", "db-password", *data)
    assert gone.returncode == 0
    again = dockyard.cli("secrets", "delete", "db-password", *data)
    assert again.returncode == 1 and again.stderr.strip() == "dockyard: no secret db-password"


def test_a_put_without_value_stdin_is_a_one_line_error(dockyard):
    proc = dockyard.cli("secrets", "put", "x", "--data-dir", str(dockyard.data_dir))
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1 and "--value-stdin" in proc.stderr
