"""ELBv2's and ACM's wire errors (the codes botocore's models give them)."""

from __future__ import annotations

from dockyard.aws.errors import ResourceInUse, register  # ResourceInUse: shared with Cloud Map

__all__ = [
    "CertificateNotFound",
    "DuplicateListener",
    "DuplicateLoadBalancerName",
    "DuplicateTargetGroupName",
    "InvalidArnException",
    "InvalidConfigurationRequest",
    "InvalidTarget",
    "ListenerNotFound",
    "LoadBalancerNotFound",
    "OperationNotPermitted",
    "PriorityInUse",
    "ResourceInUse",
    "RuleNotFound",
    "TargetGroupNotFound",
    "TooManyRules",
    "TooManyTags",
    "ValidationError",
]

LoadBalancerNotFound = register("LoadBalancerNotFound")
TargetGroupNotFound = register("TargetGroupNotFound")
ListenerNotFound = register("ListenerNotFound")
RuleNotFound = register("RuleNotFound")
DuplicateLoadBalancerName = register("DuplicateLoadBalancerName")
DuplicateTargetGroupName = register("DuplicateTargetGroupName")
DuplicateListener = register("DuplicateListener")
PriorityInUse = register("PriorityInUse")
InvalidConfigurationRequest = register("InvalidConfigurationRequest")
ValidationError = register("ValidationError")
TooManyTags = register("TooManyTags")
CertificateNotFound = register("CertificateNotFound")

InvalidTarget = register("InvalidTarget")
OperationNotPermitted = register("OperationNotPermitted")
InvalidArnException = register("InvalidArnException")  # ACM
TooManyRules = register("TooManyRules")
