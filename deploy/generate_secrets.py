"""Write the secrets of the local stack into a directory (a named volume), generating missing ones.

Run by the one-shot ``mlops-secrets`` service of ``docker-compose.yaml`` and
``docker-compose.override.yml`` before any other service starts. Standard library only, so it runs in
a plain ``python`` image as well as in the Airflow image.

Each base secret comes from its environment variable when that is set and non-empty (a ``.env``
file next to the compose file), else from the file a previous run wrote, else it is generated.
The derived files (connection URIs, the Airflow connections file, the login file) are rewritten
on every run from the base secrets, so they always agree with them.

Usage: ``python generate_secrets.py [DIRECTORY]`` (default ``/opt/mlops-secrets``).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

DEFAULT_DIRECTORY = "/opt/mlops-secrets"

# file name -> (environment variable, generator)
BASE_SECRETS = {
    "fernet_key": ("AIRFLOW_FERNET_KEY", lambda: base64.urlsafe_b64encode(os.urandom(32)).decode()),
    "jwt_secret": ("AIRFLOW_JWT_SECRET", lambda: secrets.token_urlsafe(64)),
    "api_secret_key": ("AIRFLOW_API_SECRET_KEY", lambda: secrets.token_urlsafe(32)),
    "airflow_admin_password": ("AIRFLOW_ADMIN_PASSWORD", lambda: secrets.token_urlsafe(16)),
    "postgres_password": ("POSTGRES_PASSWORD", lambda: secrets.token_urlsafe(24)),
    "mlflow_db_password": ("MLFLOW_DB_PASSWORD", lambda: secrets.token_urlsafe(24)),
    "minio_root_password": ("MINIO_ROOT_PASSWORD", lambda: secrets.token_urlsafe(24)),
}


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def resolve_base_secrets(directory: Path) -> dict[str, str]:
    """Return every base secret: from the environment, else the directory, else newly generated."""
    values = {}
    for file_name, (variable, generate) in BASE_SECRETS.items():
        path = directory / file_name
        given = os.environ.get(variable, "").strip()
        if given:
            values[file_name] = given
        elif path.is_file() and path.read_text().strip():
            values[file_name] = path.read_text().strip()
        else:
            values[file_name] = generate()
    return values


def derived_files(base: dict[str, str]) -> dict[str, str]:
    """Connection URIs and files built from the base secrets and the (non-secret) settings."""
    minio_user = _setting("MINIO_ROOT_USER", "mlops")
    airflow_db = f"airflow:{quote(base['postgres_password'], safe='')}@postgres:5432/airflow"
    mlflow_db = f"mlflow:{quote(base['mlflow_db_password'], safe='')}@postgres:5432/mlflow"
    connections = {
        "aws_default": {
            "conn_type": "aws",
            "login": minio_user,
            "password": base["minio_root_password"],
            "extra": {
                "endpoint_url": _setting("MINIO_ENDPOINT_URL", "http://minio:9000"),
                "region_name": "us-east-1",
            },
        }
    }
    admin = _setting("AIRFLOW_ADMIN_USERNAME", "admin")
    return {
        "sql_alchemy_conn": f"postgresql+psycopg2://{airflow_db}",
        "celery_result_backend": f"db+postgresql://{airflow_db}",
        "mlflow_backend_store_uri": f"postgresql://{mlflow_db}",
        "connections.json": json.dumps(connections, indent=2),
        "simple_auth_manager_passwords.json": json.dumps({admin: base["airflow_admin_password"]}),
    }


def write_secrets(directory: Path) -> list[str]:
    """Write the base and derived secrets into ``directory``; return the file names written."""
    directory.mkdir(parents=True, exist_ok=True)
    base = resolve_base_secrets(directory)
    files = {**base, **derived_files(base)}
    for file_name, content in files.items():
        path = directory / file_name
        tmp = path.with_name(f".{file_name}.tmp")
        # Readable by the other containers' users (postgres, minio, astro); the volume is mounted
        # only into this stack's services.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        tmp.replace(path)
    return sorted(files)


def main(argv: list[str]) -> int:
    directory = Path(argv[1] if len(argv) > 1 else DEFAULT_DIRECTORY)
    written = write_secrets(directory)
    print(f"Secrets in {directory}: {', '.join(written)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
