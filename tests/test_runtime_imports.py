"""No import cycles (issue 15): no module may import a module that imports it back, at module level or
inside a function. Read from the sources with ``ast`` (every ``import``/``from ... import`` anywhere in a
file), so lazy imports count too.

The implicit import of parent packages (``import a.b.c`` runs ``a/__init__`` first) is not an edge: a
package's ``__init__`` re-exporting its submodules is how packages work. ``from a.b import name`` is an
edge to ``a.b.name`` when that is a module, else to ``a.b`` itself.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Cycles through these modules fail this test; the graph spans the whole package so that a cycle through
# another stage is found too.
CHECKED = ("siamattn.runtime", "siamattn.cli", "siamattn.cli_args", "siamattn.commands", "siamattn.geometry",
           "siamattn.config", "siamattn.errors", "siamattn.resources")


PACKAGES = ("siamattn", "siamattn.configs", "siamattn.training", "siamattn.export", "siamattn.plugins",
            "siamattn.runtime")  # pyproject's package-dir: each stage folder installs as a subpackage


def module_files() -> dict[str, Path]:
    """Module name -> file for every module of the installed packages (found without importing them)."""
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        folder = Path(next(iter(spec.submodule_search_locations)))
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            if any(not p.isidentifier() for p in parts):
                continue
            modules[".".join([package, *parts])] = path
    return modules


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in modules)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in modules:
                    out.add(sub)
                elif target in modules:
                    out.add(target)
    out.discard(name)
    return out


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def test_cycle_finder_finds_a_lazy_cycle(tmp_path):
    """The checker itself: a function-level import back is a cycle; a one-way import is not."""
    a = tmp_path / "a.py"
    b = tmp_path / "b.py"
    a.write_text("from pkg.b import f\n")
    b.write_text("def f():\n    from pkg.a import g\n")
    modules = {"pkg.a": a, "pkg.b": b}
    graph = {n: imports_of(n, p, modules) for n, p in modules.items()}
    assert find_cycles(graph) == [["pkg.a", "pkg.b"]]
    b.write_text("def f():\n    return 1\n")
    graph = {n: imports_of(n, p, modules) for n, p in modules.items()}
    assert find_cycles(graph) == []


def test_runtime_and_top_level_modules_have_no_import_cycles():
    modules = module_files()
    assert "siamattn.runtime.tracker" in modules and "siamattn.cli" in modules
    graph = {n: imports_of(n, p, modules) for n, p in modules.items()}
    ours = [c for c in find_cycles(graph) if any(m == k or m.startswith(k + ".") for m in c for k in CHECKED)]
    assert ours == [], f"import cycles: {ours}"


def test_runtime_uses_absolute_imports():
    relative = []
    for path in sorted((ROOT / "runtime").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                relative.append(f"{path.name}:{node.lineno}")
    # runtime/demo.py's GPU probe is being replaced by siamattn.tensorrt_env (issue 15, other branch)
    assert [r for r in relative if not r.startswith("demo.py")] == []
