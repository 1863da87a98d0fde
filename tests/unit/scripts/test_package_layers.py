"""scripts/mlops_stack has no import cycle, and the modules the tests share stay small and standalone."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import mlops_stack
import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(mlops_stack.__file__).parent


def runtime_imports(path: Path) -> set[str]:
    """The package's modules that ``path`` imports when it is imported (not under TYPE_CHECKING, not in
    a function).
    """
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlops_stack"):
            module = node.module.removeprefix("mlops_stack").lstrip(".")
            found |= {module} if module else {alias.name for alias in node.names}
    return found


GRAPH = {path.stem: runtime_imports(path) for path in PACKAGE.glob("*.py") if path.stem != "__main__"}


def test_the_package_has_no_import_cycle():
    order = list(graphlib.TopologicalSorter(GRAPH).static_order())  # raises CycleError on a cycle
    assert set(order) >= {"cli", "stack", "demo", "processes", "rest", "health"}


def test_nothing_imports_the_command_line():
    assert not [name for name, imports in GRAPH.items() if "cli" in imports]


@pytest.mark.parametrize("module", ["processes", "rest", "health", "logs", "restart"])
def test_the_shared_helpers_depend_on_little(module):
    assert GRAPH[module] <= {"errors", "rest", "ports"}


def test_the_local_settings_module_is_never_imported_by_the_stack():
    assert not [name for name, imports in GRAPH.items() if "airflow_local_settings" in imports]


# The order of the package docstring: each module imports only modules before it.
ORDER = [
    "errors", "processes", "logs", "rest", "ports", "health", "paths", "credentials", "environment",
    "restart", "state", "progress", "servers", "stack", "plan", "runs", "mlflow_rest", "launcher",
    "summary", "demo", "cli",
]  # fmt: skip


def test_each_module_imports_only_modules_listed_before_it():
    assert set(ORDER) | {"__init__", "airflow_local_settings"} == set(GRAPH)
    late = {
        name: sorted(imports - set(ORDER[: ORDER.index(name)]))
        for name, imports in GRAPH.items()
        if name in ORDER
    }
    assert {name: later for name, later in late.items() if later} == {}
