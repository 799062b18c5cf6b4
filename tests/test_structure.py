"""Structure: the processes import only what they use."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "module",
    ["app.core.money", "app.store", "app.cli", "workers.main", "workers.jobs", "schedulers.main"],
)
def test_importing_a_part_does_not_build_the_web_app(module: str) -> None:
    check = (
        f"import sys, {module}; "
        "loaded = [m for m in ('quart', 'hypercorn', 'app.edge.web', 'app.dev') "
        "if m in sys.modules]; "
        "print(','.join(loaded))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"


def test_the_dev_server_does_not_import_the_cli() -> None:
    check = "import sys, app.dev; print('app.cli' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


def test_the_factory_is_still_reachable_from_the_package() -> None:
    from app import create_app
    from app.edge.web import create_app as factory

    assert create_app is factory


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Every set of modules that import one another in a loop (strongly connected
    components of more than one module), imports made only for type checking left out."""
    modules = sorted(graph.modules)
    imports = {module: graph.find_modules_directly_imported_by(module) for module in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:  # Tarjan's algorithm
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in imports[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_back() -> None:
    graph = grimp.build_graph("app", "workers", "schedulers", exclude_type_checking_imports=True)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for importer, imported in [("a.web", "a.server"), ("a.server", "a.asgi"), ("a.asgi", "a.web")]:
        graph.add_import(importer=importer, imported=imported)
    graph.add_import(importer="a.cli", imported="a.web")
    assert import_cycles(graph) == [["a.asgi", "a.server", "a.web"]]


def test_the_architecture_contracts_hold() -> None:
    """pyproject.toml [tool.importlinter]: routes -> services -> store, routes never reach
    the store directly, only app.store imports redis, no cycles between sibling packages."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint), "--no-logo", "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
