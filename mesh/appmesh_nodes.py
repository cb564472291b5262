"""App Mesh's virtual nodes and virtual services (Create/Describe/List/Update/Delete of each),
with App Mesh's shapes, statuses and errors (:mod:`mesh.appmesh_resources`).

Specs go through :mod:`mesh.appmesh_nodespec`; a virtual service's provider must exist
(NotFoundException), and a virtual node or router that a virtual service or a route names
cannot be deleted (ResourceInUseException), both checked in the write by :mod:`mesh.data`.
ARNs: ``mesh/<mesh>/virtualNode/<name>``, ``mesh/<mesh>/virtualService/<name>``.
"""

from __future__ import annotations

from mesh.appmesh_nodespec import check_virtual_node_spec, check_virtual_service_spec
from mesh.appmesh_resources import Kind, Resources
from mesh.data import VIRTUAL_NODE, VIRTUAL_SERVICE, Data

__all__ = ["NODE_KINDS", "Nodes"]

NODE_KINDS = (
    Kind(VIRTUAL_NODE, "VirtualNode", "virtualNodeName", "virtualNode", "virtualNodes", "virtualNode",
         check_virtual_node_spec),
    Kind(VIRTUAL_SERVICE, "VirtualService", "virtualServiceName", "virtualService", "virtualServices",
         "virtualService", check_virtual_service_spec),
)


class Nodes(Resources):
    """The virtual node and virtual service operations of one platform."""

    def __init__(self, data: Data, region: str, account: str) -> None:
        super().__init__(data, region, account, NODE_KINDS)
