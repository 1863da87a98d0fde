"""The local stack (``python scripts/mlops_stack up``) for real.

It boots MLflow and Airflow on free loopback ports in a temporary state directory, serves the provider and
the ``mlflow_default`` connection, listens on 127.0.0.1 only, keeps its state private and the password out
of its output and logs, restarts MLflow alone when it dies (the Airflow components keep running), and on
Ctrl-C (SIGINT) exits 0 leaving no process behind. A finaliser kills every process of the stack's sessions
whatever happens.

It starts a stack of its own (not the session's ``live_stack``): starting and stopping is what it tests.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from mlops_stack.processes import is_same_process

from tests.support.live_stack import (
    BOOT_DEADLINE,
    HOST,
    STOP_DEADLINE,
    StackRun,
    http,
    session_processes,
    wait_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.integration

PROVIDER = "airflow-provider-mlops"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[StackRun]:
    """``up`` on free ports in a temporary --home, as its own session; killed at the end."""
    run = StackRun.launch(tmp_path / "stack", output=tmp_path / "stack-output.log")
    try:
        yield run
    finally:
        run.kill_all()


def test_stack_boots_serves_survives_an_mlflow_crash_and_stops_on_ctrl_c(stack: StackRun) -> None:
    """Boot, check every promise of ``up``, kill MLflow, then Ctrl-C: exit 0 and nothing left running.

    One stack for all three (a boot takes about a minute on the 2-core machines).
    """
    try:
        state = exercise(stack)
        mlflow_comes_back_alone(stack, state)
        password_is_never_shown(stack)
        stop_on_ctrl_c(stack)
    except BaseException:
        stack.dump_logs()
        raise


def exercise(stack: StackRun) -> dict:
    """Boot and every promise of a running stack; returns stack.json."""
    state = wait_for(
        "stack.json to say running",
        lambda: (s := stack.state()) and s.get("state") == "running" and s,
        BOOT_DEADLINE,
        stack.check_running,
    )
    boot = time.monotonic() - stack.started
    print(f"\nstack booted in {boot:.1f} s (up reports {state['boot_seconds']} s)")
    wait_for(
        "the login banner", lambda: "Ctrl-C to stop" in stack.output.read_text(), 10, stack.check_running
    )
    airflow, mlflow = state["urls"]["airflow"], state["urls"]["mlflow"]
    assert airflow.startswith(f"http://{HOST}:")
    assert mlflow.startswith(f"http://{HOST}:")

    # Secrets and state: generated, private; the password only in passwords.json, which stack.json names.
    for name in ("passwords.json", "secrets.json", "stack.json"):
        assert stat.S_IMODE((stack.home / name).stat().st_mode) == 0o600, name
    for folder in (stack.home, *(p for p in stack.home.iterdir() if p.is_dir())):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for log in (stack.home / "logs").iterdir():
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
    password = json.loads((stack.home / "passwords.json").read_text())["admin"]
    assert "password" not in state
    assert state["passwords_file"] == str(stack.home / "passwords.json")
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

    return state


def mlflow_comes_back_alone(stack: StackRun, state: dict) -> None:
    """SIGKILL MLflow's process group: ``up`` says so in one line and restarts it on the same port;
    every Airflow component keeps its pid and stays healthy.
    """
    before = {rec["name"]: rec for rec in state["processes"]}
    mlflow = before["mlflow"]
    os.killpg(mlflow["pgid"], signal.SIGKILL)  # a server the stack started, by its recorded group
    wait_for(
        "the restart line",
        lambda: "mlflow exited with signal SIGKILL: restarting it in" in stack.output.read_text(),
        30,
        stack.check_running,
    )
    line = next(x for x in stack.output.read_text().splitlines() if x.startswith("mlflow exited"))
    assert line.endswith(f"(restart 1; log: {stack.home / 'logs' / 'mlflow.log'})"), line
    after = wait_for(
        "MLflow to be restarted and recorded",
        lambda: (
            (s := stack.state())
            and {r["name"]: r for r in s["processes"]}.get("mlflow", {}).get("restarts")
            and s
        ),
        30,
        stack.check_running,
    )
    records = {rec["name"]: rec for rec in after["processes"]}
    assert records["mlflow"]["pid"] != mlflow["pid"]
    wait_for(
        "MLflow /health after the restart",
        lambda: http("GET", f"{state['urls']['mlflow']}/health")[0] == 200,
        120,
        stack.check_running,
    )
    for name in ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        assert records[name]["pid"] == before[name]["pid"], name
        assert is_same_process(before[name]["pid"], before[name]["start"]), name
        assert records[name]["restarts"] == 0, name
    status, health = http("GET", f"{state['urls']['airflow']}/api/v2/monitor/health")
    assert status == 200 and health["scheduler"]["status"] == "healthy", health
    assert (stack.home / "logs" / "mlflow.log").read_text().count("===== mlflow started ") == 2


def password_is_never_shown(stack: StackRun) -> None:
    """The admin password appears neither in ``up``'s output nor in any log nor in stack.json."""
    password = json.loads((stack.home / "passwords.json").read_text())["admin"]
    assert password not in stack.output.read_text()
    assert f"password in {stack.home / 'passwords.json'}" in stack.output.read_text()
    for log in (stack.home / "logs").iterdir():
        assert password not in log.read_text(errors="replace"), log
    assert password not in (stack.home / "stack.json").read_text()
    assert password not in stack.stack_py("status").stdout


def stop_on_ctrl_c(stack: StackRun) -> None:
    """Ctrl-C: exit 0, every process of the stack's sessions gone, state removed."""
    sids = stack.all_sids()
    began = time.monotonic()
    os.kill(stack.proc.pid, signal.SIGINT)
    try:
        code = stack.proc.wait(timeout=STOP_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"up did not exit within {STOP_DEADLINE:.0f} s of SIGINT")
    print(f"stack stopped in {time.monotonic() - began:.1f} s")
    assert code == 0
    wait_for("every stack process to exit", lambda: not session_processes(sids), 15)
    assert not (stack.home / "stack.json").exists()
    assert "Stopped." in stack.output.read_text()
    assert stack.stack_py("status").returncode == 1
