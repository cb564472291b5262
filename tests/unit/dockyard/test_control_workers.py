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
