"""The local stack (``scripts/stack.py up``) for real.

It boots MLflow and Airflow on free loopback ports in a temporary state directory, serves the provider and
the ``mlflow_default`` connection, listens on 127.0.0.1 only, and on Ctrl-C (SIGINT) exits 0 leaving no
process behind. A finaliser kills every process of the stack's sessions whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
STACK = REPO / "scripts" / "stack.py"
HOST = "127.0.0.1"
BOOT_DEADLINE = 300.0
STOP_DEADLINE = 90.0
PROVIDER = "airflow-provider-mlops"
_HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(
    what: str, probe: Callable[[], object], deadline: float, check: Callable[[], None] | None = None
):
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
        time.sleep(0.5)


def http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, object]:
    """One HTTP request (no proxy): (status, decoded JSON or text); status 0 if nothing answered."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with _HTTP.open(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, None
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode("utf-8", "replace")


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


@dataclass
class StackRun:
    """A ``stack.py up`` subprocess and what is known about the servers it started."""

    proc: subprocess.Popen
    home: Path
    output: Path
    started: float
    sids: set[int] = field(default_factory=set)

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
        """Fail at once if the stack script exited."""
        if self.proc.poll() is not None:
            pytest.fail(f"stack.py exited early with status {self.proc.returncode}")

    def stack_py(self, command: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """Run another ``stack.py`` command on the same state directory."""
        return subprocess.run(
            [sys.executable, str(STACK), command, "--home", str(self.home), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=clean_env(),
            check=False,
        )

    def dump_logs(self) -> None:
        """Print the script's output and the tail of every server log (on failure)."""
        print(f"\n===== stack.py output ({self.output}) =====\n{self.output.read_text(errors='replace')}")
        for log in sorted((self.home / "logs").glob("*.log")):
            lines = log.read_text(errors="replace").splitlines()
            print(f"\n===== {log.name} (last 80 of {len(lines)} lines) =====")
            print("\n".join(lines[-80:]))

    def kill_all(self) -> None:
        """SIGKILL every process of the stack's sessions and process groups, then reap the script."""
        sids = self.all_sids()
        for sid in sids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(sid, signal.SIGKILL)
        for proc in session_processes(sids):
            with contextlib.suppress(psutil.Error):
                proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=30)


def clean_env() -> dict[str, str]:
    """This environment without Airflow or MLflow settings a test session may have set."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLFLOW_"))}


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[StackRun]:
    """``stack.py up`` on free ports in a temporary --home, as its own session; killed at the end."""
    home = tmp_path / "stack"
    output = tmp_path / "stack-output.log"
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
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=clean_env(),
            start_new_session=True,
        )
    run = StackRun(proc=proc, home=home, output=output, started=time.monotonic())
    try:
        yield run
    finally:
        run.kill_all()


def test_stack_boots_serves_and_stops_on_ctrl_c(stack: StackRun) -> None:
    """Boot, check every promise of ``up``, then Ctrl-C: exit 0 and nothing left running."""
    try:
        exercise(stack)
    except BaseException:
        stack.dump_logs()
        raise


def exercise(stack: StackRun) -> None:
    """The test's body (see the caller)."""
    state = wait_for(
        "stack.json to say running",
        lambda: (s := stack.state()) and s.get("state") == "running" and s,
        BOOT_DEADLINE,
        stack.check_running,
    )
    boot = time.monotonic() - stack.started
    print(f"\nstack booted in {boot:.1f} s (stack.py reports {state['boot_seconds']} s)")
    wait_for(
        "the login banner", lambda: "Ctrl-C to stop" in stack.output.read_text(), 10, stack.check_running
    )
    airflow, mlflow = state["urls"]["airflow"], state["urls"]["mlflow"]
    assert airflow.startswith(f"http://{HOST}:")
    assert mlflow.startswith(f"http://{HOST}:")

    # Secrets: generated, private.
    for name in ("passwords.json", "secrets.json", "stack.json"):
        assert stat.S_IMODE((stack.home / name).stat().st_mode) == 0o600, name
    password = json.loads((stack.home / "passwords.json").read_text())["admin"]
    assert password == state["password"]
    assert len(json.loads((stack.home / "secrets.json").read_text())["jwt_secret"]) >= 64

    # Airflow: healthy, login works, the provider is installed.
    status, health = http("GET", f"{airflow}/api/v2/monitor/health")
    assert status == 200, health
    assert health["metadatabase"]["status"] == "healthy"
    assert health["scheduler"]["status"] == "healthy"
    status, body = http("POST", f"{airflow}/auth/token", {"username": "admin", "password": password})
    assert status in (200, 201), body
    token = body["access_token"]
    status, body = http("POST", f"{airflow}/auth/token", {"username": "admin", "password": "admin"})
    assert status == 401, "the default password must not work"
    status, body = http("GET", f"{airflow}/api/v2/providers?limit=1000", token=token)
    assert status == 200, body
    providers = {p["package_name"]: p for p in body["providers"]}
    assert PROVIDER in providers, sorted(providers)
    from mlops_provider import __version__

    assert providers[PROVIDER]["version"] == __version__

    # The mlflow_default connection resolves with the stack's environment.
    result = stack.stack_py("airflow", "connections", "get", "mlflow_default", "-o", "json")
    assert result.returncode == 0, result.stderr
    (conn,) = json.loads(result.stdout)
    assert conn["conn_type"] == "mlflow"
    assert conn["host"] == HOST
    assert int(conn["port"]) == state["ports"]["mlflow"]

    # MLflow: healthy.
    status, body = http("GET", f"{mlflow}/health")
    assert status == 200, body

    # Loopback only: every listening socket of every started process.
    listening = {}
    for proc in session_processes(stack.all_sids()):
        try:
            for conn in proc.net_connections(kind="inet"):
                if conn.status == psutil.CONN_LISTEN:
                    listening[(conn.laddr.ip, conn.laddr.port)] = proc.name()
        except psutil.Error:
            continue
    print(f"listening: {listening}")
    assert {port for _, port in listening} >= set(state["ports"].values())
    assert all(ip == HOST for ip, _ in listening), listening

    # status says so; a second `up` on the same home refuses.
    assert stack.stack_py("status").returncode == 0
    second = stack.stack_py("up", "--airflow-port", "0", "--mlflow-port", "0")
    assert second.returncode == 1
    assert "already" in second.stderr

    # Ctrl-C: exit 0, every process of the stack's sessions gone, state removed.
    sids = stack.all_sids()
    began = time.monotonic()
    os.kill(stack.proc.pid, signal.SIGINT)
    try:
        code = stack.proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"stack.py did not exit within {STOP_DEADLINE:.0f} s of SIGINT")
    print(f"stack stopped in {time.monotonic() - began:.1f} s")
    assert code == 0
    wait_for("every stack process to exit", lambda: not session_processes(sids), 15)
    assert not (stack.home / "stack.json").exists()
    assert "Stopped." in stack.output.read_text()
    assert stack.stack_py("status").returncode == 1
