"""Shared fixtures: an isolated AIRFLOW_HOME, real MLflow and moto S3 servers, Airflow connections.

AIRFLOW_HOME is set for this test process before anything imports airflow, so no test ever reads
or writes the developer's own Airflow. Servers run in their own process groups on free loopback
ports and are stopped by PID at the end of the session.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.support.services import child_env, free_port, start_service, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent

_TEST_HOME = Path(tempfile.mkdtemp(prefix="mlops-tests-"))
os.environ["AIRFLOW_HOME"] = str(_TEST_HOME / "airflow")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO_ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO_ROOT / "plugins")
os.environ["AIRFLOW__MLOPS__DATA_ROOT"] = f"file://{_TEST_HOME / 'data'}"


def pytest_collection_modifyitems(config, items):
    """Every test declares its kind: exactly one of the registered markers unit / integration."""
    unmarked = [
        item.nodeid
        for item in items
        if len({m.name for m in item.iter_markers()} & {"unit", "integration"}) != 1
    ]
    if unmarked:
        raise pytest.UsageError("Tests without exactly one unit/integration marker: " + ", ".join(unmarked))


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def test_home() -> Path:
    """The session's scratch folder (AIRFLOW_HOME lives in ``airflow/`` below it)."""
    return _TEST_HOME


@pytest.fixture(scope="session")
def airflow_env() -> dict[str, str]:
    """The environment for an ``airflow`` subprocess that uses this session's AIRFLOW_HOME."""
    return child_env(PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> Path:
    """A migrated Airflow metadata database (SQLite) in the session's AIRFLOW_HOME."""
    subprocess.run(
        [str(VENV_BIN / "airflow"), "db", "migrate"],
        env=airflow_env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    return Path(os.environ["AIRFLOW_HOME"])


@pytest.fixture
def airflow_connection(monkeypatch):
    """Define an Airflow connection for one test: ``airflow_connection(conn_id, **fields)``.

    Uses the environment-variable secrets backend that Airflow reads everywhere (tasks, hooks,
    CLI); the variable exists only for the duration of the test.
    """

    def define(conn_id: str, **fields) -> str:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))
        return conn_id

    return define


def _start_mlflow(
    name: str, root: Path, port: int, log_dir: Path, *args: str, artifacts: str | None = None, **env: str
):
    """Start ``mlflow server`` (SQLite store, proxied artifacts, local by default) on loopback."""
    argv = [
        str(VENV_BIN / "mlflow"), "server", *args,
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", artifacts or str(root / "artifacts"),
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
    ]  # fmt: skip
    return start_service(
        name,
        argv,
        env=child_env(MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", **env),
        log_dir=log_dir,
        cwd=root,
    )


@pytest.fixture(scope="session")
def mlflow_server(test_home) -> str:
    """A real MLflow tracking server (SQLite backend, local artifacts); yields its URI."""
    port = free_port()
    root = test_home / "mlflow"
    root.mkdir(parents=True, exist_ok=True)
    service = _start_mlflow("mlflow", root, port, test_home / "logs")
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(service, f"{uri}/health", deadline_s=180)
        yield uri
    finally:
        service.stop()


@pytest.fixture(scope="session")
def mlflow_auth_server(test_home) -> tuple[str, str, str]:
    """A real MLflow server with its basic-auth app; yields (uri, admin user, admin password)."""
    port = free_port()
    root = test_home / "mlflow-auth"
    root.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(16)
    config = root / "basic_auth.ini"
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{root / 'basic_auth.db'}\n"
        "admin_username = admin\n"
        f"admin_password = {password}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    config.chmod(0o600)
    service = _start_mlflow(
        "mlflow-auth",
        root,
        port,
        test_home / "logs",
        "--app-name",
        "basic-auth",
        MLFLOW_AUTH_CONFIG_PATH=str(config),
        MLFLOW_FLASK_SERVER_SECRET_KEY=secrets.token_hex(32),
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(service, f"{uri}/health", deadline_s=180)
        yield uri, "admin", password
    finally:
        service.stop()


@pytest.fixture(scope="session")
def moto_s3(test_home) -> str:
    """A moto S3 server on loopback; yields its endpoint URL."""
    port = free_port()
    service = start_service(
        "moto",
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        env=child_env(),
        log_dir=test_home / "logs",
        cwd=test_home,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(service, f"{endpoint}/moto-api/", deadline_s=60)
        yield endpoint
    finally:
        service.stop()


@pytest.fixture(scope="session")
def mlflow_s3_server(test_home, moto_s3) -> tuple[str, str]:
    """A real MLflow server whose proxied artifact store is a bucket on the moto S3 server.

    The S3 endpoint and keys are given to the server process only; clients upload through the
    server. Yields (tracking URI, artifact destination).
    """
    import boto3

    bucket = f"mlflow-artifacts-{free_port()}"
    boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    port = free_port()
    root = test_home / "mlflow-s3"
    root.mkdir(parents=True, exist_ok=True)
    destination = f"s3://{bucket}/mlflow"
    service = _start_mlflow(
        "mlflow-s3",
        root,
        port,
        test_home / "logs",
        artifacts=destination,
        MLFLOW_S3_ENDPOINT_URL=moto_s3,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )
    uri = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(service, f"{uri}/health", deadline_s=180)
        yield uri, destination
    finally:
        service.stop()


@pytest.fixture
def s3_bucket(moto_s3, airflow_connection, request) -> tuple[str, str]:
    """A fresh bucket on the moto server and an ``aws`` connection to it; yields (bucket, conn_id)."""
    import boto3

    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    bucket = f"mlops-{name}-{free_port()}"
    conn_id = airflow_connection(
        "aws_moto",
        conn_type="aws",
        login="testing",
        password="testing",
        extra={"endpoint_url": moto_s3, "region_name": "us-east-1"},
    )
    client = boto3.client(
        "s3",
        endpoint_url=moto_s3,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    return bucket, conn_id
