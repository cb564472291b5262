"""A real ``dockyard up`` whose control API also serves stub operations of a REST-JSON service
(App Mesh) and a Query one (ELBv2), for the integration tests of those two protocols. The mesh
part's own App Mesh operations are left out here (``mesh.part.install_appmesh``), so the stubs
stand in for them and each answer can tell which process made it.

The stubs are registered through the public API a part uses (``platform.ops.add``), after the
parts, in the main process and in each control worker; they are read-only, so a worker answers
them itself, and each answer names the pid of the process that made it.

Run as ``python -m tests.support.stub_protocols up ARGS`` (the main process, as ``dockyard up
ARGS``) or with no arguments (a control worker, started by the main process).
"""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from typing import Any

from dockyard import control_worker
from dockyard import platform as assembly
from dockyard.aws.errors import ValidationException
from dockyard.aws.protocol import Call
from edge import part as edge_part
from mesh import part as mesh_part
from mesh.appmesh_errors import NotFoundException

__all__ = ["ENTRY", "add_stubs", "main"]

ENTRY = "tests.support.stub_protocols"

async def list_meshes(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    limit = params.get("limit", 2)
    meshes = [
        {"meshName": f"pid-{os.getpid()}", "arn": "arn:aws:appmesh:us-east-1:000000000000:mesh/a",
         "meshOwner": "000000000000", "resourceOwner": "000000000000", "version": 1,
         "createdAt": 1700000000.5, "lastUpdatedAt": 1700000001.5},
    ] * limit
    return {"meshes": meshes, "nextToken": f"after-{limit}"}


async def describe_mesh(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    if params["meshName"] == "gone":
        raise NotFoundException(f"Mesh {params['meshName']} not found.")
    return {"mesh": {"meshName": params["meshName"], "spec": {},
                     "status": {"status": "ACTIVE"},
                     "metadata": {"arn": f"arn:aws:appmesh:us-east-1:000000000000:mesh/{params['meshName']}",
                                  "meshOwner": "000000000000", "resourceOwner": "000000000000",
                                  "uid": str(os.getpid()), "version": 3,
                                  "createdAt": 1700000000.0, "lastUpdatedAt": 1700000000.0}}}


async def describe_load_balancers(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    names = params.get("Names", [])
    if "nope" in names:
        raise ValidationException("'nope' is not a valid load balancer name.")
    return {
        "LoadBalancers": [
            {"LoadBalancerName": n, "LoadBalancerArn": f"arn:aws:elasticloadbalancing:us-east-1:0:lb/{n}",
             "DNSName": f"pid-{os.getpid()}", "CreatedTime": 1700000000.0, "Scheme": "internal",
             "State": {"Code": "active"}, "AvailabilityZones": [{"ZoneName": "us-east-1a"}]}
            for n in names
        ],
    }


def add_stubs(platform: Any) -> None:
    ops = platform.ops
    ops.add("appmesh", "ListMeshes", list_meshes, readonly=True)
    ops.add("appmesh", "DescribeMesh", describe_mesh, readonly=True)
    ops.add("elbv2", "DescribeLoadBalancers", describe_load_balancers, readonly=True)


_assemble = assembly.assemble


def assemble(platform: Any) -> None:
    _assemble(platform)
    add_stubs(platform)


def main() -> None:
    assembly.assemble = assemble  # dockyard up's platform (dockyard.platform.run)
    control_worker.assemble = assemble  # each control worker's
    assembly.Platform.worker_entry = ENTRY
    mesh_part.install_appmesh = lambda platform: None  # the stubs answer App Mesh instead
    # and ELBv2 (the edge part serves the real one): no edge, so no target groups for the runner
    edge_part.install = lambda platform, **kw: SimpleNamespace(targets=None)
    if len(sys.argv) > 1:
        from dockyard.cli import main as cli

        sys.exit(cli(sys.argv[1:]))
    control_worker.main()


if __name__ == "__main__":
    main()
