"""ECS's exception types, as the AWS CLI and SDKs know them."""

from dockyard.aws.errors import error_type

ClientException = error_type("ClientException")
InvalidParameterException = error_type("InvalidParameterException")
ClusterNotFoundException = error_type("ClusterNotFoundException")
ClusterContainsServicesException = error_type("ClusterContainsServicesException")
ClusterContainsTasksException = error_type("ClusterContainsTasksException")
ClusterContainsContainerInstancesException = error_type("ClusterContainsContainerInstancesException")
ServiceNotFoundException = error_type("ServiceNotFoundException")
ServiceNotActiveException = error_type("ServiceNotActiveException")
ResourceNotFoundException = error_type("ResourceNotFoundException")
ServerException = error_type("ServerException", 500)
