"""The distributions pyproject.toml declares are exactly those the package imports.

An import of an undeclared distribution works in the dev venv and fails in a user's Airflow (skops and
matplotlib did); a declared distribution nothing imports is weight and resolver work for every user
(boto3 was). The imports are read from src/ with ``ast``; a distribution provides the top-level modules of
its own files, or, for a meta-package without modules (``apache-airflow``), those of its requirements.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib import metadata

import pytest
import tomllib
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

SRC = REPO_ROOT / "src" / "mlops_provider"

# Declared, needed at run time, and imported by nobody in src/: each with the reason.
RUN_TIME_ONLY = {
    # Registers the s3:// filesystem behind airflow.sdk.ObjectStoragePath (with s3fs) through its
    # provider entry point; the provider never imports it.
    "apache-airflow-providers-amazon": "s3:// storage for ObjectStoragePath",
    # Pinned early by plain pip as a direct requirement, it bounds botocore before boto3 is chosen.
    "aiobotocore": "a resolver hint for plain pip (see the s3 extra in pyproject.toml)",
}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def imported_modules() -> set[str]:
    """Every module src/ imports absolutely, without the standard library and the package itself."""
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module)
    return {
        n for n in names if top_level(n) not in sys.stdlib_module_names and top_level(n) != "mlops_provider"
    }


def top_level(module: str) -> str:
    return module.split(".")[0]


def declared() -> dict[str, Requirement]:
    """Every requirement of [project] dependencies and optional dependencies, by normalized name."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        lines += [line for line in extra if not line.startswith("airflow-provider-mlops")]
    requirements = [Requirement(line) for line in lines]
    return {normalized(r.name): r for r in requirements}


@cache
def provided_modules(distribution: str) -> frozenset[str]:
    """Dotted names of the modules a distribution installs; a meta-package's are its plain requirements'."""
    modules = set()
    for file in metadata.distribution(distribution).files or ():
        if file.suffix == ".py" and ".." not in file.parts:
            parts = file.with_suffix("").parts
            modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    if modules:
        return frozenset(modules)
    requires = [Requirement(line) for line in metadata.requires(distribution) or ()]
    plain = [r for r in requires if r.marker is None or "extra" not in str(r.marker)]
    return frozenset(m for r in plain for m in provided_modules(r.name))


def provides(distribution: str, module: str) -> bool:
    """Whether the distribution installs the module or a package above it (its ``__init__``).

    Namespace packages have no ``__init__``: the amazon provider installs ``airflow.providers.amazon``,
    not ``airflow`` nor ``airflow.sdk``.
    """
    parts = module.split(".")
    return any(".".join(parts[:n]) in provided_modules(distribution) for n in range(1, len(parts) + 1))


def test_src_imports_are_found() -> None:
    """The scan sees the imports that once went undeclared (a guard against a scan that finds nothing)."""
    tops = {top_level(m) for m in imported_modules()}
    assert {"airflow", "mlflow", "sklearn", "skops", "matplotlib", "yaml"} <= tops


def test_every_import_is_declared() -> None:
    missing = {m for m in imported_modules() if not any(provides(name, m) for name in declared())}
    assert missing == set(), f"imported by src/ but declared in no dependency of pyproject.toml: {missing}"


def test_every_declared_distribution_is_imported() -> None:
    imports = imported_modules()
    unused = {
        name
        for name in declared()
        if name not in RUN_TIME_ONLY and not any(provides(name, m) for m in imports)
    }
    assert unused == set(), f"declared in pyproject.toml, imported nowhere in src/: {unused}"


def test_run_time_only_distributions_are_declared() -> None:
    """The exceptions above stay honest: each is still declared, and still not imported."""
    for name in RUN_TIME_ONLY:
        assert name in declared(), name
        assert not any(provides(name, m) for m in imported_modules()), name
