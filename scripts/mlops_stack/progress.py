"""What the commands print while they wait: a dot every few seconds, whole lines for events."""

from __future__ import annotations

import time


class Progress:
    """Prints a dot every ``every`` seconds while waiting, and whole lines for events."""

    def __init__(self, every: float = 2.0) -> None:
        self.every = every
        self.last = time.monotonic()
        self.dots = False

    def tick(self) -> None:
        """Print a dot if ``every`` seconds passed since the last output."""
        if time.monotonic() - self.last >= self.every:
            print(".", end="", flush=True)
            self.dots = True
            self.last = time.monotonic()

    def line(self, text: str) -> None:
        """Print ``text`` on a line of its own."""
        if self.dots:
            print()
            self.dots = False
        print(text, flush=True)
        self.last = time.monotonic()
