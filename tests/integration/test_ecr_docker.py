"""docker against ECR's login: ``aws ecr get-login-password | docker login --username AWS``,
push (create-on-push), pull, tag immutability as docker shows it, and repository policies
for a limited key."""

from __future__ import annotations

import json
import uuid

from tests.support.ecr import ACCOUNT, ecr_login, make_key
from tests.support.registry import docker_rmi


def test_get_login_password_logs_docker_in_to_push_and_pull(dockyard, docker, images):
    name = f"ecr-docker-{uuid.uuid4().hex[:6]}"
    ecr_login(dockyard, docker)
    ref = f"{dockyard.registry}/{name}:v1"
    try:
        assert docker.run("tag", images[0], ref).returncode == 0
        pushed = docker.run("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        docker_rmi(ref)
        pulled = docker.run("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
    finally:
        docker_rmi(ref)
    detail = dockyard.aws("ecr", "describe-images", "--repository-name", name)["imageDetails"]
    assert [d["imageTags"] for d in detail] == [["v1"]]
    assert detail[0]["imageManifestMediaType"] in (
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    )
    assert "lastRecordedPullTime" in detail[0]


def test_docker_push_over_an_immutable_tag_is_refused_with_ecrs_message(dockyard, docker, images):
    name = f"ecr-immutable-{uuid.uuid4().hex[:6]}"
    dockyard.aws("ecr", "create-repository", "--repository-name", name, "--image-tag-mutability", "IMMUTABLE")
    ecr_login(dockyard, docker)
    ref = f"{dockyard.registry}/{name}:v1"
    try:
        assert docker.run("tag", images[0], ref).returncode == 0
        assert docker.run("push", ref).returncode == 0
        again = docker.run("push", ref)  # the same image again: nothing moves
        assert again.returncode == 0, again.stderr
        assert docker.run("tag", images[1], ref).returncode == 0
        refused = docker.run("push", ref)
        assert refused.returncode != 0
        assert (
            f"tag invalid: The image tag 'v1' already exists in the '{name}' repository and cannot be"
            " overwritten because the repository is immutable."
        ) in refused.stderr + refused.stdout
        other = f"{dockyard.registry}/{name}:v2"
        assert docker.run("tag", images[1], other).returncode == 0
        assert docker.run("push", other).returncode == 0
    finally:
        docker_rmi(ref, f"{dockyard.registry}/{name}:v2")


def test_a_limited_key_pushes_where_a_repository_policy_lets_it(dockyard, docker, images):
    suffix = uuid.uuid4().hex[:6]
    readable, shared = f"ecr-read-{suffix}", f"ecr-shared-{suffix}"
    user = f"ci-{suffix}"
    for repo in (readable, shared):
        dockyard.aws("ecr", "create-repository", "--repository-name", repo)
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"},
            {
                "Effect": "Allow",
                "Action": ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                "Resource": f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/ecr-*",
            },
        ],
    }
    env = make_key(dockyard, user, policy)
    repo_policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ci-pushes",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{user}"},
                "Action": [
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                    "ecr:BatchCheckLayerAvailability",
                ],
            }
        ],
    }
    dockyard.aws(
        "ecr", "set-repository-policy", "--repository-name", shared, "--policy-text", json.dumps(repo_policy)
    )
    ecr_login(dockyard, docker, env)
    mine, theirs = f"{dockyard.registry}/{shared}:v1", f"{dockyard.registry}/{readable}:v1"
    try:
        for ref in (mine, theirs):
            assert docker.run("tag", images[0], ref).returncode == 0
        pushed = docker.run("push", mine)
        assert pushed.returncode == 0, pushed.stderr
        refused = docker.run("push", theirs)
        assert refused.returncode != 0
        assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower()
        docker_rmi(mine)
        assert docker.run("pull", mine).returncode == 0
        # an explicit Deny in the repository policy wins over the key's own Allow
        deny = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "ecr:BatchGetImage"}],
        }
        dockyard.aws(
            "ecr", "set-repository-policy", "--repository-name", shared, "--policy-text", json.dumps(deny)
        )
        docker_rmi(mine)
        ecr_login(dockyard, docker, env)
        assert docker.run("pull", mine).returncode != 0
        api = dockyard.aws(
            "ecr",
            "batch-get-image",
            "--repository-name",
            shared,
            "--image-ids",
            "imageTag=v1",
            env=env,
            check=False,
        )
        assert api.returncode != 0 and "AccessDeniedException" in api.stderr
    finally:
        docker_rmi(mine, theirs)
