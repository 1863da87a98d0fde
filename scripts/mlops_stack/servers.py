"""The stack's servers: what each one runs, and one started process with its log and restarts.

Airflow's components (api-server, scheduler, dag-processor, triggerer) are started one by one rather
than through ``airflow standalone``: standalone's scheduler and triggerer always start their log servers
on 0.0.0.0/[::] ports 8793/8794, which are neither loopback-only nor free when two stacks run. With
LocalExecutor the API server reads task logs from the shared local log folder, so they are not needed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mlops_stack.logs import open_log
from mlops_stack.ports import HOST
from mlops_stack.processes import start_in_session

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from mlops_stack.paths import Paths

# name -> airflow CLI arguments; the log servers are skipped (see the module docstring).
AIRFLOW_SERVERS = {
    "airflow-api-server": ["api-server"],
    "airflow-scheduler": ["scheduler", "--skip-serve-logs"],
    "airflow-dag-processor": ["dag-processor"],
    "airflow-triggerer": ["triggerer", "--skip-serve-logs"],
}
# How each server is stopped (processes.stop_groups). The scheduler's leader alone gets the first
# SIGTERM, so LocalExecutor lets running tasks finish (a SIGTERM to the whole group would hit its
# workers directly).
LEADER_FIRST = frozenset({"airflow-scheduler"})
# Seconds after which a leader still running gets a second SIGTERM, which it takes as "stop now": the
# triggerer otherwise waits 10 s "for triggers to clean up" even when it runs none.
SIGNAL_AGAIN_AFTER = {"airflow-triggerer": 2.0}
# = mlops_provider.operators.registry.REGISTRY_POOL: one slot, so alias moves never interleave.
REGISTRY_POOL = "mlops_registry"
REGISTRY_POOL_DOC = "MLflow registry alias moves (register, rollback), one at a time"


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
    exits: list[float] = field(default_factory=list)  # monotonic times of unexpected exits

    def launch(self) -> None:
        """Start the process, stdout and stderr appended to its log file after a separator line."""
        with open_log(self.log, self.name) as out:
            self.proc, self.start = start_in_session(self.argv, env=self.env, cwd=self.cwd, output=out)

    @property
    def pid(self) -> int:
        """The leader's pid, also the process group and session id."""
        assert self.proc is not None
        return self.proc.pid

    def exited(self) -> int | None:
        """The exit status if the leader has exited, else None."""
        return None if self.proc is None else self.proc.poll()

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the leader to exit (reaping it); its exit status."""
        return None if self.proc is None else self.proc.wait(timeout=timeout)

    def record(self) -> dict:
        """This server's entry in stack.json."""
        return {
            "name": self.name,
            "pid": self.pid,
            "pgid": self.pid,
            "start": self.start,
            "log": str(self.log),
            "restarts": len(self.exits),
        }


def mlflow_server(paths: Paths, bin_dir: Path, port: int, env: dict[str, str]) -> Server:
    """The MLflow tracking server: SQLite backend store and local artifacts under ``paths.mlflow``."""
    argv = [
        str(bin_dir / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{paths.mlflow / 'mlflow.db'}",
        "--artifacts-destination",
        str(paths.mlflow / "artifacts"),
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return Server("mlflow", argv, env, paths.mlflow, paths.log("mlflow"))


def migrate_server(paths: Paths, bin_dir: Path, env: dict[str, str]) -> Server:
    """The one-off ``airflow db migrate``, then the registry pool that serialises alias moves."""
    script = f'"$0" db migrate && "$0" pools set {REGISTRY_POOL} 1 "{REGISTRY_POOL_DOC}"'
    argv = ["/bin/sh", "-c", script, str(bin_dir / "airflow")]
    return Server("airflow-db-migrate", argv, env, paths.airflow_home, paths.log("airflow-db-migrate"))


def airflow_servers(paths: Paths, bin_dir: Path, env: dict[str, str]) -> list[Server]:
    """Airflow's long-running components (AIRFLOW_SERVERS), in start order."""
    return [
        Server(name, [str(bin_dir / "airflow"), *argv], env, paths.airflow_home, paths.log(name))
        for name, argv in AIRFLOW_SERVERS.items()
    ]
