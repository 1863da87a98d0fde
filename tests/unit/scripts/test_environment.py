"""The servers' environment and Airflow's local settings file, copied from the package at each ``up``."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from mlops_stack import airflow_local_settings
from mlops_stack.environment import LOCAL_SETTINGS, airflow_env, base_env, install_local_settings
from mlops_stack.paths import REPO, Paths

pytestmark = pytest.mark.unit


def test_base_env_puts_the_venv_first_and_bypasses_proxies_for_loopback():
    env = base_env(Path("/venv/bin"), {"PATH": "/usr/bin", "NO_PROXY": "example.org", "VIRTUAL_ENV": "/x"})
    assert env["PATH"] == f"/venv/bin{os.pathsep}/usr/bin"
    assert env["NO_PROXY"] == env["no_proxy"] == "example.org,127.0.0.1,localhost"
    assert "VIRTUAL_ENV" not in env


def test_airflow_env_points_every_component_at_the_state_directory(tmp_path):
    paths = Paths(tmp_path)
    env = airflow_env(paths, Path("/venv/bin"), 18080, 15000)
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}"
    assert env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__API__PORT"] == "18080"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18080/execution/"
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == str(paths.passwords)
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert env["AIRFLOW__MLOPS__DATA_ROOT"] == (tmp_path / "data").as_uri()
    assert json.loads(env["AIRFLOW_CONN_MLFLOW_DEFAULT"]) == {
        "conn_type": "mlflow",
        "host": "127.0.0.1",
        "port": 15000,
    }
    secrets = json.loads(paths.secrets.read_text())
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == secrets["jwt_secret"]
    password = json.loads(paths.passwords.read_text())["admin"]
    assert password not in "".join(env.values())  # only the file's path is passed on


def test_the_local_settings_module_is_copied_into_airflow_home_config(tmp_path):
    paths = Paths(tmp_path)
    target = install_local_settings(paths)
    assert target == tmp_path / "airflow" / "config" / "airflow_local_settings.py"
    assert target.read_bytes() == LOCAL_SETTINGS.read_bytes()
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    # A stale copy is replaced; an identical one is left alone.
    target.write_text("# edited\n")
    install_local_settings(paths)
    assert target.read_bytes() == LOCAL_SETTINGS.read_bytes()
    mtime = target.stat().st_mtime_ns
    install_local_settings(paths)
    assert target.stat().st_mtime_ns == mtime


def test_the_local_settings_module_is_what_airflow_looks_for():
    assert Path(airflow_local_settings.__file__) == LOCAL_SETTINGS
    assert airflow_local_settings.__all__ == ["create_metadata_engine"]
    assert "sklearn.linear_model" in airflow_local_settings.PRELOAD


def test_a_sqlite_savepoint_outside_a_transaction_takes_the_write_lock_first(tmp_path):
    """While another connection holds the write lock, the SAVEPOINT itself waits (here: fails at once)."""
    database = tmp_path / "x.db"
    engine = airflow_local_settings.create_metadata_engine(
        f"sqlite:///{database}", engine_args={}, connect_args={"timeout": 0}
    )
    writer = sqlite3.connect(database, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        with engine.connect() as conn, pytest.raises(sqlite3.OperationalError, match="database is locked"):
            conn.begin_nested()
        writer.rollback()
        with engine.connect() as conn:  # once free, the same works
            conn.begin_nested().commit()
    finally:
        writer.close()
        engine.dispose()
