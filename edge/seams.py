"""What the edge needs from other parts (consumer side); dockyard.platform fills them in.

* :class:`Xds` (the mesh): publish a snapshot for the edge's own node on Dockyard's xDS
  server, and a bootstrap for the edge Envoy that reaches it;
* :class:`Certificates` (ACM, inside this part): a certificate's chain and key by ARN.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Certificates", "MetricSink", "Xds"]


class Xds(Protocol):
    def publish(self, node: str, resources: Mapping[str, Sequence[Any]]) -> None:
        """Set ``node``'s snapshot from protobuf ``clusters``, ``endpoints``, ``listeners``,
        ``routes``; the mesh's controller leaves that node alone from then on."""

    def bootstrap(self, node: str, admin_port: int) -> dict[str, Any]:
        """An Envoy bootstrap whose ADS is Dockyard's xDS server, node id ``node``."""

    def envoy_binary(self) -> Path: ...


class Certificates(Protocol):
    def pem(self, arn: str) -> tuple[str, str] | None:
        """(chain, private key) of an imported certificate, None when there is none."""


class MetricSink(Protocol):
    def put(self, namespace: str, name: str, dimensions: Mapping[str, str], value: float, unit: str,
            at: float) -> None:
        """Record one datapoint (CloudWatch's metric store: ``aws cloudwatch`` reads it)."""
