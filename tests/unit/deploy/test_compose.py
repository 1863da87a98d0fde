"""Offline validation of docker-compose.yaml and docker-compose.override.yml (no Docker engine).

Both files are checked against the Compose Specification JSON schema (tests/data/compose-spec.json)
and for what the stack relies on: every referenced file, volume and variable exists, no secret is
written in them, every long-running service has a health check and every dependency a condition,
ports bind loopback only. test_compose_cli.py runs `docker-compose config` on them as well.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft201909Validator

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = REPO_ROOT / "tests" / "data"
COMPOSE = REPO_ROOT / "docker-compose.yaml"
OVERRIDE = REPO_ROOT / "docker-compose.override.yml"
ASTRO_BASE = DATA / "astro-compose-base.yaml"
ENV_EXAMPLE = REPO_ROOT / ".env.example"

# ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}; `$$` is a literal dollar.
VARIABLE = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?])?(?P<default>[^}]*)\}")
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|TOKEN|API_KEY)$", re.IGNORECASE)
URL_USERINFO = re.compile(r"://[^:/@\s]+:(?P<password>[^@\s]+)@")
ASTRO_AIRFLOW_SERVICES = ("scheduler", "dag-processor", "api-server", "triggerer")
SECRETS_MOUNT = "/opt/mlops-secrets"


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _command(service: dict[str, Any]) -> list[str]:
    command = service.get("command") or []
    return command.split() if isinstance(command, str) else [str(part) for part in command]


def _is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def _long_volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume entry, short syntax only (what these files use)."""
    pairs = []
    for entry in service.get("volumes", []):
        source, target = str(entry).split(":")[:2]
        pairs.append((source, target))
    return pairs


@pytest.fixture(scope="module", params=[COMPOSE, OVERRIDE], ids=["compose", "override"])
def compose_file(request) -> tuple[Path, dict[str, Any]]:
    return request.param, _load(request.param)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _load(COMPOSE)


@pytest.fixture(scope="module")
def override() -> dict[str, Any]:
    return _load(OVERRIDE)


def test_files_follow_the_compose_specification_schema(compose_file):
    path, document = compose_file
    schema = json.loads((DATA / "compose-spec.json").read_text())
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in Draft201909Validator(schema).iter_errors(document)
    ]
    assert errors == [], f"{path.name}: {errors}"


def test_the_schema_rejects_a_misspelt_key():
    """The check above can fail: the schema forbids unknown service keys."""
    schema = json.loads((DATA / "compose-spec.json").read_text())
    broken = {"services": {"mlflow": {"image": "x", "helthcheck": {}}}}
    assert list(Draft201909Validator(schema).iter_errors(broken))


def test_every_referenced_file_exists(compose_file):
    path, document = compose_file
    for name, service in document["services"].items():
        build = service.get("build")
        if build:
            context = REPO_ROOT / (build if isinstance(build, str) else build.get("context", "."))
            assert context.is_dir(), f"{path.name}: {name} builds from missing {context}"
            dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
            assert (context / dockerfile).is_file(), f"{path.name}: {name} has no {dockerfile}"
        for source, _ in _long_volumes(service):
            if source.startswith("."):
                assert (REPO_ROOT / source).exists(), f"{path.name}: {name} mounts missing {source}"


def test_scripts_run_by_the_services_exist(compose_file):
    """A command path under a bind mount (e.g. /opt/mlops-deploy/...) names a file of the repository."""
    path, document = compose_file
    for name, service in document["services"].items():
        mounts = {target: source for source, target in _long_volumes(service) if source.startswith(".")}
        for part in _command(service):
            for target, source in mounts.items():
                if part.startswith(target + "/"):
                    local = REPO_ROOT / source / part.removeprefix(target + "/")
                    assert local.is_file(), f"{path.name}: {name} runs missing {local}"


def test_every_named_volume_is_declared(compose_file):
    path, document = compose_file
    declared = set(document.get("volumes") or {})
    for name, service in document["services"].items():
        for source, _ in _long_volumes(service):
            if not source.startswith((".", "/")):
                assert source in declared, f"{path.name}: {name} uses undeclared volume {source}"


def test_every_variable_has_a_default_or_is_documented():
    documented = {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    for path in (COMPOSE, OVERRIDE):
        for match in VARIABLE.finditer(path.read_text()):
            has_default = match["op"] in (":-", "-")
            assert has_default or match["name"] in documented, f"{path.name}: ${{{match['name']}}}"
            assert match["name"] in documented, f"{path.name}: {match['name']} is missing from .env.example"


def test_env_example_documents_only_variables_the_files_use():
    used = {m["name"] for path in (COMPOSE, OVERRIDE) for m in VARIABLE.finditer(path.read_text())}
    documented = [
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    ]
    assert sorted(set(documented) - used) == []
    assert all(
        line.split("=", 1)[1] == ""
        for line in ENV_EXAMPLE.read_text().splitlines()
        if SECRET_NAME.search(line.split("=", 1)[0]) and not line.startswith("#")
    ), "a secret in .env.example"


def test_no_secret_is_written_in_the_files(compose_file):
    path, document = compose_file
    for match in VARIABLE.finditer(path.read_text()):
        if SECRET_NAME.search(match["name"]):
            assert match["default"] == "", f"{path.name}: {match['name']} has a committed default"
    for name, service in document["services"].items():
        for key, value in _env(service).items():
            if SECRET_NAME.search(key):
                assert VARIABLE.fullmatch(value) and value.endswith(":-}"), (
                    f"{path.name}: {name} {key}={value!r}"
                )
            assert not URL_USERINFO.search(value), f"{path.name}: {name} {key} embeds a password"


def test_long_running_services_have_health_checks(compose_file):
    path, document = compose_file
    for name, service in document["services"].items():
        if service.get("image") or service.get("build"):  # not the Astro services the override extends
            assert _is_one_shot(service) or "healthcheck" in service, f"{path.name}: {name}"


def test_every_dependency_waits_for_health_or_completion(compose_file):
    path, document = compose_file
    services = document["services"]
    for name, service in services.items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{path.name}: {name} depends_on without conditions"
        for dependency, spec in depends_on.items():
            expected = (
                "service_completed_successfully" if _is_one_shot(services[dependency]) else "service_healthy"
            )
            assert spec == {"condition": expected}, f"{path.name}: {name} -> {dependency}: {spec}"


def test_only_the_secrets_job_starts_without_dependencies(compose):
    services = compose["services"]
    independent = {name for name, s in services.items() if not s.get("depends_on") and not s.get("profiles")}
    assert independent == {"mlops-secrets"}


def test_published_ports_bind_loopback_only(compose_file):
    path, document = compose_file
    for name, service in document["services"].items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{path.name}: {name} publishes {port!r}"


def test_airflow_stack_has_the_official_shape(compose):
    assert "x-airflow-common" in compose
    services = compose["services"]
    commands = " | ".join(" ".join(_command(service)) for service in services.values())
    for component in (
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "celery worker",
        "celery flower",
    ):
        assert f"airflow {component}" in commands, component
    init = " ".join(_command(services["airflow-init"]))
    assert "airflow db migrate" in init
    assert "airflow pools set mlops_registry 1" in init


def test_celery_profile_scales_out_and_local_executor_is_the_default(compose):
    services = compose["services"]
    celery = {name for name, s in services.items() if "celery" in (s.get("profiles") or [])}
    assert celery == {"redis", "airflow-worker", "flower"}
    for name, service in services.items():
        if name not in celery:
            assert not set(service.get("depends_on") or {}) & celery, f"{name} needs the celery profile"
    env = _env(services["scheduler"])
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"


def test_airflow_services_mount_the_project_folders(compose):
    airflow = {
        name: s
        for name, s in compose["services"].items()
        if s.get("image") == compose["x-airflow-common"]["image"]
    }
    assert set(airflow) >= {
        "airflow-init",
        "api-server",
        "scheduler",
        "dag-processor",
        "triggerer",
        "airflow-worker",
    }
    for name, service in airflow.items():
        mounts = dict(_long_volumes(service))
        for folder in ("dags", "include", "plugins"):
            assert mounts.get(f"./{folder}") == f"/usr/local/airflow/{folder}", (
                f"{name} does not mount ./{folder}"
            )


def test_airflow_reads_its_secrets_from_the_secrets_volume(compose):
    env = compose["x-airflow-common"]["environment"]
    for option in (
        "DATABASE__SQL_ALCHEMY_CONN",
        "CORE__FERNET_KEY",
        "API__SECRET_KEY",
        "API_AUTH__JWT_SECRET",
    ):
        assert env[f"AIRFLOW__{option}_CMD"].startswith(f"cat {SECRETS_MOUNT}/"), option
        assert f"AIRFLOW__{option}" not in env
    assert f"mlops-secrets:{SECRETS_MOUNT}:ro" in compose["x-airflow-common"]["volumes"]
    api_server = compose["services"]["api-server"]
    passwords = _env(api_server)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert not passwords.startswith(SECRETS_MOUNT), "the auth manager writes its passwords file"
    install = f"install -m 600 {SECRETS_MOUNT}/simple_auth_manager_passwords.json"
    assert _command(api_server)[-1].startswith(install)


def test_provider_stores_data_on_minio_and_tracks_in_mlflow(compose):
    env = compose["x-airflow-common"]["environment"]
    assert env["AIRFLOW__MLOPS__DATA_ROOT"].startswith("s3://")
    assert env["AIRFLOW__MLOPS__STORAGE_CONN_ID"] == "aws_default"
    assert (
        env["AIRFLOW_CONN_MLFLOW_DEFAULT"]
        == "mlflow://mlflow:5000?ui_url=http%3A%2F%2Flocalhost%3A${MLFLOW_PORT:-5000}"
    )
    assert env["AIRFLOW__SECRETS__BACKEND"].endswith("LocalFilesystemBackend")
    assert json.loads(env["AIRFLOW__SECRETS__BACKEND_KWARGS"]) == {
        "connections_file_path": f"{SECRETS_MOUNT}/connections.json"
    }


@pytest.mark.parametrize("path", [COMPOSE, OVERRIDE], ids=["compose", "override"])
def test_mlflow_runs_on_postgres_with_artifacts_in_minio(path):
    services = _load(path)["services"]
    mlflow = services["mlflow"]
    command = _command(mlflow)
    assert command[command.index("--artifacts-destination") + 1].startswith("s3://")
    assert "--serve-artifacts" in command
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    assert {"mlflow", "mlflow:*"} <= set(allowed)
    assert _env(mlflow)["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
    start = (REPO_ROOT / mlflow["build"]["context"] / "start-mlflow.sh").read_text()
    assert 'exec mlflow server --backend-store-uri "$(cat "$secrets/mlflow_backend_store_uri")"' in start
    buckets = " ".join(_command(services["minio-buckets"]))
    assert "mc mb --ignore-existing" in buckets
    assert services["minio-buckets"]["image"].startswith("minio/mc:")


def test_postgres_creates_the_mlflow_database(compose):
    postgres = compose["services"]["postgres"]
    mounts = dict(_long_volumes(postgres))
    script = "./deploy/postgres/create-mlflow-db.sh"
    assert mounts[script].startswith("/docker-entrypoint-initdb.d/")
    assert "CREATE DATABASE mlflow OWNER mlflow" in (REPO_ROOT / script).read_text()
    assert _env(postgres)["POSTGRES_PASSWORD_FILE"] == f"{SECRETS_MOUNT}/postgres_password"


def test_override_extends_the_services_astro_generates(override):
    services = override["services"]
    for name in ASTRO_AIRFLOW_SERVICES:
        env = _env(services[name])
        assert env["AIRFLOW__MLOPS__DATA_ROOT"].startswith("s3://"), name
        assert env["AIRFLOW__MLOPS__STORAGE_CONN_ID"] == "aws_default", name
        assert f"mlops-secrets:{SECRETS_MOUNT}:ro" in services[name]["volumes"], name
        assert services[name]["depends_on"]["mlflow"] == {"condition": "service_healthy"}
    postgres = dict(_long_volumes(services["postgres"]))
    assert postgres["./deploy/postgres/create-mlflow-db.sh"].startswith("/docker-entrypoint-initdb.d/")
    assert "environment" not in services["postgres"], "Astro sets the Postgres user and password"
    for name, service in services.items():
        assert service.get("networks") == ["airflow"], f"{name} is not on Astro's network"


def test_override_settings_are_those_of_the_compose_file(compose, override):
    """Compose merges the override into docker-compose.yaml too: it must change nothing there."""
    services = compose["services"]
    for name, service in override["services"].items():
        assert name in services, f"{name} is not a service of docker-compose.yaml"
        ours = services[name]
        for key, value in _env(service).items():
            assert _env(ours)[key] == value, f"{name}: {key}"
        assert set(service.get("volumes", [])) <= set(ours.get("volumes", [])), name
        assert service.get("depends_on", {}).items() <= ours.get("depends_on", {}).items(), name
        if "healthcheck" in service:
            assert service["healthcheck"] == ours["healthcheck"], name


def test_airflow_settings_agree_with_the_override(override):
    settings = _load(REPO_ROOT / "airflow_settings.yaml")["airflow"]
    connections = {c["conn_id"]: c for c in settings["connections"]}
    mlflow = connections["mlflow_default"]
    assert (mlflow["conn_type"], mlflow["conn_host"]) == ("mlflow", "http://mlflow:5000")
    service = override["services"]["mlflow"]
    command = _command(service)
    assert command[command.index("--port") + 1] == "5000"
    assert mlflow["conn_extra"] == {"ui_url": "http://localhost:5000"}
    assert "127.0.0.1:${MLFLOW_PORT:-5000}:5000" in service["ports"]
    assert not any(c.get("conn_password") for c in connections.values()), "no secrets in a committed file"
    assert "aws_default" not in connections, "aws_default comes from the secrets volume"
    assert [p["pool_name"] for p in settings["pools"]] == ["mlops_registry"]


@pytest.mark.parametrize("name", ["mlops-secrets", "minio", "minio-buckets", "mlflow"])
def test_the_override_runs_the_same_services_as_the_compose_file(compose, override, name):
    """Astro and plain compose start MinIO, the bucket job, MLflow and the secrets job alike."""
    assert override["services"][name] == compose["services"][name]


def test_the_image_build_context_keeps_what_the_image_needs():
    """.dockerignore starts as Astro's template and leaves in every file the image uses."""
    ignored = [
        line for line in (REPO_ROOT / ".dockerignore").read_text().splitlines() if line and line[0] != "#"
    ]
    assert ignored[:8] == [
        "astro",
        ".git",
        ".env",
        "airflow_settings.yaml",
        "logs/",
        ".venv",
        "airflow.db",
        "airflow.cfg",
    ]
    needed = {
        "dags",
        "include",
        "plugins",
        "src",
        ".astro",
        "deploy",
        "pyproject.toml",
        "README.md",
        "LICENSE",
    }
    needed |= {"constraints.txt", "requirements.txt", "packages.txt"}
    for name in needed:
        assert (REPO_ROOT / name).exists(), name
        assert not any(name == pattern.rstrip("/") for pattern in ignored), f".dockerignore drops {name}"
