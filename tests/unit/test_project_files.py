"""Static checks of the Astro-style project files: docker-compose.yaml and airflow_settings.yaml.

No Docker needed: the files are read as YAML and checked for what the local stack relies on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_HOME = "/usr/local/airflow"
SUBSTITUTION = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:?[-?][^}]*)?\}$")
SECRET_KEY_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|TOKEN|API_KEY)$", re.IGNORECASE)
URL_USERINFO = re.compile(r"://(?P<user>[^:/@\s]+):(?P<password>[^@\s]+)@")
AIRFLOW_COMPONENTS = {"api-server", "scheduler", "dag-processor", "triggerer"}


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO_ROOT / name).read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load("docker-compose.yaml")


@pytest.fixture(scope="module")
def services(compose) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(services) -> dict[str, dict[str, Any]]:
    """Services that run an Airflow process (the components and the migration job)."""
    found = {}
    for name, service in services.items():
        command = _command(service)
        if "airflow" in command or any("airflow db migrate" in part for part in command):
            found[name] = service
    return found


def test_every_airflow_component_is_present(airflow_services):
    subcommands = set()
    for service in airflow_services.values():
        command = _command(service)
        if command[:1] == ["airflow"] and len(command) > 1:
            subcommands.add(command[1])
    assert subcommands >= AIRFLOW_COMPONENTS
    assert any(
        "airflow db migrate" in " ".join(_command(service)) for service in airflow_services.values()
    ), "no service runs `airflow db migrate`"


def test_published_ports_bind_loopback_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            if isinstance(port, dict):  # long syntax
                assert port.get("host_ip") == "127.0.0.1", f"{name}: {port}"
            else:
                assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port!r} beyond loopback"


def test_airflow_services_mount_dags_and_configure_the_provider(airflow_services):
    assert airflow_services
    for name, service in airflow_services.items():
        targets = {str(v).split(":")[1] for v in service.get("volumes", []) if str(v).startswith("./dags:")}
        assert f"{AIRFLOW_HOME}/dags" in targets, f"{name} does not mount ./dags"
        env = _env(service)
        conn = env.get("AIRFLOW_CONN_MLFLOW_DEFAULT", "")
        assert conn.startswith("mlflow://mlflow:5000"), f"{name}: AIRFLOW_CONN_MLFLOW_DEFAULT={conn!r}"
        assert env.get("AIRFLOW__MLOPS__DATA_ROOT", "").startswith("file:///"), name
        assert env.get("AIRFLOW__CORE__EXECUTOR") == "LocalExecutor", name


def test_data_root_is_a_shared_volume(airflow_services, compose):
    data_path = None
    for service in airflow_services.values():
        data_path = _env(service)["AIRFLOW__MLOPS__DATA_ROOT"].removeprefix("file://")
        mounts = dict(str(v).split(":")[1::-1] for v in service.get("volumes", []))
        assert data_path in mounts, f"the data root {data_path} is not a mounted volume"
        assert mounts[data_path] in compose.get("volumes", {}), f"{mounts[data_path]} is not a named volume"


def test_mlflow_allows_its_service_name_as_host(services):
    command = _command(services["mlflow"])
    assert "--allowed-hosts" in command
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert "mlflow" in allowed
    assert any(host in allowed for host in ("mlflow:5000", "mlflow:*"))


def test_no_literal_secrets(services):
    for name, service in services.items():
        for key, value in _env(service).items():
            if SECRET_KEY_NAME.search(key):
                assert SUBSTITUTION.match(value) or value == "", (
                    f"{name}: {key} holds a literal value; use a ${{VAR:-default}} substitution"
                )
            for match in URL_USERINFO.finditer(value):
                assert SUBSTITUTION.match(match["password"]), f"{name}: {key} embeds a literal password"


def test_airflow_settings_declare_the_mlflow_connection():
    settings = _load("airflow_settings.yaml")
    connections = {c["conn_id"]: c for c in settings["airflow"]["connections"] if c.get("conn_id")}
    assert "mlflow_default" in connections
    mlflow = connections["mlflow_default"]
    assert mlflow["conn_type"] == "mlflow"
    assert mlflow["conn_host"] == "http://mlflow:5000"
    assert not mlflow.get("conn_password"), "airflow_settings.yaml is committed: no secrets in it"
