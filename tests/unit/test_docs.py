"""The documentation: generated reference pages cover the code, Markdown links lead somewhere.

The site itself is built (``mkdocs build --strict``) by the test command; these tests check what a
build cannot: that the configuration reference lists every key the JSON Schemas know, with the
defaults the parsers apply, and that the Markdown files outside ``docs/`` link to files that exist.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from mlops_provider.core.drift import DriftPolicy, DriftThresholds
from mlops_provider.core.pipeline_config import DRIFT_SETTINGS_DEFAULTS, INGEST_DEFAULTS
from mlops_provider.get_provider_info import get_provider_info

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = REPO_ROOT / "src" / "mlops_provider" / "schemas"
MARKDOWN_FILES = [
    "README.md",
    "CONTRIBUTING.md",
    "dags/README.md",
    "include/README.md",
    "benchmarks/README.md",
]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.fixture(scope="module")
def pages() -> Any:
    """The MkDocs hook that generates the reference pages, loaded from its file."""
    spec = importlib.util.spec_from_file_location(
        "reference_pages", REPO_ROOT / "docs/hooks/reference_pages.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schema_keys(node: dict[str, Any], root: dict[str, Any], prefix: str = "") -> set[str]:
    """Every dotted property path of a schema, following local ``$ref``s."""
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **node}
    keys = set()
    for name, child in node.get("properties", {}).items():
        keys.add(prefix + name)
        keys |= schema_keys(child, root, f"{prefix}{name}.")
    return keys


def reference_rows(page: str) -> dict[str, list[str]]:
    """Key -> cells of each table row of the generated configuration page, per section."""
    rows: dict[str, list[str]] = {}
    section = ""
    for line in page.splitlines():
        if line.startswith("## "):
            section = "dataset" if "Dataset" in line else "model"
        match = re.match(r"\| `([^`]+)` \|(.*)\|$", line)
        if match:
            rows[f"{section}:{match[1]}"] = [html.unescape(cell.strip()) for cell in match[2].split(" | ")]
    return rows


@pytest.mark.parametrize("kind", ["dataset", "model"])
def test_configuration_reference_lists_every_schema_key(pages, kind):
    schema = json.loads((SCHEMA_DIR / f"{kind}.schema.json").read_text())
    expected = schema_keys(schema, schema)
    listed = {
        key.split(":", 1)[1] for key in reference_rows(pages.configuration_page()) if key.startswith(kind)
    }
    assert expected, "the schema has no properties"
    assert listed == expected


def test_configuration_reference_shows_the_defaults_the_parsers_apply(pages):
    rows = reference_rows(pages.configuration_page())
    default = {key: cells[2] for key, cells in rows.items()}  # cells: type, required, default, ...
    assert default["dataset:source.format"] == '`"csv"`'  # stated by the schema
    assert default["dataset:ingest.schedule"] == f'`"{INGEST_DEFAULTS.schedule}"`'
    assert default["dataset:ingest.retries"] == f"`{INGEST_DEFAULTS.retries}`"
    assert default["model:drift.window_days"] == f"`{DRIFT_SETTINGS_DEFAULTS.window_days}`"
    assert default["model:drift.thresholds.psi"] == f"`{DriftThresholds().psi}`"
    assert default["model:drift.policy.weighting"] == f'`"{DriftPolicy().weighting}"`'
    assert default["model:training.schedule"] == "`null`"
    assert default["model:name"] == "-"  # required, no default
    assert rows["model:name"][1] == "yes"


def test_configuration_reference_shows_allowed_values_and_advice(pages):
    rows = reference_rows(pages.configuration_page())
    assert '`"binary"`, `"multiclass"`, `"regression"`' in rows["model:task"][3]
    assert ">= 1; <= 90" in rows["model:drift.window_days"][3]
    assert "Invalid values: use lower-case letters" in rows["dataset:name"][4]
    assert "asset (mlops.&lt;name&gt;.validated)" in pages.configuration_page()  # not lost as an HTML tag


def test_configuration_reference_takes_missing_descriptions_from_the_settings_docstrings(pages):
    rows = reference_rows(pages.configuration_page())
    assert "population stability index" in rows["model:drift.thresholds.psi"][4]
    assert "`SimpleImputer` strategy" in rows["model:preprocessing.categorical.impute"][4]
    assert rows["model:gate.margin"][2] == "`0.0`"


def test_provider_reference_lists_every_option_and_connection_field(pages):
    info = get_provider_info()
    page = pages.provider_page(info)
    for section, spec in info["config"].items():
        assert f"## The `[{section}]` section" in page
        for option, details in spec["options"].items():
            assert f"| `{option}` | `{details['default']}` |" in page
    for conn in info["connection-types"]:
        assert f"`{conn['hook-class-name']}`" in page
        for extra in conn["conn-fields"]:
            assert f"| `{extra}` |" in page


@pytest.mark.parametrize("name", MARKDOWN_FILES)
def test_relative_links_lead_to_files(name):
    path = REPO_ROOT / name
    broken = [
        target
        for target in LINK.findall(path.read_text())
        if "://" not in target
        and not target.startswith("#")
        and not (path.parent / target.split("#", 1)[0]).exists()
    ]
    assert not broken, f"{name} links to missing files: {broken}"


def test_readme_is_a_landing_page_with_the_two_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    for command in ("scripts/run-stack", "scripts/test"):
        assert f"\n{command} " in readme, f"the README does not show {command}"
        assert (REPO_ROOT / command).stat().st_mode & 0o111, f"{command} is not executable"


def test_every_docs_page_is_in_the_nav():
    nav = (REPO_ROOT / "mkdocs.yml").read_text()
    generated = {"reference/configuration.md", "reference/provider.md"}
    pages = {p.relative_to(REPO_ROOT / "docs").as_posix() for p in (REPO_ROOT / "docs").rglob("*.md")}
    missing = {page for page in pages | generated if f": {page}" not in nav}
    assert not missing, f"pages not in mkdocs.yml's nav: {sorted(missing)}"


def test_license_file_is_the_license_pyproject_declares():
    declared = re.search(r'^license = "([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    text = (REPO_ROOT / "LICENSE").read_text()
    assert declared and declared[1] == "Apache-2.0"
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text
