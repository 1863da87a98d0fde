"""Drive the real local stack (``python scripts/mlops_stack up``) from tests: start, wait healthy, call, stop.

``up`` runs in a session of its own and starts every server (MLflow, Airflow's api-server,
scheduler, dag-processor, triggerer) in a session of its own too, recording their pids and process
groups in ``<home>/stack.json``. Stopping sends SIGINT to ``up`` (it stops its servers and exits 0),
then SIGKILLs by PID whatever is still alive in any of those sessions, whatever happened. The REST
client and the process-group helpers are the stack's own (``mlops_stack.rest``, ``mlops_stack.processes``).

Synchronisation is always a poll with a deadline (:func:`wait_for`), never a bare sleep.

Standard library, psutil and pytest only: importing this module imports neither Airflow nor MLflow.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil
import pytest
from mlops_stack.credentials import ADMIN_USER
from mlops_stack.health import airflow_healthy, mlflow_healthy
from mlops_stack.ports import HOST
from mlops_stack.processes import kill_groups
from mlops_stack.rest import AirflowClient, ApiError, http, quote

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "mlops_stack"  # run as ``python STACK COMMAND ...``
BOOT_DEADLINE = 300.0
HEALTH_DEADLINE = 60.0
STOP_DEADLINE = 90.0
BACKFILL_CREATE_DEADLINE = 120.0
DAG_PARSE_DEADLINE = 180.0
DAG_RUN_DEADLINE = 300.0
LOG_TAIL_LINES = 80
__all__ = [
    "HOST",
    "ApiError",
    "LiveStack",
    "StackRun",
    "http",
    "quote",
    "session_processes",
    "tail",
    "wait_for",
]


# ------------------------------------------------------------------------------------------ helpers


def wait_for(
    what: str,
    probe: Callable[[], Any],
    deadline: float,
    check: Callable[[], None] | None = None,
    interval: float = 0.5,
) -> Any:
    """Poll ``probe`` until it returns something truthy and return it; fail after ``deadline`` seconds.

    ``check`` runs on every round, to fail early (e.g. when the stack process died).
    """
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value:
            return value
        if check is not None:
            check()
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:.0f} s waiting for {what}")
        time.sleep(interval)


def session_processes(sids: set[int]) -> list[psutil.Process]:
    """Live (non-zombie) processes whose session is one of ``sids``."""
    found = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getsid(proc.pid) in sids and proc.info["status"] != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return found


def clean_env(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without Airflow or MLflow settings a test session may have set, plus ``overrides``.

    ``up`` sets the stack's own Airflow settings on top; other ``AIRFLOW__*`` overrides pass
    through to every server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}
    env.update(overrides or {})
    return env


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, framed with its name and length."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return f"===== {path} (last {min(lines, len(text))} of {len(text)} lines) =====\n" + "\n".join(
        text[-lines:]
    )


# ----------------------------------------------------------------------------------- the subprocess


@dataclass
class StackRun:
    """An ``up`` subprocess and what is known about the servers it started."""

    proc: subprocess.Popen
    home: Path
    output: Path
    started: float
    sids: set[int] = field(default_factory=set)

    @classmethod
    def launch(
        cls, home: Path, output: Path | None = None, env_overrides: Mapping[str, str] | None = None
    ) -> StackRun:
        """Run ``up`` on free loopback ports with state in ``home``, as a session of its own.

        Its output goes to ``output`` (default: ``<home>-output.log`` next to ``home``).
        """
        home = Path(home)
        home.parent.mkdir(parents=True, exist_ok=True)
        output = output or home.with_name(f"{home.name}-output.log")
        with open(output, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(STACK),
                    "up",
                    "--home",
                    str(home),
                    "--airflow-port",
                    "0",
                    "--mlflow-port",
                    "0",
                    "--timeout",
                    str(int(BOOT_DEADLINE)),
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env=clean_env(env_overrides),
                start_new_session=True,
            )
        return cls(proc=proc, home=home, output=output, started=time.monotonic())

    def state(self) -> dict | None:
        """stack.json, remembering the servers' sessions (each server leads its own)."""
        try:
            state = json.loads((self.home / "stack.json").read_text())
        except (OSError, ValueError):
            return None
        self.sids.update(rec["pgid"] for rec in state.get("processes", []))
        return state

    def all_sids(self) -> set[int]:
        """The sessions of the stack script itself and of every server it recorded."""
        self.state()
        return {self.proc.pid, *self.sids}

    def check_running(self) -> None:
        """Fail at once if ``up`` exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"the stack's up exited early with status {self.proc.returncode}")

    def wait_running(self, deadline: float = BOOT_DEADLINE) -> dict:
        """Wait until stack.json says ``running`` (``up`` writes it once every server is healthy)."""
        return wait_for(
            "stack.json to say running",
            lambda: (s := self.state()) and s.get("state") == "running" and s,
            deadline,
            self.check_running,
        )

    def stack_py(self, command: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run another command of the stack (``python scripts/mlops_stack COMMAND``) on the same state directory."""
        return subprocess.run(
            [sys.executable, str(STACK), command, "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
            check=False,
        )

    def interrupt(self, deadline: float = STOP_DEADLINE) -> int | None:
        """Ctrl-C: SIGINT to ``up``; its exit status, or None if it still ran after ``deadline``."""
        self.all_sids()  # stack.json goes away on the way out: remember every session first
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            return None

    def dump_logs(self) -> None:
        """Print the script's output and the tail of every server log (on failure)."""
        print(f"\n===== up output ({self.output}) =====\n{self.output.read_text(errors='replace')}")
        for log in sorted((self.home / "logs").glob("*.log")):
            print("\n" + tail(log))

    def kill_all(self) -> None:
        """SIGKILL every process of the stack's sessions and process groups, then reap the script."""
        kill_groups(self.all_sids())  # only sessions with live members: a long-gone pid is never signalled
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


# ------------------------------------------------------------------------------------ the live stack


class LiveStack(AirflowClient):
    """A running stack: where it is, an authenticated REST client (the stack's own), how to stop it.

    Start with :meth:`start`; always :meth:`stop` (also a context manager).
    """

    def __init__(self, run: StackRun, state: dict) -> None:
        password = json.loads((run.home / "passwords.json").read_text())[ADMIN_USER]
        super().__init__(state["urls"]["airflow"], ADMIN_USER, password, timeout=30)
        self.run = run
        self.state = state
        self.boot_seconds = time.monotonic() - run.started

    # -- life cycle -----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        home: Path | str,
        env_overrides: Mapping[str, str] | None = None,
        *,
        boot_deadline: float = BOOT_DEADLINE,
    ) -> LiveStack:
        """Start a stack with state in ``home`` and return it once MLflow and every Airflow component
        report healthy. On any failure its logs are printed and every process it started is killed.
        """
        run = StackRun.launch(Path(home), env_overrides=env_overrides)
        try:
            state = run.wait_running(boot_deadline)
            stack = cls(run, state)
            stack.wait_healthy()
        except BaseException:
            run.dump_logs()
            run.interrupt(deadline=30)
            run.kill_all()
            raise
        stack.boot_seconds = time.monotonic() - run.started
        return stack

    def wait_healthy(self, deadline: float = HEALTH_DEADLINE) -> None:
        """Poll MLflow's /health and Airflow's /api/v2/monitor/health until all is healthy."""
        ports = self.state["ports"]
        wait_for("MLflow /health", lambda: mlflow_healthy(ports["mlflow"]), deadline)
        wait_for(
            "Airflow components healthy",
            lambda: airflow_healthy(ports["airflow"]),
            deadline,
            self.check_running,
        )

    def check_running(self) -> None:
        """Fail at once if ``up`` exited (it gives up when a server keeps exiting)."""
        self.run.check_running()

    def stop(self, deadline: float = STOP_DEADLINE, *, dump_logs: bool = False) -> int | None:
        """SIGINT ``up``, wait for it, then SIGKILL by PID whatever is left of its sessions.

        Prints the server logs if ``dump_logs`` or if the stop was not clean. Returns the exit
        status of ``up`` (None if it had to be killed).
        """
        code = None
        try:
            began = time.monotonic()
            code = self.run.interrupt(deadline)
            print(f"\nstack stopped in {time.monotonic() - began:.1f} s (up exit status {code})")
            if dump_logs or code != 0:
                self.run.dump_logs()
        finally:
            self.run.kill_all()
        return code

    def __enter__(self) -> LiveStack:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop(dump_logs=exc_type is not None)

    # -- where things are -----------------------------------------------------------------------

    @property
    def home(self) -> Path:
        return self.run.home

    @property
    def airflow_home(self) -> Path:
        """AIRFLOW_HOME of the stack (airflow.db, task logs under ``logs/``)."""
        return self.home / "airflow"

    @property
    def airflow_url(self) -> str:
        return self.state["urls"]["airflow"]

    @property
    def mlflow_url(self) -> str:
        return self.state["urls"]["mlflow"]

    @property
    def data_root(self) -> str:
        """``[mlops] data_root`` of every Airflow component: ``file://<home>/data``."""
        return self.state["data_root"]

    @property
    def data_path(self) -> Path:
        """The data root as a local path."""
        return Path(urllib.parse.urlparse(self.data_root).path)

    # -- REST (token, request, api, set_paused, open_backfills: AirflowClient) -----------------------

    def create_backfill(
        self, body: Mapping[str, Any], *, deadline: float = BACKFILL_CREATE_DEADLINE, unpause: bool = True
    ) -> dict:
        """``POST /api/v2/backfills`` made reliable on the stack's SQLite database; returns the backfill.

        Airflow 3.3 creates a backfill's runs in one SAVEPOINT per run, and pysqlite releases each
        SAVEPOINT as a commit; a concurrent writer (scheduler, dag-processor, heartbeats) then makes the
        creation fail at once with 503 "Database is locked" (SQLite in WAL mode refuses a write from a
        stale read snapshot; about one creation in eight here, even with the whole stack idle).
        Airflow's clean-up of the failed attempt either deletes the runs it had already committed
        (including cleared, previously finished runs) or fails and leaves an open backfill behind (409
        on the next try). So this:

        * pauses the DAG while creating (the scheduler never starts a run a failed attempt will delete,
          which otherwise crashes it with StaleDataError), and unpauses it afterwards if ``unpause``;
        * on 503/409 cancels the open backfill the failed attempt left (its queued runs become failed)
          and tries again, with ``reprocess_behavior`` ``none`` raised to ``failed`` so that those runs
          are run after all. Backfill run ids are deterministic, so a retried day keeps its run id.
        """
        dag_id = body["dag_id"]
        payload = dict(body)
        self.set_paused(dag_id, True)
        if already := self.open_backfills(dag_id):
            raise ApiError(f"{dag_id} already has open backfills {already}")
        began = time.monotonic()
        attempts = 0
        while True:
            attempts += 1
            status, answer = self.request("POST", "/api/v2/backfills", payload)
            if status == 200:
                break
            retryable = (status == 503 and "locked" in str(answer).lower()) or status == 409
            if not retryable or time.monotonic() - began > deadline:
                raise ApiError(f"POST /api/v2/backfills {payload} -> {status}: {answer} (attempt {attempts})")
            left = self.open_backfills(dag_id)
            print(
                f"  backfill creation attempt {attempts} -> {status} {answer}; "
                f"cancelling backfills {left} it left open and trying again",
                flush=True,
            )
            self.cancel_backfills(left)
            if payload.get("reprocess_behavior", "none") == "none":
                payload["reprocess_behavior"] = "failed"
            time.sleep(1.0)
        if attempts > 1:
            print(f"  backfill {answer['id']} created after {attempts} attempts", flush=True)
        if unpause:
            self.set_paused(dag_id, False)
        return answer

    # -- DAGs and runs ---------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, deadline: float = DAG_PARSE_DEADLINE) -> dict:
        """Wait until the dag-processor has parsed ``dag_id`` (``GET /api/v2/dags/{dag_id}`` -> 200).

        Prints the import errors if it never appears.
        """

        def parsed() -> dict | None:
            status, body = self.request("GET", f"/api/v2/dags/{quote(dag_id)}")
            return body if status == 200 else None

        try:
            return wait_for(f"the dag-processor to parse {dag_id}", parsed, deadline, self.check_running, 1.0)
        except BaseException:
            print("import errors:", self.request("GET", "/api/v2/importErrors"))
            raise

    def dag_runs(self, dag_id: str, **params: Any) -> dict:
        """``GET /api/v2/dags/{dag_id}/dagRuns`` with query ``params``: ``{dag_runs, total_entries}``."""
        return self.api("GET", f"/api/v2/dags/{quote(dag_id)}/dagRuns", params={"limit": 100, **params})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        """The run's task instances (mapped ones once per map index)."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances"
        return list(self.api("GET", path, params={"limit": 100})["task_instances"])

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        """``task_id[map_index] -> state`` of the run (plain ``task_id`` for an unmapped task)."""
        return {
            f"{ti['task_id']}[{ti['map_index']}]" if ti["map_index"] >= 0 else ti["task_id"]: ti["state"]
            for ti in self.task_instances(dag_id, run_id)
        }

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int = -1
    ) -> Any:
        """The deserialised value of one XCom entry (``.../xcomEntries/{key}``)."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}/taskInstances/{quote(task_id)}"
        entry = self.api("GET", f"{path}/xcomEntries/{quote(key)}", params={"map_index": map_index})
        return entry["value"]

    def wait_for_dag_run(
        self,
        dag_id: str,
        run_id: str,
        deadline: float = DAG_RUN_DEADLINE,
        interval: float = 1.0,
        *,
        expect: str = "success",
    ) -> dict:
        """Poll the run until it is ``success`` or ``failed`` and return it.

        If it ended in the other state than ``expect`` or did not finish within ``deadline`` seconds,
        the state of every task instance and the tail of their logs are printed and the test fails.
        """
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id)}"
        end = time.monotonic() + deadline
        while True:
            run = self.api("GET", path)
            if run["state"] in ("success", "failed") or time.monotonic() > end:
                break
            self.check_running()
            time.sleep(interval)
        if run["state"] != expect:
            states = self.task_states(dag_id, run_id)
            self.dump_task_logs(dag_id, run_id)
            pytest.fail(
                f"{dag_id} run {run_id} is {run['state']} after {deadline:.0f} s at most; tasks: {states}"
            )
        return run

    @property
    def jwt_secret(self) -> str:
        """The secret the API server signs its JWTs with (``<home>/secrets.json``, written by up)."""
        return json.loads((self.home / "secrets.json").read_text())["jwt_secret"]

    # -- logs -----------------------------------------------------------------------------------

    def task_logs(self, dag_id: str | None = None, run_id: str | None = None) -> list[Path]:
        """Task log files under ``<home>/airflow/logs`` (one per try), oldest first."""
        root = self.airflow_home / "logs"
        pattern = f"dag_id={dag_id or '*'}/run_id={run_id or '*'}/task_id=*/**/*.log"
        return sorted(root.glob(pattern), key=lambda p: p.stat().st_mtime)

    def dump_task_logs(
        self, dag_id: str | None = None, run_id: str | None = None, lines: int = LOG_TAIL_LINES
    ) -> None:
        """Print the tail of every matching task log."""
        for log in self.task_logs(dag_id, run_id):
            print("\n" + tail(log, lines))

    def dump_logs(self) -> None:
        """Print ``up``'s output and the tail of every server log."""
        self.run.dump_logs()
