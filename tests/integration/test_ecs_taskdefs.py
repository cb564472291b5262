"""ECS task definitions through the real aws CLI and boto3."""

from __future__ import annotations

import json

import pytest

FAMILY_ARN = "arn:aws:ecs:us-east-1:000000000000:task-definition/"


def register_issue_definition(dockyard) -> dict:
    """The issue's register-task-definition command, verbatim plus --endpoint-url."""
    return dockyard.aws(
        "ecs", "register-task-definition", "--family", "my-app-task", "--network-mode", "awsvpc",
        "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "512",
        "--container-definitions",
        '[{"name":"my-app-container","image":"my-app-image:latest",'
        '"portMappings":[{"containerPort":80,"hostPort":80}]}]',
    )


def test_the_issues_register_command_creates_revisions_with_full_arns(dockyard):
    first = register_issue_definition(dockyard)["taskDefinition"]
    second = register_issue_definition(dockyard)["taskDefinition"]
    assert second["revision"] == first["revision"] + 1
    assert second["taskDefinitionArn"] == f"{FAMILY_ARN}my-app-task:{second['revision']}"
    assert second["status"] == "ACTIVE"
    assert second["compatibilities"] == ["EC2", "FARGATE"]
    assert second["requiresCompatibilities"] == ["FARGATE"]
    assert (second["cpu"], second["memory"], second["networkMode"]) == ("256", "512", "awsvpc")
    assert second["registeredBy"].startswith("arn:aws:iam::")
    assert {"name": "ecs.capability.task-eni"} in second["requiresAttributes"]
    container = second["containerDefinitions"][0]
    assert container["essential"] is True
    assert container["portMappings"] == [{"containerPort": 80, "hostPort": 80, "protocol": "tcp"}]


def test_describe_finds_the_latest_active_revision_by_family_and_any_revision_by_arn(dockyard):
    reg = register_issue_definition(dockyard)["taskDefinition"]
    latest = dockyard.aws("ecs", "describe-task-definition", "--task-definition", "my-app-task")
    assert latest["taskDefinition"]["revision"] == reg["revision"]
    by_arn = dockyard.aws("ecs", "describe-task-definition", "--task-definition", reg["taskDefinitionArn"])
    assert by_arn["taskDefinition"] == latest["taskDefinition"]


def test_deregister_makes_a_revision_inactive_and_list_filters_by_status(dockyard):
    ecs = dockyard.client("ecs")
    body = {"family": "dereg", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 32}]}
    one = ecs.register_task_definition(**body)["taskDefinition"]
    two = ecs.register_task_definition(**body)["taskDefinition"]
    gone = dockyard.aws("ecs", "deregister-task-definition", "--task-definition", "dereg:1")["taskDefinition"]
    assert gone["status"] == "INACTIVE" and "deregisteredAt" in gone
    active = ecs.list_task_definitions(familyPrefix="dereg")["taskDefinitionArns"]
    inactive = ecs.list_task_definitions(familyPrefix="dereg", status="INACTIVE")["taskDefinitionArns"]
    assert active == [two["taskDefinitionArn"]] and inactive == [one["taskDefinitionArn"]]
    newest_first = ecs.list_task_definitions(familyPrefix="dereg", sort="DESC", status="ACTIVE")
    assert newest_first["taskDefinitionArns"][0] == two["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=two["taskDefinitionArn"])
    assert "dereg" in ecs.list_task_definition_families(status="INACTIVE")["families"]
    assert "dereg" not in ecs.list_task_definition_families()["families"]
    with pytest.raises(ecs.exceptions.ClientException):
        ecs.describe_task_definition(taskDefinition="dereg")
    again = ecs.register_task_definition(**body)["taskDefinition"]
    assert again["revision"] == 3


def test_families_are_listed_by_prefix_and_paginated(dockyard):
    ecs = dockyard.client("ecs")
    for name in ("pager-a", "pager-b", "pager-c"):
        ecs.register_task_definition(
            family=name, containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}]
        )
    pages = ecs.get_paginator("list_task_definition_families").paginate(
        familyPrefix="pager-", PaginationConfig={"PageSize": 2}
    )
    assert [f for p in pages for f in p["families"]] == ["pager-a", "pager-b", "pager-c"]


def test_tags_are_stored_and_described_on_request(dockyard):
    ecs = dockyard.client("ecs")
    reg = ecs.register_task_definition(
        family="tagged", containerDefinitions=[{"name": "c", "image": "busybox", "memory": 32}],
        tags=[{"key": "team", "value": "blue"}],
    )
    assert reg["tags"] == [{"key": "team", "value": "blue"}]
    out = ecs.describe_task_definition(taskDefinition="tagged", include=["TAGS"])
    assert out["tags"] == [{"key": "team", "value": "blue"}]
    assert "tags" not in ecs.describe_task_definition(taskDefinition="tagged")


@pytest.mark.parametrize(
    ("definitions", "message"),
    [
        ('[{"name":"web","image":"busybox","memory":4}]',
         "Invalid setting for container 'web': memory must be an integer >= 6"),
        ('[{"name":"web","image":"busybox","memory":64,"dependsOn":[{"containerName":"db","condition":"HEALTHY"}]},'
         '{"name":"db","image":"busybox","memory":64}]',
         "dependsOn 'db' HEALTHY requires that container to have a healthCheck"),
        ('[{"name":"web","image":"busybox","memory":64,"secrets":[{"name":"A","valueFrom":"plain"}]}]',
         "secrets.valueFrom 'plain' is not a secret reference"),
    ],
    ids=["memory", "healthy-dependency", "secret-reference"],
)
def test_an_invalid_definition_is_a_client_exception_naming_the_field(dockyard, definitions, message):
    proc = dockyard.aws("ecs", "register-task-definition", "--family", "bad",
                        "--container-definitions", definitions, check=False)
    assert proc.returncode != 0
    assert "ClientException" in proc.stderr and message in proc.stderr


def test_fargate_sizes_are_checked(dockyard):
    proc = dockyard.aws(
        "ecs", "register-task-definition", "--family", "bad", "--network-mode", "awsvpc",
        "--requires-compatibilities", "FARGATE", "--cpu", "256", "--memory", "8GB",
        "--container-definitions", '[{"name":"c","image":"busybox"}]', check=False,
    )
    assert "ClientException" in proc.stderr and "memory 8192 is not valid with cpu 256" in proc.stderr


def test_describing_an_unknown_definition_is_a_client_exception(dockyard):
    proc = dockyard.aws("ecs", "describe-task-definition", "--task-definition", "nope:7", check=False)
    assert "ClientException" in proc.stderr and "Unable to describe task definition" in proc.stderr


def test_a_described_definition_can_be_registered_again_unchanged(dockyard):
    ecs = dockyard.client("ecs")
    body = {
        "family": "roundtrip", "networkMode": "bridge",
        "containerDefinitions": [{
            "name": "web", "image": "busybox", "memory": 64, "portMappings": [{"containerPort": 80}],
            "healthCheck": {"command": ["CMD", "true"]}, "environment": [{"name": "A", "value": "1"}],
        }],
    }
    first = ecs.register_task_definition(**body)["taskDefinition"]
    keep = ("family", "networkMode", "containerDefinitions", "volumes", "placementConstraints")
    again = ecs.register_task_definition(**{k: first[k] for k in keep})["taskDefinition"]
    assert json.dumps(again["containerDefinitions"]) == json.dumps(first["containerDefinitions"])
    assert again["containerDefinitions"][0]["healthCheck"]["interval"] == 30


def test_only_inactive_revisions_can_be_deleted(dockyard):
    ecs = dockyard.client("ecs")
    body = {"family": "deleteme", "containerDefinitions": [{"name": "c", "image": "busybox", "memory": 32}]}
    one = ecs.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]
    two = ecs.register_task_definition(**body)["taskDefinition"]["taskDefinitionArn"]
    ecs.deregister_task_definition(taskDefinition=one)
    out = ecs.delete_task_definitions(taskDefinitions=[one, two, "deleteme:9"])
    assert [t["status"] for t in out["taskDefinitions"]] == ["DELETE_IN_PROGRESS"]
    reasons = [f["reason"] for f in out["failures"]]
    assert reasons == ["TASK_DEFINITION_NOT_INACTIVE", "TASK_DEFINITION_NOT_FOUND"]
    deleting = ecs.list_task_definitions(familyPrefix="deleteme", status="DELETE_IN_PROGRESS")
    assert deleting["taskDefinitionArns"] == [one]
