"""ELBv2's and ACM's wire errors (the codes botocore's models give them)."""

from __future__ import annotations

from dockyard.aws.errors import CODES, register

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
# Cloud Map registers this one first (the same wire name, status 400).
ResourceInUse = CODES.get("ResourceInUse") or register("ResourceInUse")
InvalidTarget = register("InvalidTarget")
OperationNotPermitted = register("OperationNotPermitted")
InvalidArnException = register("InvalidArnException")  # ACM
TooManyRules = register("TooManyRules")
