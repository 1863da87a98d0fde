"""The Astro DAG integrity test runs inside the image with what the image has.

`astro dev parse` runs .astro/test_dag_integrity_default.py in the project image, where only the
Runtime's packages and this provider (with its dependencies) are installed: the test and the DAG
files may import nothing else (no test helpers, no dev-only packages).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
IN_THE_IMAGE = {"airflow", "pytest", "mlops_provider"}


def _top_level_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize(
    "path",
    [REPO_ROOT / ".astro" / "test_dag_integrity_default.py", *sorted((REPO_ROOT / "dags").glob("*.py"))],
    ids=lambda p: p.relative_to(REPO_ROOT).as_posix(),
)
def test_imports_only_what_the_image_installs(path):
    outside = _top_level_imports(path) - set(sys.stdlib_module_names) - IN_THE_IMAGE - {"__future__"}
    assert outside == set(), f"{path.name} imports {sorted(outside)}, which the image does not install"
