"""The images install the versions of uv.lock: constraints.txt and deploy/mlflow agree with it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import tomllib

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
# The command whose output constraints.txt is (its first lines say so too).
EXPORT = [
    "export",
    "--frozen",
    "--no-dev",
    "--extra",
    "s3",
    "--no-hashes",
    "--no-emit-project",
    "--no-annotate",
]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[^\s;]+)")


def _locked_versions() -> dict[str, set[str]]:
    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    versions: dict[str, set[str]] = {}
    for package in lock["package"]:
        versions.setdefault(package["name"], set()).add(package.get("version", ""))
    return versions


def _pins(path: Path) -> list[tuple[str, str]]:
    pins = []
    for line in path.read_text().splitlines():
        match = PIN.match(line)
        if match:
            pins.append((match["name"].lower(), match["version"]))
    return pins


def _uv() -> str:
    candidates = [
        os.environ.get("UV"),
        shutil.which("uv"),
        *sorted(REPO_ROOT.glob(".stack/tools/uv-*/bin/uv")),
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return str(candidate)
    pytest.skip("no uv binary (scripts/ensure-env installs one)")


def _requirements(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_constraints_are_the_export_of_uv_lock():
    result = subprocess.run(
        [_uv(), *EXPORT, "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    expected = _requirements(result.stdout)
    assert _requirements((REPO_ROOT / "constraints.txt").read_text()) == expected, (
        "constraints.txt is stale: run `uv " + " ".join(EXPORT) + " -o constraints.txt`"
    )


def test_every_constraint_is_a_locked_version():
    locked = _locked_versions()
    pins = _pins(REPO_ROOT / "constraints.txt")
    assert len(pins) > 100
    for name, version in pins:
        assert version in locked.get(name, set()), f"{name}=={version} is not in uv.lock"


def test_mlflow_server_image_uses_the_locked_versions():
    locked = _locked_versions()
    for name, version in _pins(REPO_ROOT / "deploy" / "mlflow" / "requirements.txt"):
        assert locked[name] == {version}, f"deploy/mlflow/requirements.txt: {name}=={version}"
    dockerfile = (REPO_ROOT / "deploy" / "mlflow" / "Dockerfile").read_text()
    tag = re.search(r"^FROM ghcr\.io/mlflow/mlflow:v(?P<version>\S+)$", dockerfile, re.MULTILINE)
    assert tag and locked["mlflow"] == {tag["version"]}


def test_airflow_image_installs_the_provider_with_the_constraints():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert re.search(
        r"^FROM astrocrpublic\.azurecr\.io/runtime:3\.3-\S+-python-3\.11$", dockerfile, re.MULTILINE
    )
    assert "constraints.txt" in dockerfile
    assert '--constraint /tmp/constraints.txt "/tmp/airflow-provider-mlops[s3]"' in dockerfile
