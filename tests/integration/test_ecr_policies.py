"""Repository policies enforced for two limited keys and a registry user, on the ECR API
(``aws ecr``) and on the registry (docker push and pull): a repository policy's ``Allow``
grants what the key's own policy lacks, an explicit ``Deny`` refuses what it allows."""

from __future__ import annotations

import json
import uuid

from tests.support.ecr import ACCOUNT, ecr_login, make_key
from tests.support.registry import docker_rmi
from tests.support.registry_auth import create_user


def _arn(kind: str, name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:{kind}/{name}"


def test_a_repository_policy_allows_and_denies_keys_and_users_on_the_api_and_the_registry(
    dockyard, docker, images
):
    suffix = uuid.uuid4().hex[:6]
    repo, plain = f"pol-{suffix}/app", f"pol-{suffix}/plain"
    alice, bob, carol = f"alice-{suffix}", f"bob-{suffix}", f"carol-{suffix}"
    for name in (repo, plain):
        dockyard.aws("ecr", "create-repository", "--repository-name", name)
    # alice may only log in and list; bob may do any ecr: action
    login_only = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["ecr:GetAuthorizationToken", "ecr:ListImages"], "Resource": "*"}
        ],
    }
    everything = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "ecr:*", "Resource": "*"}],
    }
    as_alice, as_bob = make_key(dockyard, alice, login_only), make_key(dockyard, bob, everything)
    create_user(dockyard, carol, "pw-" + carol, f"pol-{suffix}/=pull,push")
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "alice-reads-and-pushes",
                "Effect": "Allow",
                "Principal": {"AWS": _arn("user", alice)},
                "Action": [
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                    "ecr:DescribeImages",
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:InitiateLayerUpload",
                    "ecr:UploadLayerPart",
                    "ecr:CompleteLayerUpload",
                    "ecr:PutImage",
                ],
            },
            {
                "Sid": "not-bob-nor-carol",
                "Effect": "Deny",
                "Principal": {"AWS": [_arn("user", bob), _arn("user", carol)]},
                "Action": ["ecr:BatchGetImage", "ecr:PutImage", "ecr:DescribeImages"],
            },
        ],
    }
    dockyard.aws(
        "ecr", "set-repository-policy", "--repository-name", repo, "--policy-text", json.dumps(policy)
    )

    def api(env: dict[str, str], *args: str):
        return dockyard.aws("ecr", *args, env=env, check=False)

    # -- the registry: alice pushes and pulls by the repository's Allow alone -----------------
    ref, other = f"{dockyard.registry}/{repo}:v1", f"{dockyard.registry}/{plain}:v1"
    try:
        for r in (ref, other):
            assert docker.run("tag", images[0], r).returncode == 0
        ecr_login(dockyard, docker, as_alice)
        pushed = docker.run("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert docker.run("push", other).returncode != 0  # no policy there: her own policy lacks push
        docker_rmi(ref)
        pulled = docker.run("pull", ref)
        assert pulled.returncode == 0, pulled.stderr
        # bob's own policy allows everything, the repository's Deny wins
        ecr_login(dockyard, docker, as_bob)
        docker_rmi(ref)
        refused = docker.run("pull", ref)
        assert refused.returncode != 0
        assert "denied" in (refused.stderr + refused.stdout).lower()
        assert docker.run("tag", images[1], ref).returncode == 0
        assert docker.run("push", ref).returncode != 0
        assert docker.run("push", other).returncode == 0  # elsewhere bob may
        # carol, a registry user whose grants cover the prefix, is denied too
        assert docker.login(dockyard.registry, carol, "pw-" + carol).returncode == 0
        docker_rmi(ref)
        assert docker.run("pull", ref).returncode != 0
        assert docker.run("pull", other).returncode == 0
    finally:
        docker_rmi(ref, other)

    # -- the API: the same decisions --------------------------------------------------------
    got = api(as_alice, "batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=v1")
    assert got.returncode == 0, got.stderr
    assert [i["imageId"]["imageTag"] for i in json.loads(got.stdout)["images"]] == ["v1"]
    assert api(as_alice, "describe-images", "--repository-name", repo).returncode == 0
    elsewhere = api(as_alice, "batch-get-image", "--repository-name", plain, "--image-ids", "imageTag=v1")
    assert elsewhere.returncode != 0 and "AccessDeniedException" in elsewhere.stderr
    assert "because no identity-based policy allows the ecr:BatchGetImage action" in elsewhere.stderr
    assert api(as_alice, "delete-repository-policy", "--repository-name", repo).returncode != 0
    for args in (
        ("batch-get-image", "--repository-name", repo, "--image-ids", "imageTag=v1"),
        ("describe-images", "--repository-name", repo),
        ("put-image", "--repository-name", repo, "--image-tag", "v2", "--image-manifest", "{}"),
    ):
        denied = api(as_bob, *args)
        assert denied.returncode != 0 and "AccessDeniedException" in denied.stderr, args
        assert "with an explicit deny in a resource-based policy" in denied.stderr
    listed = api(as_bob, "list-images", "--repository-name", repo)
    assert listed.returncode == 0, listed.stderr
    assert api(as_bob, "describe-images", "--repository-name", plain).returncode == 0
