"""ECR on a server of its own: lifecycle policies applied periodically, create-on-push off,
and the read-only ECR operations answered by control workers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.registry import RegistryClient
from tests.support.server import Dockyard

ENV = {
    "DOCKYARD_LIFECYCLE_INTERVAL": "1",
    "DOCKYARD_REGISTRY_CREATE_ON_PUSH": "false",
    "DOCKYARD_CONTROL_WORKERS": "2",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, docker_engine: str) -> Iterator[Dockyard]:
    dockyard = Dockyard(Path(tmp_path_factory.mktemp("ecr-server")) / "data", env=ENV).start()
    try:
        yield dockyard
    finally:
        dockyard.stop()


def test_a_push_to_an_unknown_repository_is_refused_when_create_on_push_is_off(server):
    reg = RegistryClient(server)
    r = reg.post("/v2/nowhere/blobs/uploads/")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NAME_UNKNOWN"
    server.aws("ecr", "create-repository", "--repository-name", "somewhere")
    assert reg.post("/v2/somewhere/blobs/uploads/").status_code == 202


def test_a_lifecycle_policy_is_applied_periodically(server):
    ecr = server.client("ecr")
    ecr.create_repository(repositoryName="shop/life")
    reg = RegistryClient(server)
    digests = [reg.push_image("shop/life", f"v{n}", [f"layer {n}".encode()])[0] for n in range(3)]
    ecr.put_lifecycle_policy(
        repositoryName="shop/life",
        lifecyclePolicyText=json.dumps(
            {
                "rules": [
                    {
                        "rulePriority": 1,
                        "selection": {
                            "tagStatus": "any",
                            "countType": "imageCountMoreThan",
                            "countNumber": 1,
                        },
                        "action": {"type": "expire"},
                    }
                ]
            }
        ),
    )
    deadline = time.monotonic() + 30
    while len(ecr.list_images(repositoryName="shop/life")["imageIds"]) > 1:
        assert time.monotonic() < deadline, "the policy was not applied within 30 s"
        time.sleep(0.5)
    assert ecr.list_images(repositoryName="shop/life")["imageIds"] == [
        {"imageDigest": digests[2], "imageTag": "v2"}
    ]
    assert "lastEvaluatedAt" in ecr.get_lifecycle_policy(repositoryName="shop/life")


def test_read_only_ecr_operations_are_answered_with_workers_serving(server):
    for _ in range(6):  # some of these land on the workers
        assert server.aws("ecr", "describe-repositories")["repositories"]
        assert server.aws("ecr", "get-authorization-token")["authorizationData"][0]["authorizationToken"]
