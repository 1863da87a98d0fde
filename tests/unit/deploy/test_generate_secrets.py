"""deploy/generate_secrets.py: the secrets job of the compose files, run on a temporary directory."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

pytestmark = pytest.mark.unit

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "generate_secrets.py"
SECRET_VARIABLES = (
    "AIRFLOW_FERNET_KEY",
    "AIRFLOW_JWT_SECRET",
    "AIRFLOW_API_SECRET_KEY",
    "AIRFLOW_ADMIN_PASSWORD",
    "POSTGRES_PASSWORD",
    "MLFLOW_DB_PASSWORD",
    "MINIO_ROOT_PASSWORD",
)


@pytest.fixture
def module(monkeypatch):
    for variable in (*SECRET_VARIABLES, "MINIO_ROOT_USER", "AIRFLOW_ADMIN_USERNAME"):
        monkeypatch.delenv(variable, raising=False)
    return runpy.run_path(str(SCRIPT))


def _read(directory: Path) -> dict[str, str]:
    return {path.name: path.read_text() for path in directory.iterdir()}


def test_generates_every_secret_when_none_is_given(module, tmp_path):
    module["write_secrets"](tmp_path)
    files = _read(tmp_path)
    assert Fernet(files["fernet_key"].encode())  # a valid Fernet key
    assert len(files["jwt_secret"]) >= 64
    assert len({files[name] for name in module["BASE_SECRETS"]}) == len(module["BASE_SECRETS"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary files left"
    assert all(oct(p.stat().st_mode & 0o777) == "0o644" for p in tmp_path.iterdir())


def test_keeps_the_stored_secrets_on_the_next_start(module, tmp_path):
    module["write_secrets"](tmp_path)
    first = _read(tmp_path)
    module["write_secrets"](tmp_path)
    assert _read(tmp_path) == first


def test_a_given_value_replaces_the_stored_one_and_every_derived_file(module, tmp_path, monkeypatch):
    module["write_secrets"](tmp_path)
    monkeypatch.setenv("POSTGRES_PASSWORD", "p@ss/word")
    monkeypatch.setenv("MINIO_ROOT_PASSWORD", "minio-secret")
    monkeypatch.setenv("MINIO_ROOT_USER", "storage")
    module["write_secrets"](tmp_path)
    files = _read(tmp_path)
    assert files["postgres_password"] == "p@ss/word"
    assert files["sql_alchemy_conn"] == "postgresql+psycopg2://airflow:p%40ss%2Fword@postgres:5432/airflow"
    assert files["celery_result_backend"] == "db+postgresql://airflow:p%40ss%2Fword@postgres:5432/airflow"
    assert files["mlflow_backend_store_uri"].endswith("@postgres:5432/mlflow")
    aws = json.loads(files["connections.json"])["aws_default"]
    assert aws == {
        "conn_type": "aws",
        "login": "storage",
        "password": "minio-secret",
        "extra": {"endpoint_url": "http://minio:9000", "region_name": "us-east-1"},
    }
    admin = json.loads(files["simple_auth_manager_passwords.json"])
    assert admin == {"admin": files["airflow_admin_password"]}


def test_runs_as_a_script_with_the_standard_library_only(tmp_path):
    """The job runs in a plain python image: `-I -S` leaves out site-packages and the environment."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(SCRIPT), str(tmp_path / "secrets")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "connections.json" in result.stdout
    assert (tmp_path / "secrets" / "fernet_key").is_file()
