"""ECS's exception types, as the AWS CLI and SDKs know them (each registered once: the names
other services share come from :mod:`dockyard.aws.errors`)."""

from dockyard.aws.errors import (
    ClientException,
    InvalidParameterException,
    ResourceNotFoundException,
    ServerException,
    register,
)

__all__ = [
    "ClientException",
    "ClusterContainsContainerInstancesException",
    "ClusterContainsServicesException",
    "ClusterContainsTasksException",
    "ClusterNotFoundException",
    "InvalidParameterException",
    "NamespaceNotFoundException",
    "ResourceNotFoundException",
    "ServerException",
    "ServiceDeploymentNotFoundException",
    "ServiceNotActiveException",
    "ServiceNotFoundException",
    "UnsupportedFeatureException",
]

ClusterNotFoundException = register("ClusterNotFoundException")
ClusterContainsServicesException = register("ClusterContainsServicesException")
ClusterContainsTasksException = register("ClusterContainsTasksException")
ClusterContainsContainerInstancesException = register("ClusterContainsContainerInstancesException")
ServiceNotFoundException = register("ServiceNotFoundException")
ServiceNotActiveException = register("ServiceNotActiveException")
NamespaceNotFoundException = register("NamespaceNotFoundException")
UnsupportedFeatureException = register("UnsupportedFeatureException")
ServiceDeploymentNotFoundException = register("ServiceDeploymentNotFoundException")
