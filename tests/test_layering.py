"""The floors (README "Architecture"): imports only go down, experiments/ -> soo_rl/ -> agents/ ->
envs/; no script imports another script (only the shared experiments/cli.py); no import circles.
Every import counts, those inside functions included (read with ``ast``, nothing is executed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"envs": 0, "agents": 1, "soo_rl": 2, "experiments": 3}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for top in FLOORS for p in (ROOT / top).rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``path`` imports (``from a.b import c`` counts a.b.c if it is a module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if name.split(".")[0] in FLOORS and name in modules:
                found.add(name)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _imports(p, modules) - {m} for m, p in modules.items()}


def _is_package_of(a: str, b: str) -> bool:
    """``a`` is a package that contains ``b`` (importing ``b`` runs ``a``'s __init__, not a cycle)."""
    return b.startswith(a + ".")


def test_imports_only_go_down():
    upward = [(m, d) for m, deps in _graph().items() for d in deps
              if FLOORS[d.split(".")[0]] > FLOORS[m.split(".")[0]]]
    assert upward == [], upward


def test_no_script_imports_another_script():
    bad = [(m, d) for m, deps in _graph().items() for d in deps
           if m.startswith("experiments") and d.startswith("experiments.") and d != "experiments.cli"]
    assert bad == [], bad


def test_no_import_circles():
    graph = {m: {d for d in deps if not _is_package_of(d, m)} for m, deps in _graph().items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []

    def visit(m: str, path: list[str]) -> None:
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                cycles.append(path[path.index(d):] + [d] if d in path else [m, d])
            elif d not in state:
                visit(d, path + [d])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], cycles


def test_the_checker_sees_lazy_imports(tmp_path):
    """A planted upward import inside a function is found (the test above can fail)."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from soo_rl.config import CONDITIONS\n")
    assert _imports(src, _modules()) == {"soo_rl.config"}
