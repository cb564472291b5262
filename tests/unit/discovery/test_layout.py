"""Discovery's layering: SQL only in ``data.py`` (schema in ``tables.py``), and the health
checker and the index below the API handlers."""

from __future__ import annotations

import ast
import re
from pathlib import Path

PART = Path(__file__).resolve().parents[3] / "discovery"
SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE cm_|DELETE FROM|CREATE TABLE)\b")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return names


def test_only_the_data_module_holds_sql():
    holders = sorted(p.relative_to(PART).as_posix() for p in PART.rglob("*.py") if SQL.search(p.read_text()))
    assert holders == ["data.py", "tables.py"]


def test_health_index_data_and_registrar_do_not_import_the_api_handlers():
    for name in ("health.py", "index.py", "data.py", "registrar.py", "watch.py"):
        assert not any(m.startswith("discovery.handlers") for m in _imports(PART / name)), name
