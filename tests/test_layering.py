"""The floors (README "Architecture"): imports only go down, experiments/ -> soo_rl/ -> agents/ ->
envs/; no script imports another script (only the shared experiments/cli.py); no import circles.
Every import counts, those inside functions included (read with ``ast``, nothing is executed)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOORS = {"envs": 0, "agents": 1, "soo_rl": 2, "experiments": 3}
#: the floors inside soo_rl/ (docs/design.md section 5); its top-level modules (config, errors) are
#: the ground every subpackage may use
SOO_RL_FLOORS = {"": 0, "storage": 1, "evaluation": 2, "training": 3, "analysis": 4, "running": 5,
                 "tools": 6}


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


def _soo_rl_floor(module: str) -> int:
    parts = module.split(".")
    sub = parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in SOO_RL_FLOORS) else ""
    return SOO_RL_FLOORS[sub]


def test_soo_rl_is_grouped():
    """soo_rl/ holds only its subpackages and its shared ground (config, errors)."""
    top = {p.stem for p in (ROOT / "soo_rl").glob("*.py")}
    assert top == {"__init__", "config", "errors"}, top
    subs = {p.parent.name for p in (ROOT / "soo_rl").glob("*/__init__.py")}
    assert subs == set(SOO_RL_FLOORS) - {""}, subs


def test_soo_rl_imports_only_go_down():
    """Inside soo_rl/: ground <- storage <- evaluation <- training <- analysis <- running <- tools;
    a subpackage imports only its own modules and those of lower floors."""
    upward = [(m, d) for m, deps in _graph().items() for d in deps
              if m.startswith("soo_rl.") and d.startswith("soo_rl.")
              and _soo_rl_floor(d) > _soo_rl_floor(m)]
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
