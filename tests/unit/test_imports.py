"""The import graph of Dockyard's packages, read with ast (TYPE_CHECKING imports left out;
imports inside functions count: they are loops all the same).

* no import loop anywhere;
* no part (registry, discovery, runner, mesh) imports another part: parts meet through seams
  the assembly fills in (runner.seams, dockyard.platform.assemble);
* the core (dockyard/) imports no part, except the assembly (dockyard/platform.py,
  dockyard/cli.py), which imports each part's ``part`` module only.

``ALLOWED`` lists the known exceptions being removed; shrink it, never grow it.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["dockyard", "registry", "discovery", "runner", "mesh"]
PARTS = {"registry", "discovery", "runner", "mesh"}
ASSEMBLY = {"dockyard.platform", "dockyard.cli"}

# (importer, imported) edges allowed for now; each one is on another helper's list to remove.
ALLOWED = {
}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = f
    return out


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                skip.update(id(n) for n in ast.walk(child))
    return skip


def imports_of(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip = _type_checking_nodes(tree)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            for a in node.names:
                sub = f"{mod}.{a.name}"
                out.add(sub if sub in known else mod)
    return {m for m in out if m in known and m != name}


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(g[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_loop_and_nothing_else():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_there_is_no_import_loop_outside_the_allowed_edges():
    g = graph()
    pruned = {a: {b for b in deps if (a, b) not in ALLOWED} for a, deps in g.items()}
    assert cycles(pruned) == []


def test_no_part_imports_another_part():
    wrong = [
        (a, b) for a, deps in graph().items() for b in deps
        if a.split(".")[0] in PARTS and b.split(".")[0] in PARTS and a.split(".")[0] != b.split(".")[0]
        and (a, b) not in ALLOWED
    ]
    assert wrong == []


def test_the_core_imports_no_part_but_the_assembly_imports_each_part_module():
    wrong = []
    for a, deps in graph().items():
        if a.split(".")[0] != "dockyard":
            continue
        for b in deps:
            if b.split(".")[0] not in PARTS or (a, b) in ALLOWED:
                continue
            if a in ASSEMBLY and b.endswith(".part") and b.count(".") == 1:
                continue
            wrong.append((a, b))
    assert wrong == []


def test_the_allow_list_has_no_stale_entry():
    g = graph()
    assert [e for e in sorted(ALLOWED) if e[1] not in g.get(e[0], set())] == []

