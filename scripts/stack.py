#!/usr/bin/env python3
"""Run the local stack: an MLflow tracking server and Airflow, SQLite, loopback only.

Commands (``demo`` is the default, so ``stack.py --home H`` means ``stack.py demo --home H``):

  demo    the main command: start the stack in the background if --home has none running (else reuse
          it), run the MLOps demo through Airflow's REST API (example data, backfill of
          mlops_ingest__churn, mlops_train__churn_classifier, drifted days, mlops_drift__churn_classifier
          and the retraining it triggers), print a summary with the wall time of each phase, exit 0 and
          leave the stack running (exit 1 naming the DAG run and task to look at if a step fails).
          Running it again reuses what exists. See scripts/demo.py.
  up      start MLflow and Airflow in the foreground, wait until both are healthy, print where to log
          in, then wait; Ctrl-C (SIGINT) or SIGTERM stops every process it started and exits 0.
          A second ``up`` on the same --home while a stack runs prints that stack's URLs and exits 1.
  down    stop a stack started by another process or by ``demo`` (through its stack.json), exit 0.
  reset   ``down``, then delete the demo state in --home: ``data/`` (the data root: landing files,
          partitions, reports), ``mlflow/`` (mlflow.db and artifacts), ``airflow/`` (airflow.db,
          airflow.cfg, task logs), ``logs/`` and ``demo.json`` / ``demo-summary.json``. The login
          (``passwords.json``) and ``secrets.json`` are kept.
  status  print the running stack's URLs and health; exit 0 if it runs, 1 if not.
  airflow run the ``airflow`` CLI with the stack's environment, e.g.
          ``stack.py airflow connections get mlflow_default -o json``.

State lives in --home (default: <repo>/.stack): ``airflow/`` (AIRFLOW_HOME), ``mlflow/`` (mlflow.db and
artifacts), ``data/`` (the provider's data root), ``logs/`` (one log file per server), the generated
secrets (``passwords.json``, ``secrets.json``; mode 0600) and, while a stack runs, ``stack.json``.

Airflow's components (api-server, scheduler, dag-processor, triggerer) are started one by one rather
than through ``airflow standalone``: standalone's scheduler and triggerer always start their log servers
on 0.0.0.0/[::] ports 8793/8794, which are neither loopback-only nor free when two stacks run. With
LocalExecutor the API server reads task logs from the shared local log folder, so they are not needed.

``up`` writes ``airflow/config/airflow_local_settings.py`` (see LOCAL_SETTINGS), which every Airflow
component imports: on SQLite a transaction that starts with a SAVEPOINT takes the write lock first
(without it Airflow 3.3 refuses about one backfill creation in twenty-five with 503 "database is
locked"), and the scheduler preloads the libraries the tasks import, which its LocalExecutor workers
and their tasks inherit by fork (MLOPS_STACK_PRELOAD=0 in the environment of ``up`` turns that off).

Standard library only: this runs before anything heavy is imported, with the project venv's python.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import sysconfig
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_HOME = REPO / ".stack"
HOST = "127.0.0.1"
DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_MLFLOW_PORT = 5000
ADMIN_USER = "admin"
AIRFLOW_HEALTH_COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
# name -> airflow CLI arguments; the log servers are skipped (see the module docstring).
AIRFLOW_SERVERS = {
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}
# How each server is stopped (see stop_groups). The scheduler's leader alone gets the first SIGTERM, so
# LocalExecutor lets running tasks finish (a SIGTERM to the whole group would hit its workers directly).
LEADER_FIRST = frozenset({"airflow-scheduler"})
# Seconds after which a leader still running gets a second SIGTERM, which it takes as "stop now": the
# triggerer otherwise waits 10 s "for triggers to clean up" even when it runs none.
SIGNAL_AGAIN_AFTER = {"airflow-triggerer": 2.0}
COMMANDS = ("demo", "up", "down", "reset", "status", "airflow")
# = mlops_provider.operators.registry.REGISTRY_POOL: one slot, so alias moves never interleave.
REGISTRY_POOL = "mlops_registry"
REGISTRY_POOL_DOC = "MLflow registry alias moves (register, rollback), one at a time"
LOG_TAIL_LINES = 60
# Requests to the stack never go through a proxy from the environment.
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(Exception):
    """A failure to report to the user in one line, with exit status 1."""


# --------------------------------------------------------------------------------------------- paths


@dataclass(frozen=True)
class Paths:
    """Every file and folder of one stack's state directory."""

    home: Path

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME: airflow.db, airflow.cfg, task logs."""
        return self.home / "airflow"

    @property
    def mlflow(self) -> Path:
        """MLflow's backend store and artifact root."""
        return self.home / "mlflow"

    @property
    def logs(self) -> Path:
        """One log file per server."""
        return self.home / "logs"

    @property
    def data(self) -> Path:
        """The provider's data root (``[mlops] data_root``)."""
        return self.home / "data"

    @property
    def state(self) -> Path:
        """stack.json: pids, process groups, ports and URLs of the running stack."""
        return self.home / "stack.json"

    @property
    def lock(self) -> Path:
        """Held (flock) by the ``up`` process for as long as it runs."""
        return self.home / "stack.lock"

    @property
    def passwords(self) -> Path:
        """The simple auth manager's passwords file, ``{"admin": "..."}``."""
        return self.home / "passwords.json"

    @property
    def secrets(self) -> Path:
        """Generated once: the API's JWT secret and the Fernet key."""
        return self.home / "secrets.json"

    def log(self, name: str) -> Path:
        """The log file of the server called ``name``."""
        return self.logs / f"{name}.log"


def make_dirs(paths: Paths) -> None:
    """Create the state directory (private to the user when this creates it) and its sub-folders."""
    if not paths.home.exists():
        paths.home.mkdir(parents=True, mode=0o700)
    for folder in (paths.airflow_home, paths.mlflow / "artifacts", paths.logs, paths.data):
        folder.mkdir(parents=True, exist_ok=True)


def venv_bin() -> Path:
    """The folder holding the ``airflow`` and ``mlflow`` scripts of the interpreter running this file."""
    scripts = Path(sysconfig.get_path("scripts"))
    for tool in ("airflow", "mlflow"):
        if not (scripts / tool).exists():
            raise StackError(
                f"{scripts / tool} not found: run this with the project's venv python "
                f"(scripts/run-stack does), not {sys.executable}"
            )
    return scripts


# ------------------------------------------------------------------------------------------- secrets


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file readable by the owner only (mode 0600 from creation on)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.replace(tmp, path)


def read_private_json(path: Path) -> dict:
    """Read a secrets file, tightening its mode to 0600 if someone loosened it."""
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)
    return json.loads(path.read_text())


def ensure_secrets(paths: Paths) -> dict[str, str]:
    """Return the JWT secret and Fernet key, generating them on the first run."""
    if paths.secrets.exists():
        return read_private_json(paths.secrets)
    values = {
        "jwt_secret": secrets.token_urlsafe(64),  # 64 random bytes
        "fernet_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    write_private(paths.secrets, json.dumps(values, indent=2) + "\n")
    return values


def ensure_password(paths: Paths) -> str:
    """Return the admin password, generating the passwords file on the first run."""
    if paths.passwords.exists():
        stored = read_private_json(paths.passwords)
        if stored.get(ADMIN_USER):
            return stored[ADMIN_USER]
    password = secrets.token_urlsafe(16)
    write_private(paths.passwords, json.dumps({ADMIN_USER: password}) + "\n")
    return password


# ------------------------------------------------------------------------------------------- ports


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` on the loopback address right now.

    Probed with SO_REUSEADDR, as the servers themselves bind: connections of a stopped server that
    linger in TIME_WAIT do not make its port look busy (a restart right after ``down`` keeps its ports).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_ports(requested: dict[str, int | None], defaults: dict[str, int]) -> dict[str, int]:
    """Choose a loopback port per server.

    ``None``: the default port, or any free port if it is busy. ``0``: any free port. Another number:
    exactly that port, or an error if it is busy. Chosen ports are held open together so that two
    "any free port" choices never collide.
    """
    chosen: dict[str, int] = {}
    held: list[socket.socket] = []
    try:
        for name, want in requested.items():
            if want:
                if not port_is_free(want):
                    raise StackError(f"port {want} for {name} is in use (pass 0 for any free port)")
                chosen[name] = want
                continue
            taken = {*chosen.values(), *(p for p in requested.values() if p)}
            if want is None and defaults[name] not in taken and port_is_free(defaults[name]):
                chosen[name] = defaults[name]
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            held.append(sock)
            chosen[name] = sock.getsockname()[1]
    finally:
        for sock in held:
            sock.close()
    return chosen


# --------------------------------------------------------------------------------------- environment


def base_env(bin_dir: Path) -> dict[str, str]:
    """A copy of this process's environment with the venv first on PATH and no proxy for loopback."""
    env = dict(os.environ)
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


def airflow_env(paths: Paths, bin_dir: Path, airflow_port: int, mlflow_port: int) -> dict[str, str]:
    """The environment of every Airflow component and of ``stack.py airflow``."""
    keys = ensure_secrets(paths)
    ensure_password(paths)
    env = base_env(bin_dir)
    env.update(
        {
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
            "AIRFLOW_CONN_MLFLOW_DEFAULT": json.dumps(
                {"conn_type": "mlflow", "host": HOST, "port": mlflow_port}
            ),
        }
    )
    return env


LOCAL_SETTINGS = '''"""Tuning of the stack, written by scripts/stack.py at each `up` (edits are lost).

Airflow creates a backfill's runs in SAVEPOINTs. On SQLite a SAVEPOINT outside a transaction starts a
deferred one: its first SELECT takes a read snapshot and its first INSERT then fails at once with
"database is locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) whenever another process (scheduler,
dag-processor, heartbeats) committed in between; the API answers POST /api/v2/backfills with 503.
Beginning such a transaction with BEGIN IMMEDIATE takes the write lock first (waiting for it like any
writer), so the snapshot cannot go stale. Only transactions that start with a SAVEPOINT change: a global
BEGIN IMMEDIATE deadlocks Airflow's nested sessions (e.g. `airflow db migrate`).
"""

import importlib
import os
import sys

from sqlalchemy import create_engine, event

__all__ = ["create_metadata_engine"]  # what Airflow takes from this module

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "great_expectations",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "mlflow",
)


def create_metadata_engine(sql_alchemy_conn, *, engine_args, connect_args):
    engine = create_engine(sql_alchemy_conn, connect_args=connect_args, **engine_args, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "savepoint")
        def _write_lock_before_a_first_savepoint(conn, name):
            dbapi_connection = conn.connection.dbapi_connection
            if not dbapi_connection.in_transaction:
                dbapi_connection.execute("BEGIN IMMEDIATE")

    return engine


# LocalExecutor forks its workers from the scheduler and every task from a worker, so modules imported
# here, in the scheduler only, are already loaded in each task: an ingest or training task then
# starts without seconds of imports (great_expectations alone takes ~4 s). MLOPS_STACK_PRELOAD=0 turns
# it off.
if sys.argv[1:2] == ["scheduler"] and os.environ.get("MLOPS_STACK_PRELOAD", "1") != "0":
    for _module in PRELOAD:
        try:
            importlib.import_module(_module)
        except Exception as _exc:  # a missing or broken package must not stop the scheduler
            print(f"airflow_local_settings: not preloading {_module}: {_exc!r}", file=sys.stderr)
'''


def write_local_settings(paths: Paths) -> None:
    """Write ``airflow_local_settings.py`` into AIRFLOW_HOME/config (on sys.path of every component)."""
    folder = paths.airflow_home / "config"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "airflow_local_settings.py"
    if not target.exists() or target.read_text() != LOCAL_SETTINGS:
        tmp = folder / f".airflow_local_settings.{os.getpid()}.tmp"
        tmp.write_text(LOCAL_SETTINGS)
        os.replace(tmp, target)


# ------------------------------------------------------------------------------------- process table


def proc_stat(pid: int) -> dict | None:
    """State, process group, session and start time of ``pid`` from /proc (None if gone/unknown)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return {"state": fields[0], "pgrp": int(fields[2]), "session": int(fields[3]), "start": int(fields[19])}


def session_members(sids: set[int]) -> dict[int, list[int]] | None:
    """Live (non-zombie) pids of each session in ``sids`` (one /proc scan); None without /proc.

    Sessions, not only process groups: Airflow's task supervisor puts each task runner into a
    process group of its own, inside the session of the server that started it.
    """
    proc = Path("/proc")
    if not (proc / "self" / "stat").exists():
        return None
    members: dict[int, list[int]] = {sid: [] for sid in sids}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            stat = proc_stat(int(entry.name))
            if stat and stat["session"] in members and stat["state"] not in ("Z", "X"):
                members[stat["session"]].append(int(entry.name))
    return members


def alive_groups(pgids: set[int]) -> set[int]:
    """The process groups (= sessions, as each server leads its own) that still have live processes."""
    members = session_members(pgids)
    if members is not None:
        return {sid for sid, pids in members.items() if pids}
    alive = set()
    for pgid in pgids:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.add(pgid)
    return alive


def is_same_process(pid: int, start: int | None) -> bool:
    """Whether ``pid`` still runs and is the process recorded with start time ``start`` (pid reuse)."""
    stat = proc_stat(pid)
    if stat is None:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return start is None
    return stat["state"] not in ("Z", "X") and (start is None or stat["start"] == start)


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pgid`` and to every other process of its session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in (session_members({pgid}) or {}).get(pgid, []):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# ----------------------------------------------------------------------------------------- servers


@dataclass
class Server:
    """One child process started in its own session (so its pgid and sid equal its pid)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    proc: subprocess.Popen | None = None
    start: int | None = None

    def launch(self) -> None:
        """Start the process, stdout and stderr to its log file."""
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        stat = proc_stat(self.proc.pid)
        self.start = stat["start"] if stat else None

    @property
    def pid(self) -> int:
        """The leader's pid, also the process group and session id."""
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> int | None:
        """The exit status if the leader has exited, else None."""
        return None if self.proc is None else self.proc.poll()

    def record(self) -> dict:
        """This server's entry in stack.json."""
        return {
            "name": self.name,
            "pid": self.pid,
            "pgid": self.pid,
            "start": self.start,
            "log": str(self.log),
        }


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def print_tail(name: str, path: Path) -> None:
    """Print the end of a server's log to stderr, framed so it stands out."""
    print(f"\n----- last lines of {path} ({name}) -----", file=sys.stderr)
    print(log_tail(path) or "(empty)", file=sys.stderr)
    print("----- end -----", file=sys.stderr, flush=True)


def leader_gone(pid: int) -> bool:
    """Whether the leader ``pid`` has exited (a zombie waiting to be reaped counts as exited)."""
    stat = proc_stat(pid)
    if stat is not None:
        return stat["state"] in ("Z", "X")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def stop_groups(
    groups: list[tuple[str, int]], timeout: float, hurry: threading.Event | None = None
) -> list[str]:
    """Stop each (name, pgid) group within ``timeout`` seconds; return the names that needed SIGKILL.

    SIGTERM goes to each process group, except for the servers in LEADER_FIRST: their leader gets it
    first, and their group as soon as the leader has exited or after half the timeout. Servers in
    SIGNAL_AGAIN_AFTER get a second SIGTERM after that many seconds. Whatever is left at the deadline,
    in the group or its session, gets SIGKILL. ``hurry`` (a second Ctrl-C) goes straight to SIGKILL.
    """
    pgids = {pgid for _, pgid in groups}
    group_termed: set[int] = set()
    signalled_again: set[int] = set()
    for name, pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if name in LEADER_FIRST:
                os.kill(pgid, signal.SIGTERM)
            else:
                os.killpg(pgid, signal.SIGTERM)
                group_termed.add(pgid)
    begin = time.monotonic()
    while time.monotonic() < begin + timeout and not (hurry and hurry.is_set()):
        alive = alive_groups(pgids)
        if not alive:
            return []
        elapsed = time.monotonic() - begin
        for pgid in alive - group_termed:
            if elapsed > timeout / 2 or leader_gone(pgid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pgid, signal.SIGTERM)
                group_termed.add(pgid)
        for name, pgid in groups:
            again = SIGNAL_AGAIN_AFTER.get(name)
            if again is not None and elapsed > again and pgid in alive and pgid not in signalled_again:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pgid, signal.SIGTERM)
                signalled_again.add(pgid)
        time.sleep(0.2)
    left = alive_groups(pgids)
    for pgid in left:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and alive_groups(left):
        time.sleep(0.1)
    return [name for name, pgid in groups if pgid in left]


# --------------------------------------------------------------------------------------------- health


def http_get(
    url: str,
    timeout: float = 3.0,
    *,
    method: str = "GET",
    body: object | None = None,
    token: str | None = None,
) -> tuple[int, bytes] | None:
    """One HTTP request bypassing proxies (GET unless ``method``; ``body`` sent as JSON, ``token`` as a
    bearer token): (status, raw body), or None if nothing answered.
    """
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _HTTP.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def mlflow_healthy(port: int) -> bool:
    """Whether MLflow's ``GET /health`` answers 200."""
    answer = http_get(f"http://{HOST}:{port}/health")
    return answer is not None and answer[0] == 200


def airflow_health(port: int) -> dict[str, str]:
    """Component -> status from Airflow's ``GET /api/v2/monitor/health`` ({} if it does not answer)."""
    answer = http_get(f"http://{HOST}:{port}/api/v2/monitor/health")
    if answer is None or answer[0] != 200:
        return {}
    try:
        body = json.loads(answer[1])
    except ValueError:
        return {}
    return {name: str((body.get(name) or {}).get("status")) for name in AIRFLOW_HEALTH_COMPONENTS}


def airflow_healthy(port: int) -> bool:
    """Whether the metadatabase, scheduler, triggerer and dag processor all report healthy."""
    health = airflow_health(port)
    return bool(health) and all(status == "healthy" for status in health.values())


class Progress:
    """Prints a dot every few seconds while waiting, and whole lines for events."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.last = time.monotonic()
        self.dots = False

    def tick(self) -> None:
        """Print a dot if ``every`` seconds passed since the last output."""
        if time.monotonic() - self.last >= self.every:
            print(".", end="", flush=True)
            self.dots = True
            self.last = time.monotonic()

    def line(self, text: str) -> None:
        """Print ``text`` on a line of its own."""
        if self.dots:
            print()
            self.dots = False
        print(text, flush=True)
        self.last = time.monotonic()


# ----------------------------------------------------------------------------------------- state file


def write_state(paths: Paths, state: dict) -> None:
    """Atomically replace stack.json (mode 0600: it repeats the admin password)."""
    write_private(paths.state, json.dumps(state, indent=2) + "\n")


def read_state(paths: Paths) -> dict | None:
    """The content of stack.json, or None if there is none (or it is unreadable)."""
    try:
        return json.loads(paths.state.read_text())
    except (OSError, ValueError):
        return None


def live_groups(state: dict) -> list[tuple[str, int]]:
    """(name, pgid) of the recorded servers that still run and are still the recorded processes."""
    records = state.get("processes", [])
    alive = alive_groups({rec["pgid"] for rec in records})
    groups = []
    for rec in records:
        stat = proc_stat(rec["pid"])
        leader_is_ours = is_same_process(rec["pid"], rec.get("start"))
        leader_gone = stat is None or stat["state"] in ("Z", "X")
        # A pid is not reused while it still names a process group or session, so a group whose
        # leader has exited but which still has members is ours; a live leader must match its start.
        if (leader_is_ours or leader_gone) and rec["pgid"] in alive:
            groups.append((rec["name"], rec["pgid"]))
    return groups


def supervisor_alive(state: dict) -> bool:
    """Whether the ``up`` process that wrote ``state`` still runs."""
    pid = state.get("pid")
    return bool(pid) and pid != os.getpid() and is_same_process(pid, state.get("start"))


def prog() -> str:
    """How the user called us (scripts/run-stack sets STACK_PROG), for hints in messages."""
    return os.environ.get("STACK_PROG") or "scripts/stack.py"


def home_flag(home: Path) -> str:
    """`` --home H`` unless ``home`` is the default state directory."""
    return "" if home == DEFAULT_HOME else f" --home {home}"


def describe(state: dict) -> str:
    """The human summary of a stack: where to log in and where things are."""
    home = Path(state["home"])
    return "\n".join(
        [
            f"  Airflow UI   {state['urls']['airflow']}",
            f"    login      {state['user']} / {state['password']}   (stored in {state['passwords_file']})",
            f"  MLflow UI    {state['urls']['mlflow']}",
            f"  Data root    {state['data_root']}",
            f"  Logs         {home / 'logs'}",
            f"  Airflow CLI  {prog()} airflow{home_flag(home)} <args>   (runs with the stack's environment)",
        ]
    )


# ------------------------------------------------------------------------------------------- commands


class Lock:
    """An exclusive, non-blocking flock held while ``up`` runs (released by the kernel on any exit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it."""
        import fcntl

        self.handle = open(self.path, "a")  # noqa: SIM115 - held for the life of the process
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                self.handle.close()
                self.handle = None
                return False
            raise
        return True


class Stack:
    """The ``up`` command: start, wait healthy, serve until a signal, stop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.paths = Paths(Path(args.home).resolve())
        self.servers: list[Server] = []
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.state: dict = {}
        self.progress = Progress()

    def on_signal(self, signum: int, _frame: object) -> None:
        """First SIGINT/SIGTERM: stop gracefully. Second: stop now (SIGKILL)."""
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()

    def refuse_if_running(self) -> None:
        """Exit 1 with the running stack's URLs if this --home already has one."""
        state = read_state(self.paths)
        if state and (supervisor_alive(state) or live_groups(state)):
            if state.get("state") == "running":
                print(f"A stack already runs from {self.paths.home}:\n{describe(state)}", file=sys.stderr)
            alive = ", ".join(name for name, _ in live_groups(state)) or "none"
            raise StackError(
                f"a stack (pid {state.get('pid')}, servers alive: {alive}) already uses {self.paths.home}; "
                f"stop it first: {prog()} down{home_flag(self.paths.home)}"
            )
        if state:
            self.paths.state.unlink(missing_ok=True)  # stale: left by a stack that was killed

    def plan(self) -> None:
        """Pick ports, write secrets and describe the servers to start."""
        bin_dir = venv_bin()
        ports = pick_ports(
            {"airflow": self.args.airflow_port, "mlflow": self.args.mlflow_port},
            {"airflow": DEFAULT_AIRFLOW_PORT, "mlflow": DEFAULT_MLFLOW_PORT},
        )
        if ports["airflow"] == ports["mlflow"]:
            raise StackError("Airflow and MLflow cannot share a port")
        self.ports = ports
        write_local_settings(self.paths)
        password = ensure_password(self.paths)
        af_env = airflow_env(self.paths, bin_dir, ports["airflow"], ports["mlflow"])
        self.mlflow = Server(
            "mlflow",
            [
                str(bin_dir / "mlflow"),
                "server",
                "--backend-store-uri",
                f"sqlite:///{self.paths.mlflow / 'mlflow.db'}",
                "--artifacts-destination",
                str(self.paths.mlflow / "artifacts"),
                "--host",
                HOST,
                "--port",
                str(ports["mlflow"]),
                "--workers",
                "1",
            ],
            mlflow_env(bin_dir),
            self.paths.mlflow,
            self.paths.log("mlflow"),
        )
        # The database, then the registry pool that serialises alias moves (register, rollback).
        self.migrate = Server(
            "airflow-db-migrate",
            [
                "/bin/sh",
                "-c",
                f'"$0" db migrate && "$0" pools set {REGISTRY_POOL} 1 "{REGISTRY_POOL_DOC}"',
                str(bin_dir / "airflow"),
            ],
            af_env,
            self.paths.airflow_home,
            self.paths.log("airflow-db-migrate"),
        )
        self.airflow = [
            Server(
                name, [str(bin_dir / "airflow"), *argv], af_env, self.paths.airflow_home, self.paths.log(name)
            )
            for name, argv in AIRFLOW_SERVERS.items()
        ]
        self.state = {
            "pid": os.getpid(),
            "start": (proc_stat(os.getpid()) or {}).get("start"),
            "state": "starting",
            "home": str(self.paths.home),
            "ports": ports,
            "urls": {
                "airflow": f"http://{HOST}:{ports['airflow']}",
                "mlflow": f"http://{HOST}:{ports['mlflow']}",
            },
            "user": ADMIN_USER,
            "password": password,
            "passwords_file": str(self.paths.passwords),
            "data_root": self.paths.data.as_uri(),
            "processes": [],
        }

    def launch(self, server: Server) -> None:
        """Start ``server`` and record it in stack.json at once (so ``down`` can stop a booting stack)."""
        server.launch()
        self.servers.append(server)
        self.state["processes"] = [s.record() for s in self.servers if s.exited() is None]
        write_state(self.paths, self.state)

    def check_alive(self, waiting_for: list[Server]) -> None:
        """Raise (after printing its log) if a server exited; a finished migration is expected."""
        for server in waiting_for:
            code = server.exited()
            if code is not None and not (server is self.migrate and code == 0):
                print_tail(server.name, server.log)
                raise StackError(f"{server.name} exited with status {code} (log: {server.log})")

    def boot(self) -> float | None:
        """Start everything and wait until healthy; the boot time in seconds, None if interrupted."""
        begin = time.monotonic()
        deadline = begin + self.args.timeout
        self.progress.line(
            f"Starting MLflow on {self.state['urls']['mlflow']} and Airflow on "
            f"{self.state['urls']['airflow']} (state in {self.paths.home}, logs in {self.paths.logs})"
        )
        self.launch(self.mlflow)
        self.launch(self.migrate)
        pending = {"mlflow": self.mlflow, "database": self.migrate}
        while pending:
            if self.stop.is_set():
                self.progress.line("Interrupted while starting.")
                return None
            self.check_alive(list(self.servers))
            if "database" in pending and self.migrate.exited() == 0:
                del pending["database"]
                self.progress.line(f"  airflow database ready ({time.monotonic() - begin:.1f} s)")
                for server in self.airflow:
                    self.launch(server)
                pending["airflow"] = self.airflow[0]
            if "mlflow" in pending and mlflow_healthy(self.ports["mlflow"]):
                del pending["mlflow"]
                self.progress.line(f"  mlflow healthy ({time.monotonic() - begin:.1f} s)")
            if "airflow" in pending and airflow_healthy(self.ports["airflow"]):
                del pending["airflow"]
                self.progress.line(f"  airflow healthy ({time.monotonic() - begin:.1f} s)")
            if pending and time.monotonic() > deadline:
                for name, server in pending.items():
                    if name == "airflow":
                        self.progress.line(
                            f"  airflow health: {airflow_health(self.ports['airflow']) or 'no answer'}"
                        )
                        for component in self.airflow:
                            print_tail(component.name, component.log)
                    else:
                        print_tail(server.name, server.log)
                raise StackError(f"not healthy after {self.args.timeout:.0f} s: {', '.join(pending)}")
            if pending:
                self.progress.tick()
                self.stop.wait(0.5)
        return time.monotonic() - begin

    def serve(self) -> None:
        """Wait for a signal; a server that dies meanwhile is an error."""
        while not self.stop.wait(1.0):
            self.check_alive([s for s in self.servers if s is not self.migrate])

    def shutdown(self) -> None:
        """Stop every started server's process group and remove stack.json."""
        running = alive_groups({s.pid for s in self.servers})
        groups = [(s.name, s.pid) for s in self.servers if s.pid in running]
        if groups:
            self.progress.line(f"Stopping {', '.join(name for name, _ in groups)} ...")
            killed = stop_groups(groups, self.args.stop_timeout, self.hurry)
            for server in self.servers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.proc.wait(timeout=5)  # reap the leaders
            if killed:
                self.progress.line(
                    f"  killed (SIGKILL) after {self.args.stop_timeout:.0f} s: {', '.join(killed)}"
                )
        self.paths.state.unlink(missing_ok=True)
        self.progress.line("Stopped.")

    def run(self) -> int:
        """The whole ``up`` command; returns the exit status."""
        make_dirs(self.paths)
        lock = Lock(self.paths.lock)
        if not lock.acquire():
            self.refuse_if_running()  # raises when it finds the stack the lock-holder runs
            raise StackError(f"another `up` is starting a stack in {self.paths.home}")
        self.refuse_if_running()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        self.plan()
        try:
            boot_time = self.boot()
            if boot_time is None:
                self.shutdown()
                return 0
            self.state["state"] = "running"
            self.state["boot_seconds"] = round(boot_time, 1)
            write_state(self.paths, self.state)
            self.progress.line(
                f"\nStack is up after {boot_time:.1f} s.\n{describe(self.state)}\n\nCtrl-C to stop."
            )
            self.serve()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            self.shutdown()
            return 1
        except BaseException:
            self.shutdown()
            raise
        self.shutdown()
        return 0


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack in the foreground."""
    return Stack(args).run()


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the stack recorded in --home: ask its ``up`` process first, then stop leftovers directly."""
    paths = Paths(Path(args.home).resolve())
    state = read_state(paths)
    if state is None:
        print(f"No stack running in {paths.home}.")
        return 0
    if supervisor_alive(state):
        print(f"Stopping the stack of pid {state['pid']} ...", flush=True)
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + args.stop_timeout + 20
        while time.monotonic() < deadline and is_same_process(state["pid"], state.get("start")):
            time.sleep(0.2)
    groups = live_groups(state)
    if groups:
        print(f"Stopping {', '.join(name for name, _ in groups)} ...", flush=True)
        killed = stop_groups(groups, args.stop_timeout)
        if killed:
            print(f"  killed (SIGKILL): {', '.join(killed)}")
    paths.state.unlink(missing_ok=True)
    print("Stopped.")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo (scripts/demo.py) on the stack of --home, starting the stack if needed."""
    sys.modules.setdefault("stack", sys.modules[__name__])  # demo.py imports this module as `stack`
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import demo

    return demo.run(args)


# What ``reset`` deletes from --home (see the module docstring): all demo state, not the login.
RESET_PATHS = ("data", "mlflow", "airflow", "logs", "demo.json", "demo-summary.json")


def cmd_reset(args: argparse.Namespace) -> int:
    """Stop the stack if it runs, then delete the demo state (RESET_PATHS) from --home."""
    import shutil

    paths = Paths(Path(args.home).resolve())
    lock = Lock(paths.lock) if paths.home.exists() else None
    cmd_down(args)
    if lock is not None and not lock.acquire():
        raise StackError(f"an `up` still holds {paths.lock}: stop it first")
    removed = []
    for name in RESET_PATHS:
        target = paths.home / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        removed.append(name)
    print(f"Removed from {paths.home}: {', '.join(removed) or 'nothing (no demo state)'}; kept the login.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the recorded stack and its live health; 0 if it runs, 1 if not."""
    paths = Paths(Path(args.home).resolve())
    state = read_state(paths)
    if state is None or not (supervisor_alive(state) or live_groups(state)):
        print(f"No stack running in {paths.home}.")
        return 1
    alive = {name for name, _ in live_groups(state)}
    if supervisor_alive(state):
        print(f"Stack in {paths.home}: {state.get('state')} (pid {state.get('pid')})")
    else:
        print(f"Stack in {paths.home}: orphaned, its `up` process is gone: stop it with `{prog()} down`")
    print(describe(state))
    for rec in state.get("processes", []):
        print(f"  {rec['name']:22} pid {rec['pid']:>7}  {'running' if rec['name'] in alive else 'gone'}")
    print(f"  mlflow health: {'ok' if mlflow_healthy(state['ports']['mlflow']) else 'not ok'}")
    print(f"  airflow health: {airflow_health(state['ports']['airflow']) or 'no answer'}")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    """Run the airflow CLI with the running stack's environment (same DB, connections, config)."""
    paths = Paths(Path(args.home).resolve())
    state = read_state(paths)
    if state is None:
        raise StackError(f"no stack.json in {paths.home}: start the stack first")
    bin_dir = venv_bin()
    env = airflow_env(paths, bin_dir, state["ports"]["airflow"], state["ports"]["mlflow"])
    argv = list(args.airflow_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return subprocess.call([str(bin_dir / "airflow"), *argv], env=env, cwd=paths.airflow_home)


def port_arg(text: str) -> int:
    """argparse type: a TCP port, 0 meaning any free port."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port")
    return port


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring)."""
    parser = argparse.ArgumentParser(
        prog="stack.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=str(DEFAULT_HOME), help="state directory (default: %(default)s)")
    common.add_argument(
        "--stop-timeout", type=float, default=30.0, help="seconds to wait after SIGTERM before SIGKILL"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    ports = argparse.ArgumentParser(add_help=False)
    ports.add_argument(
        "--airflow-port",
        type=port_arg,
        default=None,
        help=f"Airflow port; default {DEFAULT_AIRFLOW_PORT} or a free one if busy; 0: any free port",
    )
    ports.add_argument(
        "--mlflow-port",
        type=port_arg,
        default=None,
        help=f"MLflow port; default {DEFAULT_MLFLOW_PORT} or a free one if busy; 0: any free port",
    )
    ports.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for health")
    up = sub.add_parser("up", parents=[common, ports], help="start the stack in the foreground")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser(
        "demo",
        parents=[common, ports],
        help="the default: start the stack if needed, run the demo, print a summary, leave it running",
    )
    demo.add_argument(
        "--end-date",
        default=None,
        help="last drifted day, YYYY-MM-DD, in the past (default: yesterday, UTC, at the first run; "
        "stored in <home>/demo.json and reused)",
    )
    demo.add_argument("--rows", type=int, default=None, help="rows per example day (default: 5000)")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("down", parents=[common], help="stop the stack (started by demo or up)").set_defaults(
        func=cmd_down
    )
    sub.add_parser(
        "reset",
        parents=[common],
        help="stop the stack, delete the demo state: data/, mlflow/, airflow/, logs/, demo*.json "
        "(keeps the login)",
    ).set_defaults(func=cmd_reset)
    sub.add_parser("status", parents=[common], help="show the running stack").set_defaults(func=cmd_status)
    af = sub.add_parser("airflow", parents=[common], help="run the airflow CLI with the stack's environment")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER, help="arguments of `airflow`")
    af.set_defaults(func=cmd_airflow)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``demo`` when no command is given."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv.insert(0, "demo")
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
