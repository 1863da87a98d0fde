"""A server of a running stack that exits is restarted, alone, with one line saying so; until it keeps failing.

Real (tiny) processes stand in for MLflow and the scheduler: the supervisor's decisions in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import pytest
from mlops_stack.errors import StackError
from mlops_stack.paths import make_dirs
from mlops_stack.restart import RestartPolicy
from mlops_stack.servers import Server
from mlops_stack.stack import Stack

from tests.support.live_stack import wait_for

pytestmark = pytest.mark.unit


@pytest.fixture
def stack(tmp_path):
    """A Stack whose 'mlflow' exits with status 3 at once and whose 'scheduler' sleeps; stopped at the end."""
    stack = Stack(
        argparse.Namespace(home=str(tmp_path / "home"), stop_timeout=5.0),
        RestartPolicy(max_restarts=2, window=600, first_delay=0.5, max_delay=1.0),
    )
    make_dirs(stack.paths)
    stack.state = {"pid": 0, "processes": []}
    python = sys.executable
    stack.mlflow = Server(
        "mlflow", [python, "-c", "raise SystemExit(3)"], {}, tmp_path, stack.paths.log("mlflow")
    )
    scheduler = [python, "-c", "import time; time.sleep(60)"]
    stack.airflow = [
        Server("airflow-scheduler", scheduler, {}, tmp_path, stack.paths.log("airflow-scheduler"))
    ]
    for server in (stack.mlflow, *stack.airflow):
        stack.launch(server)
    yield stack
    stack.shutdown()


def exit_and_supervise(stack: Stack) -> float:
    """Wait for 'mlflow' to exit, let the supervisor see it; the supervisor's clock."""
    wait_for("mlflow to exit", lambda: stack.mlflow.exited() is not None, 10, interval=0.05)
    now = time.monotonic()
    stack.supervise(now)
    return now


def test_an_exited_server_is_restarted_alone_and_said_so(stack, capsys):
    scheduler = stack.airflow[0]
    first_pid, scheduler_pid = stack.mlflow.pid, scheduler.pid
    now = exit_and_supervise(stack)
    out = capsys.readouterr().out
    assert out == (
        f"mlflow exited with status 3: restarting it in 0.5 s (restart 1; log: {stack.paths.log('mlflow')})\n"
    )
    assert stack.due == {"mlflow": now + 0.5}
    stack.supervise(now + 0.1)  # before its delay: not yet
    assert stack.mlflow.pid == first_pid
    stack.supervise(now + 0.5)
    assert stack.mlflow.pid != first_pid
    assert scheduler.pid == scheduler_pid and scheduler.exited() is None
    recorded = {rec["name"]: rec for rec in json.loads(stack.paths.state.read_text())["processes"]}
    assert recorded["mlflow"]["pid"] == stack.mlflow.pid
    assert recorded["mlflow"]["restarts"] == 1
    assert recorded["airflow-scheduler"]["pid"] == scheduler_pid
    assert stack.paths.log("mlflow").read_text().count("===== mlflow started ") == 2


def test_a_server_that_keeps_exiting_makes_the_stack_give_up(stack, capsys):
    for restart in (1, 2):
        now = exit_and_supervise(stack)
        stack.supervise(now + 1.0)
        assert f"(restart {restart};" in capsys.readouterr().out
    with pytest.raises(StackError, match=r"mlflow exited with status 3, 3 times within 600 s: giving up"):
        exit_and_supervise(stack)
    assert stack.airflow[0].exited() is None  # the stack stops it on the way out (shutdown)
