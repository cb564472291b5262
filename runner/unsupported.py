"""The ECS operations Dockyard does not serve, each refused with a clear error instead of
``UnknownOperationException`` (the list and the reasons: docs/runner-services.md, "What
Dockyard does not serve").

* Daemons (CreateDaemon and its kin) and Express Mode services and gateways: newer ECS
  products for Fargate and managed load balancers, which Dockyard does not have; a service
  with ``schedulingStrategy`` ``DAEMON`` is the way to run one task per host.
* Task sets (the ``EXTERNAL`` deployment controller): Dockyard's services use the ``ECS``
  controller; traffic-shifting deployments go through ``deploymentConfiguration.strategy``.
* The ECS container agent's own calls (DiscoverPollEndpoint, Submit*StateChange,
  UpdateContainerAgent): hosts run ``dockyard agent``, which speaks to Dockyard over its own
  connection, not the ECS agent's protocol.

Each answers ``UnsupportedFeatureException`` (or ``ClientException`` for the agent's calls,
which ECS's model gives no other error to), naming the operation and what to use instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from dockyard.config import Config
from dockyard.store import Store
from runner.errors import ClientException, UnsupportedFeatureException

__all__ = ["OPERATIONS", "REASONS"]

_DAEMON = "ECS daemons are not available in Dockyard; run a service with schedulingStrategy DAEMON instead."
_EXPRESS = "ECS Express Mode services and gateways are not available in Dockyard; create a service and an " \
           "Application Load Balancer (aws elbv2) instead."
_TASK_SET = "Task sets need the EXTERNAL deployment controller, which Dockyard does not offer; use " \
            "deploymentConfiguration.strategy (ROLLING, BLUE_GREEN, LINEAR or CANARY)."
_AGENT = "This is the ECS container agent's call; Dockyard's hosts run `dockyard agent`, which does not " \
         "use it."

REASONS: dict[str, tuple[type[Exception], str]] = {
    **{op: (UnsupportedFeatureException, _DAEMON) for op in (
        "CreateDaemon", "DeleteDaemon", "DeleteDaemonTaskDefinition", "DescribeDaemon",
        "DescribeDaemonDeployments", "DescribeDaemonRevisions", "DescribeDaemonTaskDefinition",
        "ListDaemonDeployments", "ListDaemonTaskDefinitions", "ListDaemons",
        "RegisterDaemonTaskDefinition", "UpdateDaemon")},
    **{op: (UnsupportedFeatureException, _EXPRESS) for op in (
        "AssociateGatewayWithCluster", "CreateExpressGatewayService", "CreateGateway",
        "DeleteExpressGatewayService", "DeleteGateway", "DescribeExpressGatewayService",
        "DescribeGateway", "DescribeGatewayResources", "DescribeGatewayRoute",
        "DisassociateGatewayFromCluster", "ListGatewayClusterAssociations", "ListGatewayRoutes",
        "ListGateways", "UpdateExpressGatewayService", "UpdateGateway")},
    **{op: (UnsupportedFeatureException, _TASK_SET) for op in (
        "CreateTaskSet", "DeleteTaskSet", "DescribeTaskSets", "UpdateServicePrimaryTaskSet",
        "UpdateTaskSet")},
    **{op: (ClientException, _AGENT) for op in (
        "DiscoverPollEndpoint", "SubmitAttachmentStateChanges", "SubmitContainerStateChange",
        "SubmitTaskStateChange", "UpdateContainerAgent")},
}


def _refuse(name: str, error: type[Exception], reason: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def refuse(store: Store, config: Config, params: dict[str, Any]) -> dict[str, Any]:
        raise error(f"{name}: {reason}")

    return refuse


OPERATIONS = {name: _refuse(name, error, reason) for name, (error, reason) in REASONS.items()}
