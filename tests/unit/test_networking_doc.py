"""docs/networking.md says how to reach a service and names, for every claim, the test that
checks it: each test it names exists, and the README points to the page."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "networking.md"


def _tests_in(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}


def test_every_test_the_page_names_exists() -> None:
    named = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC.read_text())
    assert len(named) >= 15
    for path, name in named:
        assert name in _tests_in(ROOT / path), f"docs/networking.md names {path}::{name}, which is not there"


def test_the_page_answers_what_a_user_asks_and_the_readme_points_to_it() -> None:
    text = DOC.read_text()
    for mode in ("`awsvpc`", "`bridge`", "`host`"):
        assert f"| {mode} " in text  # a row per network mode: address, hostPort, host, other machine
    for topic in ("hostPort", "another machine", "task_dns", "task_dns_upstream", "REFUSED", "127.0.0.11"):
        assert topic in text, topic
    readme = (ROOT / "README.md").read_text()
    assert "docs/networking.md" in readme
    assert re.search(r"^\| Cloud Map names resolved inside tasks \| available \|", readme, re.M)
