"""ECR's own wire errors (the shared ones, ``InvalidParameterException`` and
``ServerException``, live in :mod:`dockyard.aws.errors`). Status 400 as ECR's model says."""

from __future__ import annotations

from dockyard.aws.errors import CODES, AwsError, InvalidParameterException, register

__all__ = [
    "EmptyUploadException",
    "ImageAlreadyExistsException",
    "ImageDigestDoesNotMatchException",
    "ImageNotFoundException",
    "ImageTagAlreadyExistsException",
    "InvalidLayerException",
    "InvalidLayerPartException",
    "InvalidTagParameterException",
    "LayerAlreadyExistsException",
    "LayerInaccessibleException",
    "LayerPartTooSmallException",
    "LayersNotFoundException",
    "LifecyclePolicyNotFoundException",
    "LifecyclePolicyPreviewNotFoundException",
    "PullThroughCacheRuleAlreadyExistsException",
    "PullThroughCacheRuleNotFoundException",
    "ReferencedImagesNotFoundException",
    "RepositoryAlreadyExistsException",
    "RepositoryNotEmptyException",
    "RepositoryNotFoundException",
    "RepositoryPolicyNotFoundException",
    "ScanNotFoundException",
    "SecretNotFoundException",
    "TemplateAlreadyExistsException",
    "TemplateNotFoundException",
    "UnableToAccessSecretException",
    "UnableToDecryptSecretValueException",
    "UnsupportedUpstreamRegistryException",
    "UploadNotFoundException",
    "too_many_tags",
]

RepositoryNotFoundException = register("RepositoryNotFoundException")
RepositoryAlreadyExistsException = register("RepositoryAlreadyExistsException")
RepositoryNotEmptyException = register("RepositoryNotEmptyException")
RepositoryPolicyNotFoundException = register("RepositoryPolicyNotFoundException")
ImageNotFoundException = register("ImageNotFoundException")
ImageAlreadyExistsException = register("ImageAlreadyExistsException")
ImageTagAlreadyExistsException = register("ImageTagAlreadyExistsException")
ImageDigestDoesNotMatchException = register("ImageDigestDoesNotMatchException")
ReferencedImagesNotFoundException = register("ReferencedImagesNotFoundException")
LayersNotFoundException = register("LayersNotFoundException")
LayerAlreadyExistsException = register("LayerAlreadyExistsException")
LayerInaccessibleException = register("LayerInaccessibleException")
LayerPartTooSmallException = register("LayerPartTooSmallException")
InvalidLayerException = register("InvalidLayerException")
InvalidLayerPartException = register("InvalidLayerPartException")
EmptyUploadException = register("EmptyUploadException")
UploadNotFoundException = register("UploadNotFoundException")
InvalidTagParameterException = register("InvalidTagParameterException")
ScanNotFoundException = register("ScanNotFoundException")
LifecyclePolicyNotFoundException = register("LifecyclePolicyNotFoundException")
LifecyclePolicyPreviewNotFoundException = register("LifecyclePolicyPreviewNotFoundException")
TemplateAlreadyExistsException = register("TemplateAlreadyExistsException")
TemplateNotFoundException = register("TemplateNotFoundException")


def too_many_tags(message: str) -> AwsError:
    """ECR's ``TooManyTagsException``, a name Cloud Map registers too (``discovery.errors``):
    the one registered class, found when raised (a part cannot import another)."""
    cls = CODES.get("TooManyTagsException", InvalidParameterException)
    return cls(message)
PullThroughCacheRuleAlreadyExistsException = register("PullThroughCacheRuleAlreadyExistsException")
PullThroughCacheRuleNotFoundException = register("PullThroughCacheRuleNotFoundException")
UnsupportedUpstreamRegistryException = register("UnsupportedUpstreamRegistryException")
SecretNotFoundException = register("SecretNotFoundException")
UnableToAccessSecretException = register("UnableToAccessSecretException")
UnableToDecryptSecretValueException = register("UnableToDecryptSecretValueException")
