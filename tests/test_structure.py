"""The architecture as tests: no import cycles (function-level imports included), absolute imports only, and
stages that import only the core and the stages before them (docs/DESIGN.md §1). Static (AST), so nothing is
imported and it runs in a fraction of a second."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# import-name prefix -> folder, as pyproject.toml maps them
PACKAGES = {"siamattn.configs": "configs", "siamattn.training": "training", "siamattn.export": "export",
            "siamattn.plugins": "plugins", "siamattn.runtime": "runtime", "siamattn": "siamattn"}
# import layers (docs/DESIGN.md §1): a stage may import the core and the stages of lower layers only. The
# plugins are a library the export stage uses (plugin node names, the library to build engines with), so
# they sit beside training, below export.
LAYERS = {"siamattn.training": 0, "siamattn.plugins": 0, "siamattn.export": 1, "siamattn.runtime": 2}
STAGES = tuple(LAYERS)
# The runtime reads an export through the core (siamattn.manifest) and imports neither the export nor the
# training stage, except (module, what it imports) for these, each to get a model into the PyTorch backend:
RUNTIME_MAY_IMPORT = {
    ("siamattn.runtime.loader", "siamattn.training.model"),  # load_reference: the export's checkpoint
    ("siamattn.runtime.loader", "siamattn.export.random_model"),  # load_reference: its random-init weights
    ("siamattn.runtime.eval_workers", "siamattn.training.model"),  # eval --checkpoint: on the torch backend
    # `siamattn demo` exports the shipped checkpoint (reading it for its hash) before it tracks with the export
    ("siamattn.runtime.demo", "siamattn.training.model.checkpoint"),
    ("siamattn.runtime.demo", "siamattn.export.exporter"),
}


def _modules() -> dict[str, Path]:
    mods: dict[str, Path] = {}
    for prefix, folder in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([prefix, *parts])
            mods.setdefault(name, path)
    return mods


MODULES = _modules()


def _imports(path: Path) -> list[tuple[int, str, int]]:
    """(line, imported module, relative level) for every import statement, at any depth."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, 0) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level == 0:
                # `from siamattn.x import y` may name a submodule y
                out += [(node.lineno, f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, 0)
                        for a in node.names]
            else:
                # `from . import x` names module x; `from .x import y` names module x
                out.append((node.lineno, base or node.names[0].name, node.level))
    return out


def _resolve_relative(mod: str, name: str, level: int) -> str:
    """``from ..x import y`` inside ``mod`` -> absolute module name (y itself when it is a module)."""
    package = mod if _is_package(mod) else mod.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{name}" if name else package


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for mod, path in MODULES.items():
        for _, name, level in _imports(path):
            if level:
                name = _resolve_relative(mod, name, level)
            if not name.startswith("siamattn"):
                continue
            # resolve to the longest known module (a package's __init__ counts as the package)
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != mod:
                graph[mod].add(name)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
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

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _is_package(mod: str) -> bool:
    return MODULES[mod].name == "__init__.py"


def test_the_module_map_covers_the_stages() -> None:
    # guards the test itself: a renamed folder would otherwise make every check below vacuous
    for stage in (*LAYERS, "siamattn.config", "siamattn.manifest", "siamattn.runtime.tracker"):
        assert stage in MODULES, stage


def test_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ re-exporting its own submodules is not a cycle of design
    for mod in graph:
        if _is_package(mod):
            graph[mod] = {m for m in graph[mod] if not m.startswith(mod + ".")}
    assert _cycles(graph) == []


def test_cycle_detection_sees_a_planted_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_absolute_imports(mod: str) -> None:
    relative = [line for line, _, level in _imports(MODULES[mod]) if level]
    assert not relative, f"{MODULES[mod].relative_to(ROOT)}: relative imports on lines {relative}"


def _stage(mod: str) -> str | None:
    for s in STAGES:
        if mod == s or mod.startswith(s + "."):
            return s
    return None


# Imports against the data flow, each named with its reason. INT8 calibration (issue 20) records each graph's real
# feeds by running the runtime's PyTorch tracker over a clip (the recorder `check --polygraphy` uses), and times
# the quantized graphs with the runtime's ONNX Runtime session options.
UPWARD_ALLOWED = {
    ("siamattn.export.calibration", "siamattn.runtime.video"),
    ("siamattn.export.calibration", "siamattn.runtime.sources"),
    ("siamattn.export.calibration", "siamattn.runtime.polygraphy_data"),
    ("siamattn.export.calibration", "siamattn.runtime.torch_backend"),
    ("siamattn.export.calibration", "siamattn.runtime.tracker"),
    ("siamattn.export.int8", "siamattn.runtime.ort_runner"),
}


def _layer_violations(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in graph.items():
        own = _stage(mod)
        for dep in deps:
            theirs = _stage(dep)
            if theirs is None:
                continue  # the core is open to every stage
            if own is None:
                # the core imports no stage (the CLI finds stage commands by name, at run time)
                bad.append(f"{mod} (core) -> {dep}")
            elif theirs != own and LAYERS[theirs] >= LAYERS[own] and (mod, dep) not in UPWARD_ALLOWED:
                bad.append(f"{mod} -> {dep}")
    return bad


def test_stages_import_only_lower_layers() -> None:
    assert _layer_violations(_graph()) == []


def test_layer_check_sees_planted_violations() -> None:
    planted = {"siamattn.export.graphs": {"siamattn.runtime.tracker", "siamattn.plugins.names"},
               "siamattn.training.trainer": {"siamattn.plugins.build"},
               "siamattn.geometry": {"siamattn.training.targets"}}
    assert sorted(_layer_violations(planted)) == [
        "siamattn.export.graphs -> siamattn.runtime.tracker",
        "siamattn.geometry (core) -> siamattn.training.targets",
        "siamattn.training.trainer -> siamattn.plugins.build"]


def _runtime_violations(graph: dict[str, set[str]]) -> list[str]:
    return sorted(f"{mod} -> {dep}" for mod, deps in graph.items() if _stage(mod) == "siamattn.runtime"
                  for dep in deps
                  if _stage(dep) in ("siamattn.export", "siamattn.training") and (mod, dep) not in RUNTIME_MAY_IMPORT)


def test_runtime_imports_no_export_or_training_stage() -> None:
    assert _runtime_violations(_graph()) == []


def test_runtime_check_sees_planted_violations() -> None:
    planted = {"siamattn.runtime.tracker": {"siamattn.export.manifest", "siamattn.manifest"},
               "siamattn.runtime.loader": {"siamattn.training.model", "siamattn.export.graphs"},
               "siamattn.export.exporter": {"siamattn.training.model"}}
    assert _runtime_violations(planted) == ["siamattn.runtime.loader -> siamattn.export.graphs",
                                            "siamattn.runtime.tracker -> siamattn.export.manifest"]
