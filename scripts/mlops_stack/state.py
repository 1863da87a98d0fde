"""stack.json, the record of a running stack (pids, process groups, ports, URLs), and its description.

It never holds the password: :func:`describe` and every message name the passwords file instead.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_stack.paths import DEFAULT_HOME, write_private
from mlops_stack.processes import alive_groups, is_same_process, leader_gone

if TYPE_CHECKING:
    from mlops_stack.paths import Paths


def write_state(paths: Paths, state: dict) -> None:
    """Atomically replace stack.json (mode 0600)."""
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
        # A pid is not reused while it still names a process group or session, so a group whose
        # leader has exited but which still has members is ours; a live leader must match its start.
        ours = is_same_process(rec["pid"], rec.get("start")) or leader_gone(rec["pid"])
        if ours and rec["pgid"] in alive:
            groups.append((rec["name"], rec["pgid"]))
    return groups


def supervisor_alive(state: dict) -> bool:
    """Whether the ``up`` process that wrote ``state`` still runs."""
    pid = state.get("pid")
    return (
        isinstance(pid, int) and pid > 0 and pid != os.getpid() and is_same_process(pid, state.get("start"))
    )


def prog() -> str:
    """How the user called us (scripts/run-stack sets STACK_PROG), for help and hints in messages."""
    return os.environ.get("STACK_PROG") or "python scripts/mlops_stack"


def home_flag(home: Path) -> str:
    """`` --home H`` unless ``home`` is the default state directory."""
    return "" if home == DEFAULT_HOME else f" --home {home}"


def describe(state: dict) -> str:
    """The human summary of a stack: where to log in (user; the password's file) and where things are."""
    home = Path(state["home"])
    return "\n".join(
        [
            f"  Airflow UI   {state['urls']['airflow']}",
            f"    login      {state['user']}, password in {state['passwords_file']}",
            f"  MLflow UI    {state['urls']['mlflow']}",
            f"  Data root    {state['data_root']}",
            f"  Logs         {home / 'logs'}",
            f"  Airflow CLI  {prog()} airflow{home_flag(home)} <args>   (runs with the stack's environment)",
        ]
    )
