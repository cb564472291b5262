"""TagResource, UntagResource, ListTagsForResource through the real aws CLI."""

from __future__ import annotations

import json


def test_clusters_and_task_definitions_are_tagged_and_untagged(dockyard):
    arn = dockyard.aws("ecs", "create-cluster", "--cluster-name", "tagged")["cluster"]["clusterArn"]
    two = ["key=team,value=core", "key=env,value=dev"]
    dockyard.aws("ecs", "tag-resource", "--resource-arn", arn, "--tags", *two)
    dockyard.aws("ecs", "untag-resource", "--resource-arn", arn, "--tag-keys", "env")
    assert dockyard.aws("ecs", "list-tags-for-resource", "--resource-arn", arn)["tags"] == [
        {"key": "team", "value": "core"}
    ]
    described = dockyard.aws("ecs", "describe-clusters", "--clusters", "tagged", "--include", "TAGS")
    assert described["clusters"][0]["tags"] == [{"key": "team", "value": "core"}]

    containers = json.dumps([{"name": "c", "image": "busybox", "memory": 32}])
    td = dockyard.aws("ecs", "register-task-definition", "--family", "tagged-td",
                      "--container-definitions", containers)["taskDefinition"]["taskDefinitionArn"]
    dockyard.aws("ecs", "tag-resource", "--resource-arn", td, "--tags", "key=owner,value=me")
    assert dockyard.aws("ecs", "list-tags-for-resource", "--resource-arn", td)["tags"] == [
        {"key": "owner", "value": "me"}
    ]


def test_bad_tagging_requests_are_clear_errors(dockyard):
    p = "arn:aws:ecs:us-east-1:000000000000"
    cases = [
        (["--resource-arn", "not-an-arn"], "InvalidParameterException"),
        (["--resource-arn", f"{p}:cluster/none-such"], "ClusterNotFoundException"),
        (["--resource-arn", f"{p}:service/none/such"], "ResourceNotFoundException"),
    ]
    for args, error in cases:
        proc = dockyard.aws("ecs", "list-tags-for-resource", *args, check=False)
        assert proc.returncode != 0 and error in proc.stderr, (args, proc.stderr)
