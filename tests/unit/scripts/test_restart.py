"""When a server of a running stack exits: the restart delays, when to give up, the exit in words."""

from __future__ import annotations

import signal

import pytest
from mlops_stack.restart import RestartPolicy, exit_status

pytestmark = pytest.mark.unit


def test_the_delay_doubles_with_each_exit_up_to_the_cap():
    policy = RestartPolicy(max_restarts=10, window=600, first_delay=1, max_delay=8)
    exits: list[float] = []
    delays = []
    for now in (100.0, 101.0, 102.0, 103.0, 104.0, 105.0):
        exits.append(now)
        delays.append(policy.delay(exits, now))
    assert delays == [1, 2, 4, 8, 8, 8]


def test_it_gives_up_after_max_restarts_within_the_window():
    policy = RestartPolicy(max_restarts=3, window=60)
    exits = [0.0, 10.0, 20.0]
    assert policy.delay(exits, 20.0) is not None
    exits.append(30.0)
    assert policy.delay(exits, 30.0) is None


def test_exits_older_than_the_window_are_forgotten():
    policy = RestartPolicy(max_restarts=2, window=60, first_delay=1)
    exits = [0.0, 10.0, 100.0]  # the first two are more than 60 s before the last
    assert policy.recent(exits, 100.0) == [100.0]
    assert policy.delay(exits, 100.0) == 1


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0, "status 0"),
        (3, "status 3"),
        (-signal.SIGKILL, "signal SIGKILL"),
        (-signal.SIGTERM, "signal SIGTERM"),
    ],
)
def test_exit_status_in_words(code, words):
    assert exit_status(code) == words
