"""Processes started in a session of their own: start, find, signal and stop them by process group.

Each server leads its own session, so its pid is also its process group and session id; Airflow's task
supervisor puts each task runner into a process group of its own inside that session, so "the group"
here always means the whole session. Start times from /proc guard against pid reuse. Linux /proc is
used when present; elsewhere ``kill(pid, 0)`` is the fallback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import threading
    from collections.abc import Mapping


def start_in_session(
    argv: list[str], *, env: Mapping[str, str], cwd: Path, output: IO[bytes]
) -> tuple[subprocess.Popen, int | None]:
    """Start ``argv`` in a new session, stdout and stderr to ``output``: (process, its start time)."""
    proc = subprocess.Popen(
        argv,
        env=dict(env),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    stat = proc_stat(proc.pid)
    return proc, (stat["start"] if stat else None)


def proc_stat(pid: int) -> dict | None:
    """State, process group, session and start time of ``pid`` from /proc (None if gone/unknown)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return {"state": fields[0], "pgrp": int(fields[2]), "session": int(fields[3]), "start": int(fields[19])}


def session_members(sids: set[int]) -> dict[int, list[int]] | None:
    """Live (non-zombie) pids of each session in ``sids`` (one /proc scan); None without /proc."""
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


def signal_group(pgid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pgid`` and to every other process of its session."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in (session_members({pgid}) or {}).get(pgid, []):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_groups(
    groups: list[tuple[str, int]],
    timeout: float,
    hurry: threading.Event | None = None,
    *,
    leader_first: frozenset[str] = frozenset(),
    signal_again_after: Mapping[str, float] | None = None,
) -> list[str]:
    """Stop each (name, pgid) group within ``timeout`` seconds; return the names that needed SIGKILL.

    SIGTERM goes to each process group, except for the names in ``leader_first``: their leader gets it
    first (so a scheduler lets its running tasks finish), and their group as soon as the leader has
    exited or after half the timeout. Names in ``signal_again_after`` get a second SIGTERM after that
    many seconds. Whatever is left at the deadline, in the group or its session, gets SIGKILL.
    ``hurry`` (e.g. a second Ctrl-C) goes straight to SIGKILL.
    """
    pgids = {pgid for _, pgid in groups}
    group_termed = {pgid for name, pgid in groups if name not in leader_first}
    for name, pgid in groups:
        _send(pgid, signal.SIGTERM, group=name not in leader_first)
    again = {pgid: dict(signal_again_after or {}).get(name) for name, pgid in groups}
    begin = time.monotonic()
    while time.monotonic() < begin + timeout and not (hurry and hurry.is_set()):
        alive = alive_groups(pgids)
        if not alive:
            return []
        elapsed = time.monotonic() - begin
        for pgid in alive - group_termed:
            if elapsed > timeout / 2 or leader_gone(pgid):
                _send(pgid, signal.SIGTERM, group=True)
                group_termed.add(pgid)
        for pgid in alive:
            if (after := again.get(pgid)) is not None and elapsed > after:
                _send(pgid, signal.SIGTERM, group=False)
                again[pgid] = None
        time.sleep(0.2)
    left = kill_groups(pgids)
    return [name for name, pgid in groups if pgid in left]


def kill_groups(pgids: set[int], wait: float = 10.0) -> set[int]:
    """SIGKILL whatever is alive in the groups (and their sessions); wait up to ``wait`` s for it to go.

    Returns the groups that had live processes.
    """
    left = alive_groups(pgids)
    for pgid in left:
        signal_group(pgid, signal.SIGKILL)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and alive_groups(left):
        time.sleep(0.1)
    return left


def _send(pgid: int, sig: int, *, group: bool) -> None:
    """``sig`` to the process group ``pgid`` (``group``) or to its leader only; gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pgid, sig)
        else:
            os.kill(pgid, sig)
