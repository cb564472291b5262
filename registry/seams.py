"""What the registry needs from other parts, as small typed interfaces (consumer side).

The assembly (:func:`dockyard.platform.assemble`) fills them in; the registry imports no other
part. All are optional: without ``SecretLookup`` a pull-through cache rule cannot name a
``credentialArn`` (``UnableToAccessSecretException``) and upstreams are reached anonymously.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SecretLookup"]


class SecretLookup(Protocol):
    """The value of the secret a Secrets Manager ARN (or ``dockyard:secret:NAME``) names in
    Dockyard's secret store; None when there is no such secret (or it cannot be opened)."""

    def __call__(self, reference: str) -> str | None: ...
