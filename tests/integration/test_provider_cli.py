"""The provider as Airflow's own CLI sees it, in a subprocess with the session's AIRFLOW_HOME."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.integration


def _airflow_json(env, *args: str):
    result = subprocess.run(
        [str(VENV_BIN / "airflow"), *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    # Airflow may log a line or two before the JSON document.
    text = result.stdout
    return json.loads(text[min(i for i in (text.find("["), text.find("{")) if i >= 0) :])


def test_providers_list_shows_the_provider(airflow_env):
    rows = _airflow_json(airflow_env, "providers", "list")
    ours = [row for row in rows if row["package_name"] == "airflow-provider-mlops"]
    assert len(ours) == 1
    from mlops_provider import __version__

    assert ours[0]["version"] == __version__


def test_providers_get_and_hooks_show_the_mlflow_connection_type(airflow_env):
    (info,) = _airflow_json(airflow_env, "providers", "get", "airflow-provider-mlops")
    assert info["Provider"] == "airflow-provider-mlops"
    hooks = _airflow_json(airflow_env, "providers", "hooks")
    mlflow = [row for row in hooks if row["connection_type"] == "mlflow"]
    assert mlflow and mlflow[0]["class"] == "mlops_provider.hooks.mlflow.MLflowHook"
    assert mlflow[0]["package_name"] == "airflow-provider-mlops"
    assert mlflow[0]["hook_name"] == "MLflow"


def test_config_section_is_known_to_airflow(airflow_env):
    value = subprocess.run(
        [str(VENV_BIN / "airflow"), "config", "get-value", "mlops", "mlflow_conn_id"],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert value.strip().splitlines()[-1] == "mlflow_default"
    listing = subprocess.run(
        [str(VENV_BIN / "airflow"), "config", "list", "--section", "mlops", "--include-descriptions"],
        env=airflow_env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "[mlops]" in listing
    assert "data_root" in listing and "storage_conn_id" in listing
