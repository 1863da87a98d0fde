"""The servers' configuration: their environment variables and Airflow's local settings file."""

from __future__ import annotations

import json
import os
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_stack.credentials import ADMIN_USER, ensure_password, ensure_secrets
from mlops_stack.errors import StackError
from mlops_stack.paths import REPO, make_private_dir
from mlops_stack.ports import HOST

if TYPE_CHECKING:
    from mlops_stack.paths import Paths

LOCAL_SETTINGS = Path(__file__).with_name("airflow_local_settings.py")


def venv_bin() -> Path:
    """The folder holding the ``airflow`` and ``mlflow`` scripts of the interpreter running this."""
    scripts = Path(sysconfig.get_path("scripts"))
    for tool in ("airflow", "mlflow"):
        if not (scripts / tool).exists():
            raise StackError(
                f"{scripts / tool} not found: run this with the project's venv python "
                f"(scripts/run-stack does), not {sys.executable}"
            )
    return scripts


def base_env(bin_dir: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """A copy of ``environ`` (default: this process's) with ``bin_dir`` first on PATH and no proxy for
    the loopback addresses.
    """
    env = dict(os.environ if environ is None else environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")]).rstrip(os.pathsep)
    no_proxy = [p for p in env.get("NO_PROXY", env.get("no_proxy", "")).split(",") if p]
    for host in (HOST, "localhost"):
        if host not in no_proxy:
            no_proxy.append(host)
    env["NO_PROXY"] = env["no_proxy"] = ",".join(no_proxy)
    env.pop("VIRTUAL_ENV", None)
    return env


def mlflow_env(bin_dir: Path) -> dict[str, str]:
    """The MLflow server's environment (no background job runners: 2.7 GB -> 0.5 GB)."""
    env = base_env(bin_dir)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    return env


def airflow_settings(
    paths: Paths, airflow_port: int, mlflow_port: int, keys: dict[str, str]
) -> dict[str, str]:
    """The Airflow configuration every component and ``airflow`` command of the stack gets."""
    return {
        "AIRFLOW_HOME": str(paths.airflow_home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{paths.airflow_home / 'airflow.db'}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(paths.passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(airflow_port),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{airflow_port}/execution/",
        "AIRFLOW__CORE__PARALLELISM": "4",
        # How often the scheduler activates the assets that newly parsed DAGs declare (such as
        # mlops.<dataset>.validated) and orphans unreferenced ones; the default 60 s leaves a new
        # asset invisible to GET /api/v2/assets for up to a minute after its DAG was parsed.
        "AIRFLOW__SCHEDULER__PARSING_CLEANUP_INTERVAL": "10",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__MLOPS__DATA_ROOT": paths.data.as_uri(),
        "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps({"conn_type": "mlflow", "host": HOST, "port": mlflow_port}),
    }


def airflow_env(paths: Paths, bin_dir: Path, airflow_port: int, mlflow_port: int) -> dict[str, str]:
    """The environment of every Airflow component and of the ``airflow`` command."""
    keys = ensure_secrets(paths)
    ensure_password(paths)
    env = base_env(bin_dir)
    env.update(airflow_settings(paths, airflow_port, mlflow_port, keys))
    return env


def install_local_settings(paths: Paths) -> Path:
    """Copy ``airflow_local_settings.py`` into AIRFLOW_HOME/config (on every component's sys.path).

    Replaced atomically, and only when its content changed; returns the installed file.
    """
    folder = paths.airflow_home / "config"
    make_private_dir(folder)
    target = folder / LOCAL_SETTINGS.name
    source = LOCAL_SETTINGS.read_bytes()
    if not target.exists() or target.read_bytes() != source:
        tmp = folder / f".{LOCAL_SETTINGS.name}.{os.getpid()}.tmp"
        shutil.copyfile(LOCAL_SETTINGS, tmp)
        os.replace(tmp, target)
    return target
