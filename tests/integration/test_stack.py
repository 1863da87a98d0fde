"""The local stack (``scripts/stack.py up``) for real.

It boots MLflow and Airflow on free loopback ports in a temporary state directory, serves the provider and
the ``mlflow_default`` connection, listens on 127.0.0.1 only, and on Ctrl-C (SIGINT) exits 0 leaving no
process behind. A finaliser kills every process of the stack's sessions whatever happens.

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
    """``stack.py up`` on free ports in a temporary --home, as its own session; killed at the end."""
    run = StackRun.launch(tmp_path / "stack", output=tmp_path / "stack-output.log")
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
