"""When a server of a running stack exits: restart it after a growing delay, or give up.

Pure decisions (no processes, no clock of their own), so that they can be tested in milliseconds.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass


@dataclass(frozen=True)
class RestartPolicy:
    """Restart a server up to ``max_restarts`` times within ``window`` seconds.

    The delay before a restart doubles with each exit inside the window, from ``first_delay`` up to
    ``max_delay`` seconds; one more exit inside the window means giving up (and stopping the stack).
    """

    max_restarts: int = 5
    window: float = 600.0
    first_delay: float = 1.0
    max_delay: float = 30.0

    def recent(self, exits: list[float], now: float) -> list[float]:
        """The exit times (monotonic seconds) that fall within the window ending at ``now``."""
        return [t for t in exits if now - t <= self.window]

    def delay(self, exits: list[float], now: float) -> float | None:
        """Seconds to wait before restarting a server that exited at ``exits`` (the last one just now);
        None to give up.
        """
        count = len(self.recent(exits, now))
        if count > self.max_restarts:
            return None
        return min(self.first_delay * 2 ** max(count - 1, 0), self.max_delay)


def exit_status(code: int) -> str:
    """A process's return code in words: ``status 1``, or ``signal SIGKILL`` for a negative code."""
    if code >= 0:
        return f"status {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"
