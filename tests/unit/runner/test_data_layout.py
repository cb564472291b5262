"""The runner's layering: its SQL is in ``runner/data.py`` only (the schema stays with each
module's ``MIGRATIONS``), and placement is the pure scheduler's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

RUNNER = Path(__file__).resolve().parents[3] / "runner"
SQL = re.compile(r"\b(SELECT|INSERT INTO|INSERT OR|UPDATE \w+ SET|DELETE FROM)\b")
MODULES = [
    "tasks.py", "taskshapes.py", "tasklogs.py", "services.py", "serviceshapes.py", "service_loop.py",
    "deployments.py", "query.py", "supervisor.py", "agent/worker.py", "scheduler/placement.py",
]


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_tasks_and_services_read_and_write_the_store_only_through_the_data_layer():
    holders = [m for m in MODULES if SQL.search((RUNNER / m).read_text())]
    assert holders == []
    assert SQL.search((RUNNER / "data.py").read_text())


def test_no_runner_module_but_the_data_layer_holds_a_statement():
    found = [p for p in RUNNER.rglob("*.py") if SQL.search(p.read_text())]
    holders = sorted(p.relative_to(RUNNER).as_posix() for p in found)
    assert holders == ["data.py", "logs/data.py"]  # the log store is a database of its own (runner.logs)


def test_the_scheduler_stays_pure():
    for path in sorted((RUNNER / "scheduler").glob("*.py")):
        imported = _imports(path)
        assert not any(m.startswith(("dockyard", "runner.data", "runner.instances", "runner.tasks"))
                       for m in imported), path.name
