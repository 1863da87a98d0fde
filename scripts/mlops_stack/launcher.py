"""The demo's stack: reuse the one running from ``--home``, or start ``up`` detached and wait for it.

A detached ``up`` runs in a session of its own with its output appended to ``<home>/logs/stack.log``
(the demo relays its progress lines); it keeps running after the demo.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_stack.errors import DemoError
from mlops_stack.health import airflow_healthy, mlflow_healthy
from mlops_stack.logs import open_log, print_tail
from mlops_stack.paths import make_dirs
from mlops_stack.state import home_flag, live_groups, prog, read_state, supervisor_alive

if TYPE_CHECKING:
    import argparse

    from mlops_stack.paths import Paths
    from mlops_stack.progress import Progress

PACKAGE = Path(__file__).resolve().parent  # ``python <PACKAGE>`` runs the command line


def stack_healthy(state: dict) -> bool:
    """Whether the recorded stack says ``running`` and MLflow and Airflow answer healthy."""
    return (
        state.get("state") == "running"
        and mlflow_healthy(state["ports"]["mlflow"])
        and airflow_healthy(state["ports"]["airflow"])
    )


def wait_for_running_stack(args: argparse.Namespace, paths: Paths, state: dict, progress: Progress) -> dict:
    """Wait until the stack of a live ``up`` (perhaps still booting) is running and healthy."""
    progress.line(f"Reusing the stack of pid {state['pid']} in {paths.home}.")
    flag = home_flag(paths.home)
    end = time.monotonic() + args.timeout
    while not stack_healthy(state):
        if not supervisor_alive(state) or time.monotonic() > end:
            raise DemoError(
                f"the stack in {paths.home} is not healthy; see `{prog()} status{flag}`, "
                f"or stop it: {prog()} down{flag}"
            )
        progress.tick()
        time.sleep(1.0)
        state = read_state(paths) or state
    return state


def up_command(args: argparse.Namespace, paths: Paths) -> list[str]:
    """``python <package> up`` with the demo's home, ports and timeout."""
    argv = [sys.executable, str(PACKAGE), "up", "--home", str(paths.home)]
    for flag, value in (("--airflow-port", args.airflow_port), ("--mlflow-port", args.mlflow_port)):
        if value is not None:
            argv += [flag, str(value)]
    return [*argv, "--timeout", str(args.timeout)]


def relay(line: str) -> bool:
    """Whether a line of the detached ``up``'s output is worth repeating (its progress, where to log in)."""
    return bool(line.strip(" .")) and line.lstrip(".").startswith(("  ", "Starting", "error"))


def start_detached(args: argparse.Namespace, paths: Paths, progress: Progress) -> dict:
    """Start ``up`` in a session of its own and wait until stack.json says it runs; its state."""
    make_dirs(paths)
    out = paths.logs / "stack.log"
    progress.line(f"Starting the stack in the background (its output: {out}) ...")
    with open_log(out, "stack up") as handle:
        offset = handle.tell()
        proc = subprocess.Popen(
            up_command(args, paths),
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    end = time.monotonic() + args.timeout + 30
    with open(out, "rb") as reader:
        reader.seek(offset)
        pending = ""
        while True:
            pending += reader.read().decode("utf-8", "replace")
            *lines, pending = pending.split("\n")
            for line in lines:
                if relay(line):
                    progress.line("  " + line.lstrip(".").rstrip())
            state = read_state(paths)
            if state and state.get("state") == "running" and state.get("pid") == proc.pid:
                return state
            if proc.poll() is not None:
                print_tail("up", out)
                raise DemoError(f"the stack did not start (exit status {proc.returncode}); its output: {out}")
            if time.monotonic() > end:
                raise DemoError(f"the stack is not up after {args.timeout:.0f} s; its output: {out}")
            progress.tick()
            time.sleep(0.5)


def ensure_stack(args: argparse.Namespace, paths: Paths, progress: Progress) -> tuple[dict, bool]:
    """The running stack of ``paths.home`` (reused), or a new one started detached; (state, started)."""
    state = read_state(paths)
    if state and supervisor_alive(state):
        return wait_for_running_stack(args, paths, state, progress), False
    if state and live_groups(state):
        raise DemoError(
            f"servers of an earlier stack still run from {paths.home} without their `up` process; "
            f"stop them first: {prog()} down{home_flag(paths.home)}"
        )
    return start_detached(args, paths, progress), True
