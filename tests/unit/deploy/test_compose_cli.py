"""`docker-compose config` on the compose files: interpolated, merged and validated as Compose does.

Debian's `docker-compose` (v1.29, `apt-get install docker-compose`) runs `config` without a Docker
engine. Skipped where it is not installed; tests/unit/deploy/test_compose.py checks the same files
against the Compose Specification schema everywhere.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]
ASTRO_BASE = REPO_ROOT / "tests" / "data" / "astro-compose-base.yaml"


def _docker_compose() -> str:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose (Debian package `docker-compose`) is not installed")
    return tool


def _compose_config(home: Path, *args: str) -> dict:
    """The configuration `docker-compose <args> config` prints (it must succeed), parsed."""
    result = subprocess.run(
        [_docker_compose(), *args, "config"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ["-f", "docker-compose.yaml"],
        ["-f", "docker-compose.yaml", "--profile", "celery"],
        ["--project-directory", ".", "-f", str(ASTRO_BASE), "-f", "docker-compose.override.yml"],
    ],
    ids=["compose", "compose-celery", "astro-override"],
)
def test_docker_compose_config_accepts_the_files(args, tmp_path):
    """`docker-compose config` interpolates, merges and validates as Compose does, with no engine."""
    merged = _compose_config(tmp_path, *args)
    assert "mlflow" in merged["services"]
    assert "minio-buckets" in merged["services"]


def _normalised(value):
    """Compose output up to the order of lists and `{}` / `null` for an empty mapping."""
    if isinstance(value, dict):
        return {key: _normalised(item) for key, item in value.items()}
    if isinstance(value, list):
        return sorted((_normalised(item) for item in value), key=repr)
    return {} if value is None else str(value)


def test_the_override_changes_nothing_when_merged_into_the_compose_file(tmp_path):
    """`docker compose up` without `-f` merges docker-compose.override.yml in: the stack stays the same."""

    def config(*args: str) -> dict:
        return _compose_config(tmp_path, *args)

    assert _normalised(config()) == _normalised(config("-f", "docker-compose.yaml"))
