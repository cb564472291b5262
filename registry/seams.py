"""What the registry needs from other parts, as small typed interfaces (consumer side).

The assembly (:func:`dockyard.platform.assemble`) fills them in; the registry imports no other
part. All are optional: without ``SecretLookup`` a pull-through cache rule cannot name a
``credentialArn`` (``UnableToAccessSecretException``) and upstreams are reached anonymously.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

__all__ = ["EventSink", "SecretLookup"]


class SecretLookup(Protocol):
    """The value of the secret a Secrets Manager ARN (or ``dockyard:secret:NAME``) names in
    Dockyard's secret store; None when there is no such secret (or it cannot be opened)."""

    def __call__(self, reference: str) -> str | None: ...


class EventSink(Protocol):
    """Where ECR's events go (the runner's EventBridge bus): called with the event's
    ``detail-type`` (``ECR Image Action``), its ``resources`` (the repository's ARN) and its
    ``detail`` as EventBridge's envelope holds them, from the event loop; it must not block."""

    def __call__(self, detail_type: str, resources: list[str], detail: Mapping[str, Any]) -> None: ...
