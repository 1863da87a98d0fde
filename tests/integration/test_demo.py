"""The demo command (``python scripts/mlops_stack demo``, what ``scripts/run-stack`` runs) end to end.

It runs the demo against a fresh temporary ``--home`` on free loopback ports: the demo starts the stack
detached, drives the whole loop through the REST API and exits 0 with a summary, leaving the stack
running. The test checks the summary's facts (``<home>/demo-summary.json`` and the printed text), runs
the demo a second time (everything is reused), then stops the stack with ``down`` and kills by
PID whatever would be left of the stack's sessions.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import TYPE_CHECKING

import psutil
import pytest

from mlops_provider.pipelines.ids import train_dag_id
from tests.support.live_stack import StackRun, session_processes, tail, wait_for

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

DEMO_DEADLINE = 600.0  # the demo's own goal is 5 minutes on an idle 2-core machine, boot included
SECOND_RUN_DEADLINE = 120.0
MODEL = "churn_classifier"


def stack_py(home: Path, command: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """``python scripts/mlops_stack COMMAND --home HOME ARGS`` (output captured), through the live-stack helper."""
    runner = StackRun(proc=None, home=home, output=home.with_name("unused.log"), started=0.0)  # type: ignore[arg-type]
    return runner.stack_py(command, *args, timeout=timeout)


def run_demo(home: Path, deadline: float) -> tuple[subprocess.CompletedProcess, float]:
    """``demo`` on free ports with state in ``home``; (result with its output, wall seconds)."""
    began = time.monotonic()
    result = stack_py(home, "demo", "--airflow-port", "0", "--mlflow-port", "0", timeout=deadline)
    return result, time.monotonic() - began


def stack_sessions(home: Path) -> set[int]:
    """The sessions of the detached ``up`` process and of every server it recorded."""
    try:
        state = json.loads((home / "stack.json").read_text())
    except (OSError, ValueError):
        return set()
    return {state["pid"], *(rec["pgid"] for rec in state.get("processes", []))}


def dump(home: Path, output: Path) -> None:
    """Print the demo's output, the stack's output and every server and task log tail."""
    text = output.read_text(errors="replace") if output.exists() else "(none)"
    print(f"\n===== demo output ({output}) =====\n{text}")
    for log in sorted((home / "logs").glob("*.log")):
        print("\n" + tail(log))
    for log in sorted((home / "airflow" / "logs").glob("dag_id=*/**/*.log")):
        if '"level":"error"' in log.read_text(errors="replace"):
            print("\n" + tail(log, 40))


def kill_sessions(sids: set[int]) -> None:
    """SIGKILL, by PID, every live process of the sessions ``sids`` (each led by a process we started)."""
    for proc in session_processes(sids):
        with contextlib.suppress(psutil.Error):
            proc.kill()
    wait_for("the killed processes to go", lambda: not session_processes(sids), 30)


@pytest.fixture
def demo_home(tmp_path: Path) -> Iterator[tuple[Path, set[int]]]:
    """A fresh --home; at the end ``down`` and SIGKILL of whatever is left, by PID."""
    home = tmp_path / "stack"
    sids: set[int] = set()
    try:
        yield home, sids
    finally:
        sids |= stack_sessions(home)
        stack_py(home, "down")
        kill_sessions(sids)


def test_demo_runs_the_whole_loop_and_a_second_run_reuses_it(demo_home, tmp_path: Path) -> None:
    home, sids = demo_home
    output = tmp_path / "demo-1.log"
    try:
        result, seconds = run_demo(home, DEMO_DEADLINE)
        sids |= stack_sessions(home)
        text = result.stdout + result.stderr
        output.write_text(text)
        print(f"\ndemo finished in {seconds:.1f} s with status {result.returncode}\n{text[-4000:]}")
        assert result.returncode == 0
        facts = json.loads((home / "demo-summary.json").read_text())

        # 14 clean + 3 drifted days validated, none quarantined.
        assert len(facts["validated"]) == 17
        assert facts["validated"][0] == facts["days"]["clean"][0]
        assert facts["validated"][-1] == facts["days"]["drifted"][1]
        assert facts["quarantined"] == []
        # At least two versions, one of them the champion.
        versions = facts["models"]
        assert len(versions) >= 2, versions
        assert sum("champion" in v["aliases"] for v in versions) == 1, versions
        # The drift check saw drift and its retraining run succeeded.
        assert facts["drift"]["drifted"] is True
        assert len(facts["drift"]["drifted_features"]) >= 5
        assert facts["retrain"]["run_id"].startswith(f"drift__{MODEL}__")
        assert facts["retrain"]["state"] == "success"
        # ... in the training DAG generated for the model file (include/models/churn.yaml).
        assert f"Retrain    {train_dag_id(MODEL)} run {facts['retrain']['run_id']}: success" in text
        assert (home / "data" / "churn" / "reports" / "drift" / f"ds={facts['drift']['check_date']}").is_dir()
        # The report's address is the one the drift operator pushed, served by the API server.
        assert facts["drift"]["report_url"].startswith("http://127.0.0.1:")
        assert facts["drift"]["report_url"].endswith(
            f"/mlops/reports/churn/drift/{facts['drift']['check_date']}/report.html"
        )
        # The champion's metric before the change, after it and after retraining, in numbers.
        quality = facts["quality"]
        scores = ("before_change", "after_change_realised", "after_change_holdout", "after_retraining")
        assert all(0.0 < quality[key] <= 1.0 for key in scores), quality
        if quality["retrained_is_champion"]:  # the gate's own rule, on the same post-change holdout
            assert quality["after_retraining"] > quality["after_change_holdout"], quality
        assert f"Quality    {quality['metric']} of the champion" in text
        # The printed summary: timings by phase, URLs and login, how to stop.
        for phase in ("boot", "data", "backfill", "train", "drift + retrain", "total"):
            assert phase in facts["timings"], facts["timings"]
        assert "Timings" in text and "Airflow UI" in text
        assert f"admin, password in {home / 'passwords.json'}" in text
        assert "mlops_stack down" in text or "run-stack down" in text
        # The password is in passwords.json only: never printed, never in a log.
        password = json.loads((home / "passwords.json").read_text())["admin"]
        assert password not in text
        for log in (home / "logs").iterdir():
            assert password not in log.read_text(errors="replace"), log
        # The stack keeps running after the demo.
        assert stack_py(home, "status").returncode == 0
        # The demo's own runs never hold a logical date the scheduler wants: no "run already exists"
        # warning every scheduler loop (a manual drift run at the scheduled date caused ~1 a second).
        scheduler_log = (home / "logs" / "airflow-scheduler.log").read_text()
        assert scheduler_log.count("run already exists; skipping dagrun creation") <= 2

        # A second run reuses the stack and everything the first one made.
        second, seconds = run_demo(home, SECOND_RUN_DEADLINE)
        second_text = second.stdout + second.stderr
        print(f"\nsecond demo run: {seconds:.1f} s, status {second.returncode}\n{second_text[-2500:]}")
        assert second.returncode == 0
        assert "Reusing the stack" in second_text
        again = json.loads((home / "demo-summary.json").read_text())
        assert again["validated"] == facts["validated"]
        assert [v["version"] for v in again["models"]] == [v["version"] for v in versions]
        assert again["retrain"] == facts["retrain"]
    except BaseException:
        dump(home, output)
        raise

    # down stops every process the demo started.
    sids |= stack_sessions(home)
    down = stack_py(home, "down", timeout=180)
    assert down.returncode == 0, down.stderr
    wait_for("every stack process to exit", lambda: not session_processes(sids), 30)

    # reset deletes the demo state and keeps the login.
    reset = stack_py(home, "reset")
    assert reset.returncode == 0, reset.stderr
    for name in ("data", "mlflow", "airflow", "logs", "demo.json", "demo-summary.json"):
        assert not (home / name).exists(), name
    assert (home / "passwords.json").exists()
