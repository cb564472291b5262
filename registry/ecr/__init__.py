"""ECR's API (``AmazonEC2ContainerRegistry_V20150921``) over the registry's own storage and
metadata: the repositories and images docker pushes are the ones ``aws ecr`` manages.

* :mod:`registry.ecr.api`: the operations, registered on the control port by ``install``;
* :mod:`registry.ecr.data`: the ECR settings of repositories (mutability, scanning,
  encryption, policy, tags) and of the registry, in the store;
* :mod:`registry.ecr.policy` (pure): repository policies, validated and evaluated;
* :mod:`registry.ecr.tokens`: the ``GetAuthorizationToken`` password and the signed
  download URLs of ``GetDownloadUrlForLayer``;
* :mod:`registry.ecr.errors`: ECR's own wire errors.
"""
