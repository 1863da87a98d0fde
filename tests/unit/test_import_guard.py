"""Heavy libraries stay out of module level wherever Airflow parses DAGs or loads the provider.

ruff enforces the same rule statically (TID253 in pyproject.toml); this test checks the effect:
importing the provider's modules in a fresh interpreter loads none of the heavy packages.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.unit

HEAVY = ("pandas", "sklearn", "scipy", "mlflow", "great_expectations", "boto3", "pyarrow", "numpy")
PACKAGE = REPO_ROOT / "src" / "mlops_provider"
GUARDED = [
    PACKAGE / "__init__.py",
    PACKAGE / "get_provider_info.py",
    PACKAGE / "exceptions.py",
    PACKAGE / "assets.py",
    *sorted((PACKAGE / "pipelines").glob("*.py")),
    *sorted((PACKAGE / "hooks").glob("*.py")),
    *sorted((PACKAGE / "operators").glob("*.py")),
    *sorted((PACKAGE / "plugins").glob("*.py")),
    *sorted((PACKAGE / "links").glob("*.py")),
    *sorted((REPO_ROOT / "dags").glob("*.py")),
]


def _module_level_imports(path: Path) -> list[str]:
    names = []
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


@pytest.mark.parametrize("path", GUARDED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_heavy_import_at_module_level(path):
    heavy = [name for name in _module_level_imports(path) if name.split(".")[0] in HEAVY]
    assert heavy == []


def test_importing_the_provider_loads_no_heavy_package():
    modules = [
        "mlops_provider.get_provider_info",
        *(f"mlops_provider.hooks.{p.stem}" for p in sorted((PACKAGE / "hooks").glob("*.py"))),
        *(f"mlops_provider.operators.{p.stem}" for p in sorted((PACKAGE / "operators").glob("*.py"))),
        *(f"mlops_provider.plugins.{p.stem}" for p in sorted((PACKAGE / "plugins").glob("*.py"))),
        "mlops_provider.assets",
    ]
    probe = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"print(','.join(sorted(h for h in {HEAVY!r} if h in sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().splitlines()[-1:] in ([], [""])
