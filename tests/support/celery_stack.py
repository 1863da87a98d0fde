"""A scale-out deployment for tests: Airflow with the CeleryExecutor on PostgreSQL and Redis.

What it starts, each process in a session of its own (stopped by process group at the end):

* a moto S3 server on loopback: the only storage the workers share (``s3://`` data root through an
  Airflow ``aws`` connection);
* MLflow with its backend store in a PostgreSQL database of its own and ``--serve-artifacts`` into the
  bucket, so that clients send artifacts over HTTP and never see a path;
* Airflow's api-server, scheduler, dag-processor and triggerer on a PostgreSQL metadata database, with
  Redis as Celery's broker and a Celery queue of the test's own;
* two Celery workers (``worker1@celery-scale-out``, ``worker2@...``), each with its own empty working
  directory, HOME and AIRFLOW_HOME (their task logs stay there).

PostgreSQL (127.0.0.1:5432, trust auth, user ``postgres``) and Redis (127.0.0.1:6379) must answer:
:func:`require_services` fails the test with a clear message otherwise (``.ci/run`` starts them).
The databases get unique names and are dropped at :meth:`CeleryStack.stop`.

The REST helpers (DAG runs, task instances, XComs, backfills) are the live stack's
(:class:`~tests.support.live_stack.LiveStack`), whose client is the stack's own.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import socket
import sysconfig
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from mlops_stack.credentials import ADMIN_USER
from mlops_stack.environment import airflow_settings
from mlops_stack.health import airflow_healthy
from mlops_stack.paths import Paths
from mlops_stack.rest import AirflowClient

from tests.support.live_stack import LiveStack, clean_env, tail, wait_for
from tests.support.services import Service, free_port, start_service, wait_until_healthy

if TYPE_CHECKING:
    from collections.abc import Iterator

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
BIN = Path(sysconfig.get_path("scripts"))
WORKERS = ("worker1", "worker2")
WORKER_HOST = "celery-scale-out"
S3_KEYS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
STORAGE_CONN_ID = "aws_scale_out"
REGISTRY_POOL = "mlops_registry"  # = mlops_provider.operators.registry.REGISTRY_POOL (one slot)
MIGRATE_DEADLINE = 240.0
SERVER_DEADLINE = 240.0
SERVICES_HINT = (
    "the CeleryExecutor profile needs PostgreSQL on 127.0.0.1:5432 (trust auth, user postgres) and Redis "
    "on 127.0.0.1:6379; .ci/run installs and starts Debian's postgresql and redis-server when none answers"
)


# ------------------------------------------------------------------------------ PostgreSQL and Redis


def _pg_connect(dbname: str = "postgres"):
    import psycopg2

    conn = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, connect_timeout=5)
    conn.autocommit = True
    return conn


def redis_answers() -> str | None:
    """None if Redis answers PING with PONG, else what went wrong."""
    try:
        with socket.create_connection((REDIS_HOST, REDIS_PORT), timeout=5) as sock:
            sock.sendall(b"PING\r\n")
            answer = sock.recv(64)
    except OSError as exc:
        return f"Redis at {REDIS_HOST}:{REDIS_PORT}: {exc}"
    return None if answer.startswith(b"+PONG") else f"Redis at {REDIS_HOST}:{REDIS_PORT} answered {answer!r}"


def missing_libraries() -> list[str]:
    """What the venv lacks for Airflow on PostgreSQL with Celery (empty when all is there).

    Airflow's async metadata engine on PostgreSQL needs asyncpg; the Celery provider imports
    ``celery.backends.database.retry``, which Celery 5.7 removed.
    """
    import importlib.util

    missing = [
        f"{name} (dev group)" for name in ("asyncpg", "psycopg2") if importlib.util.find_spec(name) is None
    ]
    try:
        from celery.backends.database import retry  # noqa: F401
    except ImportError:
        missing.append("celery<5.7 (the Celery provider imports celery.backends.database.retry)")
    return missing


def require_services() -> None:
    """Fail the test (never skip) unless the libraries are there and PostgreSQL and Redis answer."""
    if libraries := missing_libraries():
        pytest.fail("the CeleryExecutor profile needs " + ", ".join(libraries), pytrace=False)
    problems = []
    try:
        _pg_connect().close()
    except Exception as exc:
        problems.append(f"PostgreSQL at {PG_HOST}:{PG_PORT} as {PG_USER}: {str(exc).strip()}")
    if (redis := redis_answers()) is not None:
        problems.append(redis)
    if problems:
        pytest.fail(f"{SERVICES_HINT}. Not answering: " + "; ".join(problems), pytrace=False)


@contextlib.contextmanager
def scratch_databases(*names: str) -> Iterator[dict[str, str]]:
    """Create the PostgreSQL databases ``names``; yield name -> SQLAlchemy URL; drop them at the end.

    The URLs name psycopg2 (SQLAlchemy 2.1 takes a bare ``postgresql://`` for psycopg 3).
    """
    conn = _pg_connect()
    try:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f'CREATE DATABASE "{name}"')
        yield {name: f"postgresql+psycopg2://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}" for name in names}
    finally:
        with conn.cursor() as cur:
            for name in names:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


# ------------------------------------------------------------------------------------------ the stack


class CeleryStack(LiveStack):
    """The running deployment: the live stack's REST helpers, plus where each worker keeps its files.

    Build it with :func:`celery_stack`, which starts and always stops it.
    """

    def __init__(self, root: Path, airflow_url: str, password: str, mlflow_url: str, bucket: str) -> None:
        AirflowClient.__init__(self, airflow_url, ADMIN_USER, password, timeout=30)
        self.root = root
        self.bucket = bucket
        self.s3_endpoint = ""
        self.services: list[Service] = []
        self.state = {"urls": {"airflow": airflow_url, "mlflow": mlflow_url}}
        self.started = time.monotonic()
        self.boot_seconds = 0.0

    # -- where things are -----------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.root

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of the scheduler, api-server, dag-processor and triggerer."""
        return self.root / "airflow"

    @property
    def data_root(self) -> str:
        return f"s3://{self.bucket}/mlops"

    def s3_client(self):
        """A boto3 client to the stack's moto server (to land files and look at objects)."""
        import boto3

        return boto3.client("s3", endpoint_url=self.s3_endpoint, region_name="us-east-1", **_boto_keys())

    def worker_home(self, name: str) -> Path:
        """The worker's working directory and HOME (its AIRFLOW_HOME is ``airflow`` inside)."""
        return self.root / name

    def worker_task_logs(self, name: str) -> list[Path]:
        """Task log files the worker ``name`` wrote in its own AIRFLOW_HOME (one per try)."""
        return sorted((self.worker_home(name) / "airflow" / "logs").glob("dag_id=*/**/*.log"))

    # -- overrides of the live stack's process handling -----------------------------------------

    def check_running(self) -> None:
        """Fail at once if a server or worker exited."""
        for service in self.services:
            if service.process.poll() is not None:
                pytest.fail(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")

    def task_logs(self, dag_id: str | None = None, run_id: str | None = None) -> list[Path]:
        pattern = f"dag_id={dag_id or '*'}/run_id={run_id or '*'}/task_id=*/**/*.log"
        found = [p for w in WORKERS for p in (self.worker_home(w) / "airflow" / "logs").glob(pattern)]
        return sorted(found, key=lambda p: p.stat().st_mtime)

    def dump_logs(self) -> None:
        for service in self.services:
            print("\n" + tail(service.log_path))

    def stop(self, deadline: float = 60.0, *, dump_logs: bool = False) -> int | None:
        """Stop every process by process group (workers first, so that no task is cut off mid-way)."""
        if dump_logs:
            self.dump_logs()
        for service in reversed(self.services):
            service.stop(timeout=deadline / 3)
        return 0


def _airflow_settings(root: Path, urls: dict[str, str], queue: str, ports: dict[str, int]) -> dict[str, str]:
    """The Airflow configuration every component and worker gets (AIRFLOW_HOME is set per process).

    The local stack's settings (auth, API, DAGs, MLflow connection), moved to PostgreSQL, Celery on
    Redis and an ``s3://`` data root.
    """
    from cryptography.fernet import Fernet

    keys = {"jwt_secret": secrets.token_urlsafe(64), "fernet_key": Fernet.generate_key().decode()}
    settings = airflow_settings(Paths(root), ports["airflow"], ports["mlflow"], keys)
    settings.pop("AIRFLOW_HOME")
    storage = {"endpoint_url": urls["s3"], "region_name": S3_KEYS["AWS_DEFAULT_REGION"]}
    settings.update(
        {
            "PATH": f"{BIN}:{clean_env().get('PATH', '')}",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": urls["airflow"],
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + urls["airflow"],
            "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,  # a queue of this test's own on the shared Redis
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__PARALLELISM": "8",
            "AIRFLOW__MLOPS__DATA_ROOT": f"s3://{urls['bucket']}/mlops",
            "AIRFLOW__MLOPS__STORAGE_CONN_ID": STORAGE_CONN_ID,
            f"AIRFLOW_CONN_{STORAGE_CONN_ID.upper()}": json.dumps(
                {"conn_type": "aws", "login": "testing", "password": "testing", "extra": storage}
            ),
        }
    )
    return settings


def _wait_exit(service: Service, deadline: float) -> None:
    """Wait for a one-off command to exit 0; fail with its log otherwise."""
    wait_for(f"{service.name} to finish", lambda: service.process.poll() is not None, deadline)
    if service.process.returncode != 0:
        pytest.fail(f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}")


@contextlib.contextmanager
def celery_stack(root: Path) -> Iterator[CeleryStack]:
    """Start the whole deployment under ``root`` (see the module docstring); stop and clean up at the end."""
    require_services()
    tag = uuid.uuid4().hex[:10]
    logs = root / "logs"
    root.mkdir(parents=True, exist_ok=True)
    ports = {"airflow": free_port(), "mlflow": free_port(), "s3": free_port()}
    password = secrets.token_urlsafe(16)
    (root / "passwords.json").write_text(json.dumps({ADMIN_USER: password}))
    bucket, queue = f"scale-out-{tag}", f"scale_out_{tag}"  # a bucket and a Celery queue of its own
    with scratch_databases(f"airflow_{tag}", f"mlflow_{tag}") as dbs:
        stack = CeleryStack(
            root,
            f"http://127.0.0.1:{ports['airflow']}",
            password,
            f"http://127.0.0.1:{ports['mlflow']}",
            bucket,
        )
        failed = True
        try:
            s3 = stack.s3_endpoint = f"http://127.0.0.1:{ports['s3']}"
            moto = start_service(
                "moto",
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(ports["s3"])],
                env=clean_env(),
                log_dir=logs,
                cwd=root,
            )
            stack.services.append(moto)
            wait_until_healthy(moto, f"{s3}/moto-api/", 60)
            stack.s3_client().create_bucket(Bucket=bucket)
            mlflow_dir = root / "mlflow"
            mlflow_dir.mkdir()
            mlflow = start_service(
                "mlflow",
                [
                    str(BIN / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    dbs[f"mlflow_{tag}"],
                    "--serve-artifacts",
                    "--artifacts-destination",
                    f"s3://{bucket}/mlflow-artifacts",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(ports["mlflow"]),
                    "--workers",
                    "1",
                ],
                env=clean_env(
                    {**S3_KEYS, "MLFLOW_S3_ENDPOINT_URL": s3, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
                ),
                log_dir=logs,
                cwd=mlflow_dir,
            )
            stack.services.append(mlflow)
            urls = {"airflow": dbs[f"airflow_{tag}"], "bucket": bucket, "s3": s3}
            settings = _airflow_settings(root, urls, queue, ports)
            central = clean_env({**settings, "AIRFLOW_HOME": str(stack.airflow_home)})
            stack.airflow_home.mkdir()
            airflow = str(BIN / "airflow")
            migrate = start_service(
                "airflow-db-migrate",
                ["/bin/sh", "-c", f'"$0" db migrate && "$0" pools set {REGISTRY_POOL} 1 registry', airflow],
                env=central,
                log_dir=logs,
                cwd=stack.airflow_home,
            )
            _wait_exit(migrate, MIGRATE_DEADLINE)
            for name, argv in (
                ("airflow-api-server", ["api-server"]),
                ("airflow-scheduler", ["scheduler", "--skip-serve-logs"]),
                ("airflow-dag-processor", ["dag-processor"]),
                ("airflow-triggerer", ["triggerer", "--skip-serve-logs"]),
            ):
                stack.services.append(
                    start_service(name, [airflow, *argv], env=central, log_dir=logs, cwd=stack.airflow_home)
                )
            for name in WORKERS:
                home = stack.worker_home(name)
                home.mkdir()  # empty: nothing but what the worker writes itself
                env = clean_env(
                    {
                        **settings,
                        "HOME": str(home),
                        "AIRFLOW_HOME": str(home / "airflow"),
                        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                    }
                )
                for key in S3_KEYS:  # the workers reach S3 through the aws connection only
                    env.pop(key, None)
                argv = [airflow, "celery", "worker", "--celery-hostname", f"{name}@{WORKER_HOST}"]
                argv += ["--queues", queue, "--concurrency", "2"]
                stack.services.append(start_service(name, argv, env=env, log_dir=logs, cwd=home))
            wait_until_healthy(mlflow, f"{stack.mlflow_url}/health", SERVER_DEADLINE)
            wait_for(
                "Airflow's components to report healthy",
                lambda: airflow_healthy(ports["airflow"]),
                SERVER_DEADLINE,
                stack.check_running,
                1.0,
            )
            for name in WORKERS:
                wait_for(
                    f"{name} to join the cluster",
                    lambda n=name: f"{n}@{WORKER_HOST} ready" in _log(stack, n),
                    SERVER_DEADLINE,
                    stack.check_running,
                    1.0,
                )
            stack.boot_seconds = time.monotonic() - stack.started
            yield stack
            failed = False
        finally:
            stack.stop(dump_logs=failed)
            _forget_queue(queue)


def _forget_queue(queue: str) -> None:
    """Delete what Celery left in Redis for the test's queue (kombu's bindings)."""
    import redis

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT)
    keys = list(client.scan_iter(match=f"*{queue}*"))
    if keys:
        client.delete(*keys)
    client.close()


def _boto_keys() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_KEYS["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_KEYS["AWS_SECRET_ACCESS_KEY"],
    }


def _log(stack: CeleryStack, name: str) -> str:
    service = next(s for s in stack.services if s.name == name)
    return service.log_path.read_text(errors="replace") if service.log_path.exists() else ""
