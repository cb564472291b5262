"""CloudWatch's wire errors (the ``code`` of botocore's ``cloudwatch`` model: what the CLI shows)."""

from __future__ import annotations

from dockyard.aws.errors import register

__all__ = [
    "InvalidFormat",
    "InvalidNextToken",
    "InvalidParameterCombination",
    "InvalidParameterValue",
    "LimitExceeded",
    "MissingParameter",
    "ResourceNotFound",
]

InvalidParameterValue = register("InvalidParameterValue", 400)
InvalidParameterCombination = register("InvalidParameterCombination", 400)
MissingParameter = register("MissingParameter", 400)
LimitExceeded = register("LimitExceeded", 400)
InvalidNextToken = register("InvalidNextToken", 400)
ResourceNotFound = register("ResourceNotFound", 404)
InvalidFormat = register("InvalidFormat", 400)
