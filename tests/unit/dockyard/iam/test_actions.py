"""Operations mapped to IAM actions and resource ARNs."""

from __future__ import annotations

from typing import Any

import pytest

from dockyard.aws.protocol import CLOUDMAP, ECR, ECS
from dockyard.iam.actions import target

A = "arn:aws:ecs:us-east-1:000000000000:"
SD = "arn:aws:servicediscovery:us-east-1:000000000000:"


def t(service: str, op: str, **params: Any) -> tuple[str, tuple[str, ...], dict[str, Any]]:
    got = target(service, op, params, "us-east-1", "000000000000")
    return got.action, got.resources, got.context


@pytest.mark.parametrize(
    ("op", "params", "resources"),
    [
        ("ListClusters", {}, ("*",)),
        ("ListTaskDefinitions", {}, ("*",)),
        ("CreateCluster", {"clusterName": "prod"}, (A + "cluster/prod",)),
        ("CreateCluster", {}, (A + "cluster/default",)),
        ("DeleteCluster", {"cluster": A + "cluster/prod"}, (A + "cluster/prod",)),
        ("DescribeClusters", {"clusters": ["a", A + "cluster/b"]}, (A + "cluster/a", A + "cluster/b")),
        ("DescribeClusters", {}, (A + "cluster/default",)),
        ("ListServices", {"cluster": "prod"}, (A + "cluster/prod",)),
        ("ListTasks", {}, (A + "cluster/default",)),
        ("DescribeServices", {"cluster": "prod", "services": ["web", A + "service/prod/api"]},
         (A + "cluster/prod", A + "service/prod/web", A + "service/prod/api")),
        ("CreateService", {"cluster": "prod", "serviceName": "web", "taskDefinition": "web:3"},
         (A + "cluster/prod", A + "service/prod/web", A + "task-definition/web:3")),
        ("RunTask", {"cluster": "prod", "taskDefinition": A + "task-definition/web:2"},
         (A + "cluster/prod", A + "task-definition/web:2")),
        ("RunTask", {"taskDefinition": "web"}, (A + "cluster/default", A + "task-definition/web")),
        ("StopTask", {"cluster": "prod", "task": "abc"}, (A + "cluster/prod", A + "task/prod/abc")),
        ("DescribeContainerInstances", {"cluster": "c", "containerInstances": ["i1"]},
         (A + "cluster/c", A + "container-instance/c/i1")),
        ("RegisterTaskDefinition", {"family": "web"}, (A + "task-definition/web",)),
        ("DescribeTaskDefinition", {"taskDefinition": "web:1"}, (A + "task-definition/web:1",)),
        ("DeleteTaskDefinitions", {"taskDefinitions": ["a:1", "b:2"]},
         (A + "task-definition/a:1", A + "task-definition/b:2")),
        # a foreign ARN is checked as the local resource of that name
        ("TagResource", {"resourceArn": "arn:aws:ecs:eu-west-1:999:cluster/prod"}, (A + "cluster/prod",)),
        ("DescribeClusters", {"clusters": ["arn:aws:ecs:eu-west-1:999:cluster/prod"]}, (A + "cluster/prod",)),
        # a parameter of the wrong type names nothing (the handler refuses it)
        ("ListServices", {"cluster": 5}, (A + "cluster/default",)),
    ],
)
def test_ecs(op: str, params: dict[str, Any], resources: tuple[str, ...]) -> None:
    action, got, _ = t(ECS, op, **params)
    assert action == f"ecs:{op}"
    assert got == resources


def test_ecs_cluster_condition_key() -> None:
    assert t(ECS, "RunTask", cluster="prod", taskDefinition="x")[2] == {"ecs:cluster": A + "cluster/prod"}
    assert t(ECS, "ListClusters")[2] == {}


@pytest.mark.parametrize(
    ("op", "params", "resources"),
    [
        ("ListNamespaces", {}, ("*",)),
        ("CreateHttpNamespace", {"Name": "x"}, ("*",)),
        ("GetNamespace", {"Id": "ns-1"}, (SD + "namespace/ns-1",)),
        ("DeleteNamespace", {"Id": SD + "namespace/ns-1"}, (SD + "namespace/ns-1",)),
        ("CreateService", {"Name": "s", "NamespaceId": "ns-1"}, (SD + "namespace/ns-1",)),
        ("GetService", {"Id": "srv-1"}, (SD + "service/srv-1",)),
        ("RegisterInstance", {"ServiceId": "srv-1", "InstanceId": "i"}, (SD + "service/srv-1",)),
        ("ListInstances", {"ServiceId": "srv-1"}, (SD + "service/srv-1",)),
        ("TagResource", {"ResourceARN": SD + "service/srv-9"}, (SD + "service/srv-9",)),
        ("DiscoverInstances", {"NamespaceName": "n", "ServiceName": "s"}, ("*",)),
    ],
)
def test_cloud_map(op: str, params: dict[str, Any], resources: tuple[str, ...]) -> None:
    action, got, _ = t(CLOUDMAP, op, **params)
    assert action == f"servicediscovery:{op}"
    assert got == resources


def test_cloud_map_discovery_condition_keys() -> None:
    ctx = t(CLOUDMAP, "DiscoverInstances", NamespaceName="n", ServiceName="s")[2]
    assert ctx == {"servicediscovery:namespacename": "n", "servicediscovery:servicename": "s"}


def test_ecr_and_the_event_stream() -> None:
    assert t(ECR, "RunRegistryGarbageCollection") == ("ecr:RunRegistryGarbageCollection", ("*",), {})
    assert t("dockyard", "GetEvents", cluster="") == ("dockyard:GetEvents", ("*",), {})
    _action, resources, ctx = t("dockyard", "GetEvents", cluster="prod")
    assert resources == (A + "cluster/prod",) and ctx["ecs:cluster"] == A + "cluster/prod"


def test_ecr_operations_are_checked_on_the_repositories_they_name() -> None:
    repo = "arn:aws:ecr:us-east-1:000000000000:repository/"
    assert t(ECR, "PutImage", repositoryName="shop/web")[1] == (repo + "shop/web",)
    assert t(ECR, "DescribeRepositories", repositoryNames=["a", "b"])[1] == (repo + "a", repo + "b")
    foreign = "arn:aws:ecr:eu-west-1:111111111111:repository/shop/web"
    assert t(ECR, "ListTagsForResource", resourceArn=foreign)[1] == (repo + "shop/web",)


def test_eventbridge_operations_are_events_actions_on_their_rules() -> None:
    rule = "arn:aws:events:us-east-1:000000000000:rule/"
    assert t("AWSEvents", "PutRule", Name="nightly") == ("events:PutRule", (rule + "nightly",), {})
    assert t("AWSEvents", "PutTargets", Rule="nightly") == ("events:PutTargets", (rule + "nightly",), {})
    assert t("AWSEvents", "TagResource", ResourceARN="arn:aws:events:eu-west-1:111111111111:rule/r")[1] == (
        rule + "r",)
    assert t("AWSEvents", "PutEvents", Entries=[]) == ("events:PutEvents", ("*",), {})
    assert t("AWSEvents", "DescribeEventBus", Name="default")[1] == ("*",)
