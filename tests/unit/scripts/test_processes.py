"""Process groups: a server and its children in their own session are found, recognised and stopped."""

from __future__ import annotations

import signal
import sys

import pytest
from mlops_stack.processes import (
    alive_groups,
    is_same_process,
    leader_gone,
    session_members,
    start_in_session,
    stop_groups,
)

from tests.support.live_stack import wait_for

pytestmark = pytest.mark.unit

# A leader that starts a child in its session, ignores SIGTERM (so stopping needs SIGKILL) and waits.
STUBBORN = "import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); " + (
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
)


def session_size(sid: int) -> int:
    """How many live processes the session ``sid`` has."""
    return len((session_members({sid}) or {}).get(sid, []))


@pytest.fixture
def start(tmp_path):
    """Start ``python -c CODE`` in a session of its own; SIGKILL whatever is left of it at the end."""
    started = []

    def _start(code: str):
        with open(tmp_path / "out.log", "ab") as out:
            proc, begin = start_in_session([sys.executable, "-c", code], env={}, cwd=tmp_path, output=out)
        started.append(proc)
        return proc, begin

    yield _start
    for proc in started:
        stop_groups([("left", proc.pid)], 0)
        proc.wait(timeout=10)


def test_a_group_that_ignores_sigterm_is_killed_at_the_deadline(start):
    proc, begin = start(STUBBORN)
    assert is_same_process(proc.pid, begin)
    assert not is_same_process(proc.pid, (begin or 0) + 1)  # another start time: a reused pid
    wait_for("the child (SIGTERM ignored by then)", lambda: session_size(proc.pid) == 2, 10, interval=0.05)
    killed = stop_groups([("stubborn", proc.pid)], timeout=0.5)
    assert killed == ["stubborn"]
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert alive_groups({proc.pid}) == set()


def test_a_group_that_obeys_sigterm_stops_without_sigkill(start):
    proc, _ = start("import time; time.sleep(60)")
    assert stop_groups([("sleeper", proc.pid)], timeout=10) == []
    assert proc.wait(timeout=10) == -signal.SIGTERM
    assert leader_gone(proc.pid)


def test_leader_first_signals_only_the_leader_first(start):
    # The leader exits on SIGTERM; its child (same session) is stopped once the leader is gone.
    proc, _ = start(
        "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    )
    wait_for("the child", lambda: session_size(proc.pid) == 2, 10, interval=0.05)
    assert stop_groups([("leader", proc.pid)], timeout=10, leader_first=frozenset({"leader"})) == []
    assert alive_groups({proc.pid}) == set()
