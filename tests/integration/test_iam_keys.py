"""Scoped access keys against a real server, driven by the aws CLI, boto3 and curl."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Dockyard


def make_key(dockyard: Dockyard, name: str, *flags: str) -> tuple[str, str]:
    data_dir = str(dockyard.data_dir)
    proc = dockyard.cli("keys", "create", "--name", name, "--json", "--data-dir", data_dir, *flags)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    return out["AccessKeyId"], out["SecretAccessKey"]


def aws_as(dockyard: Dockyard, key: tuple[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {"AWS_ACCESS_KEY_ID": key[0], "AWS_SECRET_ACCESS_KEY": key[1]}
    return dockyard.aws(*args, env=env, check=False)


@pytest.fixture(scope="module")
def read_only(dockyard: Dockyard) -> tuple[str, str]:
    return make_key(dockyard, "viewer", "--read-only")


def test_a_read_only_key_lists_but_may_not_create_a_cluster(dockyard: Dockyard, read_only: Any) -> None:
    dockyard.aws("ecs", "create-cluster", "--cluster-name", "iam-seen")  # the admin key
    listed = aws_as(dockyard, read_only, "ecs", "list-clusters")
    assert listed.returncode == 0, listed.stderr
    assert any(a.endswith("/iam-seen") for a in json.loads(listed.stdout)["clusterArns"])
    assert aws_as(dockyard, read_only, "servicediscovery", "list-namespaces").returncode == 0
    created = aws_as(dockyard, read_only, "ecs", "create-cluster", "--cluster-name", "iam-nope")
    assert created.returncode != 0
    assert "AccessDeniedException" in created.stderr
    assert (
        "User: arn:aws:iam::000000000000:user/viewer is not authorized to perform: ecs:CreateCluster on "
        "resource: arn:aws:ecs:us-east-1:000000000000:cluster/iam-nope" in created.stderr
    )
    gone = aws_as(dockyard, read_only, "ecs", "describe-clusters", "--clusters", "iam-nope")
    assert json.loads(gone.stdout)["failures"][0]["reason"] == "MISSING"
    ns = aws_as(dockyard, read_only, "servicediscovery", "create-http-namespace", "--name", "iam-nope")
    assert "AccessDeniedException" in ns.stderr and "servicediscovery:CreateHttpNamespace" in ns.stderr


def test_a_deny_on_one_cluster_arn(dockyard: Dockyard, tmp_path: Path) -> None:
    arn = "arn:aws:ecs:us-east-1:000000000000:cluster/iam-locked"
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["ecs:*"], "Resource": "*"},
        {"Effect": "Deny", "Action": "ecs:*", "Resource": arn},
    ]}
    (tmp_path / "policy.json").write_text(json.dumps(doc))
    key = make_key(dockyard, "ci", "--policy", str(tmp_path / "policy.json"))
    ecs = dockyard.client("ecs", key=key[0], secret=key[1])
    ecs.create_cluster(clusterName="iam-open")
    assert ecs.list_services(cluster="iam-open")["serviceArns"] == []
    from botocore.exceptions import ClientError

    for call in (
        lambda: ecs.create_cluster(clusterName="iam-locked"),
        lambda: ecs.list_services(cluster="iam-locked"),
        lambda: ecs.describe_clusters(clusters=["iam-open", arn]),
        lambda: ecs.delete_cluster(cluster=arn),
    ):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"
        assert f"on resource: {arn} with an explicit deny" in err.value.response["Error"]["Message"]
    # Cloud Map was never allowed: an implicit deny
    sd = dockyard.client("servicediscovery", key=key[0], secret=key[1])
    with pytest.raises(ClientError) as err:
        sd.list_namespaces()
    assert "because no identity-based policy allows the servicediscovery:ListNamespaces" in str(err.value)


def test_the_event_stream_is_authorized_too(dockyard: Dockyard, tmp_path: Path, read_only: Any) -> None:
    url = f"{dockyard.control_url}/events"

    def curl(key: tuple[str, str], query: str = "") -> tuple[str, str]:
        proc = subprocess.run(
            ["curl", "-sS", "-m", "2", "-u", f"{key[0]}:{key[1]}", "-w", "\n%{http_code}", url + query],
            capture_output=True, text=True,
        )
        body, _, code = proc.stdout.rpartition("\n")
        return code, body

    code, body = curl(read_only)
    assert code == "200" and body.startswith(": dockyard events")  # cut by -m 2
    doc = {"Version": "2012-10-17", "Statement": {
        "Effect": "Allow", "Action": "dockyard:GetEvents",
        "Resource": "arn:aws:ecs:us-east-1:000000000000:cluster/iam-mine"}}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    mine = make_key(dockyard, "mine", "--policy", str(tmp_path / "p.json"))
    code, body = curl(mine)
    assert code == "400" and json.loads(body)["__type"] == "AccessDeniedException"
    assert "dockyard:GetEvents on resource: *" in json.loads(body)["message"]
    code, body = curl(mine, "?cluster=iam-mine")
    assert code == "200", body
    code, body = curl(mine, "?cluster=other")
    assert code == "400"
