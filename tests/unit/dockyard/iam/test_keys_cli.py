"""``dockyard keys create --policy FILE`` and ``--read-only``."""

from __future__ import annotations

import json
from typing import Any

from dockyard import cli
from dockyard.config import Config
from dockyard.iam import policy
from dockyard.iam.records import key_policy
from dockyard.platform import open_store


def created(tmp_path: Any, capsys: Any, *flags: str) -> str:
    assert cli.main(["keys", "create", "--json", "--data-dir", str(tmp_path / "d"), *flags]) == 0
    return json.loads(capsys.readouterr().out)["AccessKeyId"]


def stored(tmp_path: Any, key_id: str) -> str | None:
    return key_policy(open_store(Config(data_dir=str(tmp_path / "d"))), key_id)


def test_a_key_without_a_policy_is_an_administrator(tmp_path: Any, capsys: Any) -> None:
    key_id = created(tmp_path, capsys, "--name", "admin2")
    assert stored(tmp_path, key_id) is None
    assert cli.main(["keys", "list", "--json", "--data-dir", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["access"] == "admin"


def test_read_only_stores_the_preset(tmp_path: Any, capsys: Any) -> None:
    key_id = created(tmp_path, capsys, "--read-only")
    assert policy.parse(stored(tmp_path, key_id) or "") == policy.parse(policy.READ_ONLY)
    assert cli.main(["keys", "list", "--data-dir", str(tmp_path / "d")]) == 0
    assert "policy" in capsys.readouterr().out


def test_a_policy_file(tmp_path: Any, capsys: Any) -> None:
    doc = {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "ecs:List*", "Resource": "*"}}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    key_id = created(tmp_path, capsys, "--policy", str(path))
    assert json.loads(stored(tmp_path, key_id) or "") == doc


def test_a_bad_policy_is_one_line_and_makes_no_key(tmp_path: Any, capsys: Any) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"Statement": {"Effect": "Allow", "Action": "ecs:List*"}}))
    assert cli.main(["keys", "create", "--policy", str(path), "--data-dir", str(tmp_path / "d")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("dockyard: policy ") and "Resource" in err and err.count("\n") == 1
    missing = str(tmp_path / "nope")
    assert cli.main(["keys", "create", "--policy", missing, "--data-dir", str(tmp_path / "d")]) == 1
    assert "nope" in capsys.readouterr().err
    assert cli.main(["keys", "create", "--policy", str(path), "--read-only",
                     "--data-dir", str(tmp_path / "d")]) == 1
    assert "not both" in capsys.readouterr().err
    assert cli.main(["keys", "list", "--json", "--data-dir", str(tmp_path / "d")]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_roles_create_list_delete(tmp_path: Any, capsys: Any) -> None:
    d = ["--data-dir", str(tmp_path / "d")]
    assert cli.main(["roles", "create", "app", "--read-only", "--json", *d]) == 0
    arn = "arn:aws:iam::000000000000:role/app"
    assert json.loads(capsys.readouterr().out) == {"RoleName": "app", "Arn": arn}
    assert cli.main(["roles", "create", "app", "--read-only", *d]) == 1
    assert "exists" in capsys.readouterr().err
    assert cli.main(["roles", "create", "other", *d]) == 1
    assert "--policy" in capsys.readouterr().err
    assert cli.main(["roles", "create", "bad name", "--read-only", *d]) == 1
    capsys.readouterr()
    assert cli.main(["roles", "list", "--json", *d]) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["app"]
    assert cli.main(["roles", "delete", "app", *d]) == 0
    assert cli.main(["roles", "delete", "app", *d]) == 1
