"""The control-worker package: its seam (it imports neither the assembly nor any part, at module
level or inside a function, so ``dockyard.platform`` can import it without a loop) and how many
connections a worker holds."""

from __future__ import annotations

import ast
from pathlib import Path

import dockyard.control

PACKAGE = Path(dockyard.control.__file__).parent
FORBIDDEN = ("dockyard.platform", "dockyard.control_worker", "registry", "discovery", "runner", "mesh")


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, wherever the import statement is."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def test_the_worker_package_imports_neither_the_assembly_nor_a_part():
    modules = sorted(PACKAGE.glob("*.py"))
    assert {m.name for m in modules} >= {"__init__.py", "workers.py", "_http1.py"}
    for module in modules:
        bad = {name for name in imported(module)
               if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)}
        assert not bad, f"{module.name} imports {sorted(bad)}"


def test_only_the_worker_package_and_its_entry_point_use_the_private_transport():
    root = PACKAGE.parent.parent
    users = {p.relative_to(root).as_posix() for top in ("dockyard", "registry", "discovery", "runner", "mesh")
             for p in (root / top).rglob("*.py") if "dockyard.control._http1" in imported(p)}
    assert users == {"dockyard/control/workers.py"}


def test_a_worker_keeps_room_for_its_own_files_under_its_open_file_limit():
    from dockyard.control.workers import connection_cap

    assert connection_cap(1024) == 512
    assert connection_cap(1 << 20) == 10_000
    assert connection_cap(300) == 64


def test_a_worker_answers_read_only_operations_of_every_protocol_and_forwards_the_rest():
    from dockyard.aws.protocol import CLOUDMAP, Operations
    from dockyard.control._http1 import Request
    from dockyard.control.workers import ControlApp

    async def stub(call, params):  # type: ignore[no-untyped-def]
        return {}

    ops = Operations({}.get)
    ops.add(CLOUDMAP, "DiscoverInstances", stub, readonly=True)
    ops.add(CLOUDMAP, "CreateService", stub)
    ops.add("appmesh", "ListMeshes", stub, readonly=True)
    ops.add("appmesh", "CreateMesh", stub)
    ops.add("elbv2", "DescribeLoadBalancers", stub, readonly=True)
    ops.add("elbv2", "CreateLoadBalancer", stub)

    class Platform:
        worker_contexts: list = []

        def __init__(self) -> None:
            self.ops = ops

        def health(self) -> dict[str, object]:
            return {}

    app = ControlApp(Platform(), None)  # type: ignore[arg-type]

    def local(method: str, target: str, headers: dict[str, str], body: bytes = b"") -> bool:
        return app.local(Request(method, target, list(headers.items()), headers, body, "1.1", True))

    cbor = {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"}
    form = {"content-type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert local("POST", "/", {"x-amz-target": f"{CLOUDMAP}.DiscoverInstances"})
    assert not local("POST", "/", {"x-amz-target": f"{CLOUDMAP}.CreateService"})
    assert local("POST", f"/service/{CLOUDMAP}/operation/DiscoverInstances", cbor)
    assert not local("POST", f"/service/{CLOUDMAP}/operation/CreateService", cbor)
    assert not local("POST", f"/service/{CLOUDMAP}/operation/DiscoverInstances", {})  # no protocol header
    assert local("GET", "/v20190125/meshes?limit=2", {})
    assert not local("PUT", "/v20190125/meshes/m1", {})
    assert local("POST", "/", form, b"Action=DescribeLoadBalancers&Version=2015-12-01")
    assert not local("POST", "/", form, b"Action=CreateLoadBalancer&Version=2015-12-01&Name=a")
    assert not local("POST", "/", form, b"Action=DescribeLoadBalancers&Version=1999-01-01")
    assert not local("POST", "/", form, b"%zz=&&")
    assert local("GET", "/healthz", {}) and not local("GET", "/events", {})
