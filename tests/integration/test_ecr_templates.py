"""Repository creation templates through the ``aws ecr`` CLI, applied by a docker push that
creates a repository."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from tests.support.ecr import ACCOUNT, ecr_login
from tests.support.registry import docker_rmi

LIFECYCLE = {
    "rules": [
        {
            "rulePriority": 1,
            "selection": {"tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 1},
            "action": {"type": "expire"},
        }
    ]
}
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Sid": "all", "Effect": "Allow", "Principal": "*", "Action": "ecr:BatchGetImage"}],
}


def _error(dockyard, *args: str) -> str:
    proc = dockyard.aws("ecr", *args, check=False)
    assert proc.returncode != 0, proc.stdout
    return proc.stderr


def test_a_template_made_with_the_cli_shapes_the_repository_a_docker_push_creates(dockyard, docker, images):
    prefix = f"tpl-{uuid.uuid4().hex[:6]}"
    created = dockyard.aws(
        "ecr",
        "create-repository-creation-template",
        "--prefix",
        prefix,
        "--applied-for",
        "CREATE_ON_PUSH",
        "PULL_THROUGH_CACHE",
        "--image-tag-mutability",
        "IMMUTABLE",
        "--resource-tags",
        "Key=team,Value=shop",
        "--lifecycle-policy",
        json.dumps(LIFECYCLE),
        "--repository-policy",
        json.dumps(POLICY),
        "--encryption-configuration",
        "encryptionType=KMS",
        "--description",
        "shop images",
    )
    assert created["registryId"] == ACCOUNT
    template = created["repositoryCreationTemplate"]
    assert template["prefix"] == prefix
    assert template["appliedFor"] == ["CREATE_ON_PUSH", "PULL_THROUGH_CACHE"]
    assert template["encryptionConfiguration"] == {"encryptionType": "KMS"}
    # a shorter covering template (ROOT) loses to the longer prefix; one not for pushes is ignored
    other = f"{prefix}/web"
    dockyard.aws(
        "ecr", "create-repository-creation-template", "--prefix", other, "--applied-for", "REPLICATION"
    )
    name = f"{prefix}/web/api"
    ecr_login(dockyard, docker)
    ref = f"{dockyard.registry}/{name}:v1"
    try:
        assert docker.run("tag", images[0], ref).returncode == 0
        pushed = docker.run("push", ref)
        assert pushed.returncode == 0, pushed.stderr
        assert docker.run("tag", images[1], ref).returncode == 0
        refused = docker.run("push", ref)  # the template made it IMMUTABLE before the first manifest
        assert refused.returncode != 0
        assert "cannot be overwritten because the repository is immutable" in refused.stderr + refused.stdout
    finally:
        docker_rmi(ref)
    repo = dockyard.aws("ecr", "describe-repositories", "--repository-names", name)["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["encryptionConfiguration"] == {"encryptionType": "KMS"}
    tags = dockyard.aws("ecr", "list-tags-for-resource", "--resource-arn", repo["repositoryArn"])["tags"]
    assert tags == [{"Key": "team", "Value": "shop"}]
    lifecycle = dockyard.aws("ecr", "get-lifecycle-policy", "--repository-name", name)
    assert json.loads(lifecycle["lifecyclePolicyText"]) == LIFECYCLE
    policy = dockyard.aws("ecr", "get-repository-policy", "--repository-name", name)
    assert json.loads(policy["policyText"])["Statement"][0]["Sid"] == "all"
    # a repository outside every template keeps the defaults
    plain = f"tpl-plain-{uuid.uuid4().hex[:6]}"
    ref = f"{dockyard.registry}/{plain}:v1"
    try:
        assert docker.run("tag", images[0], ref).returncode == 0
        assert docker.run("push", ref).returncode == 0
    finally:
        docker_rmi(ref)
    repo = dockyard.aws("ecr", "describe-repositories", "--repository-names", plain)["repositories"][0]
    assert repo["imageTagMutability"] == "MUTABLE"
    for p in (prefix, other):
        dockyard.aws("ecr", "delete-repository-creation-template", "--prefix", p)


def test_templates_are_described_updated_and_deleted_with_ecrs_errors(dockyard):
    prefix = f"tpl-{uuid.uuid4().hex[:6]}"
    dockyard.aws(
        "ecr", "create-repository-creation-template", "--prefix", prefix, "--applied-for", "CREATE_ON_PUSH"
    )
    assert "TemplateAlreadyExistsException" in _error(
        dockyard, "create-repository-creation-template", "--prefix", prefix, "--applied-for", "REPLICATION"
    )
    found = dockyard.aws("ecr", "describe-repository-creation-templates", "--prefixes", prefix)
    [template] = found["repositoryCreationTemplates"]
    assert template["imageTagMutability"] == "MUTABLE"
    assert template["encryptionConfiguration"] == {"encryptionType": "AES256"}
    updated = dockyard.aws(
        "ecr",
        "update-repository-creation-template",
        "--prefix",
        prefix,
        "--image-tag-mutability",
        "IMMUTABLE_WITH_EXCLUSION",
        "--image-tag-mutability-exclusion-filters",
        "filterType=WILDCARD,filter=latest",
    )["repositoryCreationTemplate"]
    assert updated["appliedFor"] == ["CREATE_ON_PUSH"]
    assert updated["imageTagMutabilityExclusionFilters"] == [{"filterType": "WILDCARD", "filter": "latest"}]
    assert updated["updatedAt"] >= updated["createdAt"]
    everything = dockyard.aws("ecr", "describe-repository-creation-templates")["repositoryCreationTemplates"]
    assert prefix in [t["prefix"] for t in everything]
    # bad input: a malformed policy, lifecycle policy or prefix, and no appliedFor
    assert "InvalidParameterException" in _error(
        dockyard, "update-repository-creation-template", "--prefix", prefix, "--repository-policy", "{nope"
    )
    bad_lifecycle = _error(
        dockyard,
        "update-repository-creation-template",
        "--prefix",
        prefix,
        "--lifecycle-policy",
        '{"rules": []}',
    )
    assert "InvalidParameterException" in bad_lifecycle and "rules" in bad_lifecycle
    assert "InvalidParameterException" in _error(
        dockyard,
        "create-repository-creation-template",
        "--prefix",
        "Bad Prefix",
        "--applied-for",
        "REPLICATION",
    )
    with pytest.raises(ClientError) as refused:
        dockyard.client("ecr").create_repository_creation_template(prefix=f"{prefix}-x", appliedFor=[])
    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    deleted = dockyard.aws("ecr", "delete-repository-creation-template", "--prefix", prefix)
    assert deleted["repositoryCreationTemplate"]["prefix"] == prefix
    assert "TemplateNotFoundException" in _error(
        dockyard, "delete-repository-creation-template", "--prefix", prefix
    )
    assert "TemplateNotFoundException" in _error(
        dockyard, "update-repository-creation-template", "--prefix", prefix, "--description", "x"
    )
    root = dockyard.aws(
        "ecr", "create-repository-creation-template", "--prefix", "ROOT", "--applied-for", "REPLICATION"
    )
    assert root["repositoryCreationTemplate"]["prefix"] == "ROOT"
    dockyard.aws("ecr", "delete-repository-creation-template", "--prefix", "ROOT")
