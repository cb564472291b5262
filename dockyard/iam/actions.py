"""Which IAM action and resources an operation is checked against (pure).

The action is ``<prefix>:<Operation>``: ``ecs:RunTask``, ``servicediscovery:GetService``,
``ecr:RunRegistryGarbageCollection``, ``dockyard:GetEvents`` (the event stream,
``GET /events``). The resources are the ARNs the request names, in this first cut:

* ECS: an operation inside a cluster (every one with a ``cluster`` parameter, the
  ``default`` cluster when it is absent) is checked on the cluster's ARN *and* on what it
  names in it: services (``service``, ``services``, ``serviceName``), tasks (``task``,
  ``tasks``), container instances, the task definition (``taskDefinition``:
  ``task-definition/FAMILY:REVISION``, or ``task-definition/FAMILY`` when no revision is
  given). ``CreateCluster``, ``DeleteCluster`` and ``DescribeClusters`` are checked on the
  clusters' ARNs, the task-definition operations on the task definition's, the tag
  operations on ``resourceArn``; the rest (``ListClusters``, ``ListTaskDefinitions``, ...) on
  ``*``. The condition key ``ecs:cluster`` holds the cluster's ARN.
* Cloud Map: ``Id``/``NamespaceId`` of namespace operations on the namespace's ARN,
  ``Id``/``ServiceId`` of service and instance operations on the service's, tags on
  ``ResourceARN``; ``DiscoverInstances``, the listings and creations of namespaces on ``*``
  (``servicediscovery:NamespaceName`` and ``servicediscovery:ServiceName`` are set).
* ECR: ``repositoryName`` (and each of ``repositoryNames``) on the repository's ARN, the tag
  operations on ``resourceArn``, else ``*``.
* EventBridge (``events:PutRule``, ...): ``Name`` or ``Rule`` on the rule's ARN (on the default
  bus), the tag operations on ``ResourceARN``, else ``*``. Anything else: ``*``.

Every request is allowed only if each of its resources is (so a ``Deny`` on a cluster's ARN
covers everything in the cluster, and an ``Allow`` limited to services must list the cluster
too). ARNs in a request are rewritten to this server's region and account, so a foreign ARN
naming the same resource is checked as that resource.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["PREFIXES", "Target", "target"]

PREFIXES = {
    "AmazonEC2ContainerServiceV20141113": "ecs",
    "Route53AutoNaming_v20170314": "servicediscovery",
    "AmazonEC2ContainerRegistry_V20150921": "ecr",
    "appmesh": "appmesh",
    "Logs_20140328": "logs",
    "elbv2": "elasticloadbalancing",
    "AnyScaleFrontendService": "application-autoscaling",
    "AWSEvents": "events",
    "dockyard": "dockyard",
    "DockyardMesh": "dockyard",  # mesh.status: dockyard:GetMeshStatus, dockyard:ListMeshNacks
}

_ECS_UNSCOPED = {
    "CreateCluster", "DescribeClusters", "DeleteCluster", "ListClusters", "RegisterTaskDefinition",
    "DescribeTaskDefinition", "DeregisterTaskDefinition", "DeleteTaskDefinitions", "ListTaskDefinitions",
    "ListTaskDefinitionFamilies", "ListServicesByNamespace", "TagResource", "UntagResource",
    "ListTagsForResource",
}
_CM_NAMESPACE_OPS = {"GetNamespace", "DeleteNamespace", "UpdateHttpNamespace", "UpdatePrivateDnsNamespace",
                     "UpdatePublicDnsNamespace"}
_CM_SERVICE_OPS = {"GetService", "DeleteService", "UpdateService"}
_CM_INSTANCE_OPS = {"RegisterInstance", "DeregisterInstance", "GetInstance", "ListInstances",
                    "GetInstancesHealthStatus", "UpdateInstanceCustomHealthStatus"}


@dataclass(frozen=True)
class Target:
    """An operation as IAM sees it."""

    action: str
    resources: tuple[str, ...] = ("*",)
    context: dict[str, Any] = field(default_factory=dict)


def _last(value: str) -> str:
    return value.rsplit("/", 1)[-1] if value.startswith("arn:") else value


def _strs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def _local(arn: str, region: str, account: str) -> str:
    parts = arn.split(":", 5)
    if len(parts) != 6:
        return arn
    parts[3], parts[4] = region, account
    return ":".join(parts)


def _ecs(
    op: str, params: Mapping[str, Any], region: str, account: str
) -> tuple[list[str], dict[str, Any]]:
    def arn(rest: str) -> str:
        return f"arn:aws:ecs:{region}:{account}:{rest}"

    def taskdef(ident: str) -> str:
        name = ident.split("task-definition/", 1)[-1] if ident.startswith("arn:") else ident
        return arn(f"task-definition/{name}")

    out: list[str] = []
    ctx: dict[str, Any] = {}
    if op in ("CreateCluster", "DeleteCluster", "DescribeClusters"):
        names = _strs(params.get("clusterName") if op == "CreateCluster" else
                      params.get("cluster") if op == "DeleteCluster" else params.get("clusters"))
        out += [arn(f"cluster/{_last(n)}") for n in (names or ["default"])]
    elif op not in _ECS_UNSCOPED:
        cluster = _last(params["cluster"]) if isinstance(params.get("cluster"), str) and params["cluster"] \
            else "default"
        ctx["ecs:cluster"] = arn(f"cluster/{cluster}")
        out.append(ctx["ecs:cluster"])
        for key in ("service", "services", "serviceName"):
            out += [arn(f"service/{cluster}/{_last(s)}") for s in _strs(params.get(key))]
        for key in ("task", "tasks"):
            out += [arn(f"task/{cluster}/{_last(t)}") for t in _strs(params.get(key))]
        for key in ("containerInstance", "containerInstances"):
            out += [arn(f"container-instance/{cluster}/{_last(c)}") for c in _strs(params.get(key))]
    if op in ("RegisterTaskDefinition",):
        out += [arn(f"task-definition/{f}") for f in _strs(params.get("family"))]
    for key in ("taskDefinition", "taskDefinitions"):
        out += [taskdef(t) for t in _strs(params.get(key))]
    if op in ("TagResource", "UntagResource", "ListTagsForResource"):
        out += [_local(a, region, account) for a in _strs(params.get("resourceArn"))]
    return out, ctx


def _cloudmap(
    op: str, params: Mapping[str, Any], region: str, account: str
) -> tuple[list[str], dict[str, Any]]:
    def arn(kind: str, ident: str) -> str:
        return f"arn:aws:servicediscovery:{region}:{account}:{kind}/{_last(ident)}"

    out: list[str] = []
    ctx: dict[str, Any] = {}
    if op in _CM_NAMESPACE_OPS:
        out += [arn("namespace", i) for i in _strs(params.get("Id"))]
    elif op == "CreateService":
        out += [arn("namespace", i) for i in _strs(params.get("NamespaceId"))]
    elif op in _CM_SERVICE_OPS:
        out += [arn("service", i) for i in _strs(params.get("Id"))]
    elif op in _CM_INSTANCE_OPS:
        out += [arn("service", i) for i in _strs(params.get("ServiceId"))]
    elif op in ("TagResource", "UntagResource", "ListTagsForResource"):
        out += [_local(a, region, account) for a in _strs(params.get("ResourceARN"))]
    elif op in ("DiscoverInstances", "DiscoverInstancesRevision"):
        for key in ("NamespaceName", "ServiceName"):
            if isinstance(params.get(key), str):
                ctx[f"servicediscovery:{key.lower()}"] = params[key]
    return out, ctx


def target(service: str, operation: str, params: Mapping[str, Any], region: str, account: str) -> Target:
    """The IAM view of ``service.operation`` called with ``params`` on this server (see the
    module docstring)."""
    prefix = PREFIXES.get(service, service.lower())
    out: list[str] = []
    ctx: dict[str, Any] = {}
    if prefix == "ecs":
        out, ctx = _ecs(operation, params, region, account)
    elif prefix == "servicediscovery":
        out, ctx = _cloudmap(operation, params, region, account)
    elif prefix == "ecr":
        names = _strs(params.get("repositoryName")) + _strs(params.get("repositoryNames"))
        out = [f"arn:aws:ecr:{region}:{account}:repository/{r}" for r in names]
        out += [_local(a, region, account) for a in _strs(params.get("resourceArn"))]
    elif prefix == "events":  # EventBridge: the rule a request names (Name or Rule), tags on ResourceARN
        names = _strs(params.get("Rule"))
        names += _strs(params.get("Name")) if operation != "DescribeEventBus" else []
        out = [f"arn:aws:events:{region}:{account}:rule/{n}" for n in names]
        out += [_local(a, region, account) for a in _strs(params.get("ResourceARN"))]
    elif prefix == "dockyard" and operation == "GetEvents" and _strs(params.get("cluster")):
        cluster = f"arn:aws:ecs:{region}:{account}:cluster/{_last(_strs(params.get('cluster'))[0])}"
        out, ctx = [cluster], {"ecs:cluster": cluster}
    unique = tuple(dict.fromkeys(out)) or ("*",)
    return Target(f"{prefix}:{operation}", unique, ctx)
