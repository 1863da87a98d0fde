"""The layer contract holds, and the check that enforces it can fail.

``lint-imports`` checks the contracts of ``[tool.importlinter]`` in pyproject.toml: core/ imports no
Airflow and no other layer; pipelines | plugins > operators > links > hooks > core; nothing imports
``mlops_provider.plugins``. The same contracts run against a throwaway package that breaks each
rule once, so a contract that stopped catching its violation would fail here. The project folders
``dags/`` and ``plugins/`` are Airflow's to load, not packages: an ``ast`` scan checks that no
Python file of the repository imports them.
"""

from __future__ import annotations

import ast
import re
import subprocess
from typing import TYPE_CHECKING

import pytest

from tests.conftest import REPO_ROOT, VENV_BIN

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.unit

PROJECT_FOLDERS = ("dags", "plugins")  # loaded by Airflow from its configured folders, never imported
SCANNED = ("src", "include", "tests", "scripts", "benchmarks", "dags", "plugins")

FAKE = "fakeprovider"
# module of the throwaway package -> its source. The clean skeleton imports what the contract allows.
ALLOWED = {
    "core/metrics.py": "import math\nimport pandas\n",
    "hooks/client.py": f"import airflow\nfrom {FAKE}.core import metrics\nfrom {FAKE} import exceptions\n",
    "links/report.py": f"from {FAKE}.hooks import client\n",
    "operators/train.py": f"from {FAKE}.links import report\nfrom {FAKE}.hooks import client\n",
    "pipelines/factory.py": f"from {FAKE}.operators import train\nfrom {FAKE} import assets\n",
    "plugins/web.py": f"from {FAKE}.links import report\nfrom {FAKE}.hooks import client\n",
    "assets.py": f"import airflow\nfrom {FAKE}.core import metrics\n",
    "exceptions.py": "import airflow\n",
    "get_provider_info.py": "",
}
# module -> (source, the import lint-imports must report), one per rule.
VIOLATIONS = {
    "core/uses_airflow.py": ("import airflow.sdk\n", "airflow"),
    "core/uses_exceptions.py": (f"from {FAKE} import exceptions\n", f"{FAKE}.exceptions"),
    "core/uses_hooks.py": (f"from {FAKE}.hooks import client\n", f"{FAKE}.hooks.client"),
    "hooks/uses_operators.py": (f"from {FAKE}.operators import train\n", f"{FAKE}.operators.train"),
    "links/uses_operators.py": (f"from {FAKE}.operators import train\n", f"{FAKE}.operators.train"),
    "operators/uses_pipelines.py": (
        f"def build():\n    from {FAKE}.pipelines import factory\n",
        f"{FAKE}.pipelines.factory",
    ),
    "pipelines/uses_plugins.py": (f"from {FAKE}.plugins import web\n", f"{FAKE}.plugins.web"),
    "get_provider_info_uses_plugins.py": (f"from {FAKE}.plugins import web\n", f"{FAKE}.plugins.web"),
}


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with the pyproject.toml of ``cwd`` (whose root package it imports from there)."""
    return subprocess.run(
        [str(VENV_BIN / "lint-imports"), "--no-cache", "--no-logo"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_package(root: Path, modules: dict[str, str]) -> None:
    for relative, source in modules.items():
        path = root / FAKE / relative
        path.parent.mkdir(exist_ok=True)
        (path.parent / "__init__.py").touch()
        path.write_text(source)


@pytest.fixture
def project_contracts(tmp_path: Path) -> Path:
    """The project's pyproject.toml with its root package renamed to the throwaway one."""
    text = (REPO_ROOT / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(text.replace("mlops_provider", FAKE))
    (tmp_path / FAKE).mkdir()
    (tmp_path / FAKE / "__init__.py").touch()
    return tmp_path


def test_the_provider_keeps_its_layer_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 kept, 0 broken" in result.stdout


def test_imports_the_contract_allows_are_kept(project_contracts):
    write_package(project_contracts, ALLOWED)

    result = lint_imports(project_contracts)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_forbidden_import_is_reported(project_contracts):
    modules = {**ALLOWED, **{name: source for name, (source, _) in VIOLATIONS.items()}}
    write_package(project_contracts, modules)

    result = lint_imports(project_contracts)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "0 kept, 3 broken" in result.stdout
    for relative, (_, imported) in VIOLATIONS.items():
        importer = f"{FAKE}." + relative.removesuffix(".py").replace("/", ".")
        # A reported chain starts with a dash: "-   importer -> imported (l.N)".
        reported = rf"^-\s+{re.escape(importer)} -> {re.escape(imported)} \(l\.\d+\)$"
        assert re.search(reported, result.stdout, re.MULTILINE), relative


def project_folder_imports(source: str) -> list[str]:
    """The absolute imports of ``dags`` / ``plugins`` (or their modules) in a Python source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] in PROJECT_FOLDERS]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [node.module] if node.module.split(".")[0] in PROJECT_FOLDERS else []
    return found


def test_the_scan_finds_imports_of_the_project_folders():
    source = (
        "import dags.mlops_pipelines\n"
        "def f():\n    from plugins import web\n"
        "from tests.support import dags\nfrom . import plugins\nimport dagster\n"
    )
    assert project_folder_imports(source) == ["dags.mlops_pipelines", "plugins"]


def test_nothing_imports_the_project_dags_or_plugins_folders():
    files = [path for folder in SCANNED for path in sorted((REPO_ROOT / folder).rglob("*.py"))]
    assert len(files) > 100  # the scan sees the repository
    offenders = {
        str(path.relative_to(REPO_ROOT)): names
        for path in files
        if (names := project_folder_imports(path.read_text()))
    }
    assert offenders == {}
