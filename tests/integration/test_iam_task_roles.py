"""Task roles end to end: a task fetches its role's credentials from the container credentials
endpoint, routed to 169.254.170.2 (runner.credsnat), with wget; botocore's container provider
accepts that URI; boto3 and the aws CLI on the host then act with the role's permissions. The
DNAT chain is gone once the server stops."""

from __future__ import annotations

import calendar
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.credentials import ContainerProvider
from botocore.exceptions import ClientError

from tests.support.images import busybox_image
from tests.support.server import Dockyard

LIFETIME = 25  # seconds the credentials last on this module's server
ROUTED: list[int] = []  # the endpoint's port, for the check that its chain is removed


def nat_rules() -> str:
    return subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    env = {"DOCKYARD_TASK_ROLE_SECONDS": str(LIFETIME)}
    server = Dockyard(tmp_path_factory.mktemp("roles") / "data", env=env)
    server.start()
    try:
        yield server
    finally:
        ecs = server.client("ecs")
        for arn in ecs.list_tasks(cluster="roles")["taskArns"]:
            ecs.stop_task(cluster="roles", task=arn)
        server.stop()
    for port in ROUTED:
        assert f"DOCKYARD-CREDS-{port}" not in nat_rules()


def wait_for(check: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def run_fetcher(server: Dockyard, role: str) -> tuple[dict[str, Any], str, str]:
    """Run a task with ``role`` that prints its credentials; returns them, the task ARN and the
    container id."""
    ecs = server.client("ecs")
    fetch = ('wget -q -O - --header "Authorization: $AWS_CONTAINER_AUTHORIZATION_TOKEN" '
             '"$AWS_CONTAINER_CREDENTIALS_FULL_URI"; echo; sleep 600')
    td = ecs.register_task_definition(
        family=f"roles-{role}", taskRoleArn=f"arn:aws:iam::000000000000:role/{role}",
        containerDefinitions=[{"name": "app", "image": busybox_image(), "memory": 16,
                               "command": ["sh", "-c", fetch], "stopTimeout": 1}],
    )["taskDefinition"]["taskDefinitionArn"]
    out = ecs.run_task(cluster="roles", taskDefinition=td)
    assert out["failures"] == [], out
    arn = out["tasks"][0]["taskArn"]
    task = wait_for(lambda: (t := ecs.describe_tasks(cluster="roles", tasks=[arn])["tasks"][0])["lastStatus"]
                    == "RUNNING" and t, 90, "the task to run")
    container = task["containers"][0]["runtimeId"]

    def printed() -> dict[str, Any] | None:
        logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True).stdout
        return json.loads(logs.splitlines()[0]) if logs.strip() else None

    return wait_for(printed, 30, "the credentials in the task's output"), arn, container


def test_a_task_acts_with_its_roles_permissions_until_they_expire(server: Dockyard, tmp_path: Path) -> None:
    proc = server.cli("roles", "create", "reader", "--read-only", "--data-dir", str(server.data_dir))
    assert proc.returncode == 0, proc.stderr
    server.client("ecs").create_cluster(clusterName="roles")
    creds, task_arn, container = run_fetcher(server, "reader")
    assert creds["RoleArn"] == "arn:aws:iam::000000000000:role/reader"
    assert creds["AccessKeyId"].startswith("ASIA") and creds["Token"]
    ends = calendar.timegm(time.strptime(creds["Expiration"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 0 < ends - time.time() <= LIFETIME + 1

    ecs = server.client("ecs", key=creds["AccessKeyId"], secret=creds["SecretAccessKey"],
                        aws_session_token=creds["Token"])
    assert any(a.endswith("/roles") for a in ecs.list_clusters()["clusterArns"])
    with pytest.raises(ClientError) as err:
        ecs.create_cluster(clusterName="roles-nope")
    message = err.value.response["Error"]["Message"]
    assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    task_id = task_arn.rsplit("/", 1)[-1]
    principal = f"arn:aws:sts::000000000000:assumed-role/reader/{task_id}"
    assert message.startswith(f"User: {principal} is not authorized")

    env = {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
           "AWS_SESSION_TOKEN": creds["Token"]}
    listed = server.aws("ecs", "list-clusters", env=env, check=False)
    assert listed.returncode == 0, listed.stderr
    denied = server.aws("ecs", "delete-cluster", "--cluster", "roles", env=env, check=False)
    assert "AccessDeniedException" in denied.stderr
    # the key without its token is no key
    no_token = {**env, "AWS_SESSION_TOKEN": ""}
    refused = server.aws("ecs", "list-clusters", env=no_token, check=False)
    assert "UnrecognizedClientException" in refused.stderr

    # the endpoint answers the task's own token only, and the host reaches it too
    inspected = subprocess.run(["docker", "inspect", container], capture_output=True, text=True).stdout
    inspect = json.loads(inspected)
    vars_ = dict(v.split("=", 1) for v in inspect[0]["Config"]["Env"])
    uri, token = vars_["AWS_CONTAINER_CREDENTIALS_FULL_URI"], vars_["AWS_CONTAINER_AUTHORIZATION_TOKEN"]

    # the URI is at 169.254.170.2 (a DNAT rule of Dockyard's own), which the SDKs accept
    host, _, port = uri.split("/")[2].partition(":")
    assert host == "169.254.170.2", uri
    ROUTED.append(int(port))
    assert f"-j DNAT --to-destination 172.17.0.1:{port}" in nat_rules()
    provider = ContainerProvider(environ={"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
                                          "AWS_CONTAINER_AUTHORIZATION_TOKEN": token})
    loaded = provider.load().get_frozen_credentials()
    assert loaded.access_key.startswith("ASIA") and loaded.token

    def curl(*headers: str) -> str:
        args = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", uri]
        for h in headers:
            args += ["-H", h]
        return subprocess.run(args, capture_output=True, text=True).stdout

    assert curl(f"Authorization: {token}") == "200"
    assert curl("Authorization: nope") == "403"

    # expiry: the same credentials are refused once their time is up
    time.sleep(max(0.0, ends - time.time() + 1))
    with pytest.raises(ClientError) as err:
        ecs.list_clusters()
    assert err.value.response["Error"]["Code"] == "UnrecognizedClientException"

    # a stopped task gets no more credentials
    server.client("ecs").stop_task(cluster="roles", task=task_arn)
    wait_for(lambda: curl(f"Authorization: {token}") == "404", 60, "the endpoint to refuse a stopped task")


def test_a_key_may_only_pass_roles_it_is_allowed_to(server: Dockyard, tmp_path: Path) -> None:
    role = "arn:aws:iam::000000000000:role/reader"
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ecs:*", "Resource": "*"}]}
    (tmp_path / "p.json").write_text(json.dumps(doc))
    proc = server.cli("keys", "create", "--name", "ci", "--json", "--policy", str(tmp_path / "p.json"),
                      "--data-dir", str(server.data_dir))
    key = json.loads(proc.stdout)
    ecs = server.client("ecs", key=key["AccessKeyId"], secret=key["SecretAccessKey"])
    ecs.create_cluster(clusterName="roles")
    td = ecs.register_task_definition(family="roles-pass", taskRoleArn=role, containerDefinitions=[
        {"name": "app", "image": busybox_image(), "memory": 16, "command": ["true"]}])["taskDefinition"]
    with pytest.raises(ClientError) as err:
        ecs.run_task(cluster="roles", taskDefinition=td["taskDefinitionArn"])
    assert f"iam:PassRole on resource: {role}" in err.value.response["Error"]["Message"]
