"""Server logs: opened for appending (a restart keeps what came before), rotated when large, private.

Each start writes a separator line naming the server and the start time, so one file tells the story
of every (re)start. A log over ``max_bytes`` when a server starts is moved to ``<name>.log.1`` (one
older generation is kept) and a new file begins.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

MAX_LOG_BYTES = 20 * 1024 * 1024
TAIL_LINES = 60


def rotate_if_large(path: Path, max_bytes: int = MAX_LOG_BYTES) -> bool:
    """Move ``path`` to ``<path>.1`` (replacing an older one) if it holds more than ``max_bytes``."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if size <= max_bytes:
        return False
    os.replace(path, path.with_name(path.name + ".1"))
    return True


def separator(name: str, now: dt.datetime | None = None) -> str:
    """The line written before each start of ``name``."""
    when = (now or dt.datetime.now(dt.timezone.utc)).isoformat(timespec="seconds")
    return f"===== {name} started {when} =====\n"


def open_log(path: Path, name: str, max_bytes: int = MAX_LOG_BYTES) -> IO[bytes]:
    """Open ``path`` for appending (mode 0600, rotated first if large) after a separator line for ``name``."""
    rotate_if_large(path, max_bytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)  # also a log left world-readable by an older version
    handle = os.fdopen(fd, "ab")
    handle.write(separator(name).encode())
    handle.flush()
    return handle


def log_tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a log file (empty if it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def print_tail(name: str, path: Path) -> None:
    """Print the end of a server's log to stderr, framed so it stands out."""
    print(f"\n----- last lines of {path} ({name}) -----", file=sys.stderr)
    print(log_tail(path) or "(empty)", file=sys.stderr)
    print("----- end -----", file=sys.stderr, flush=True)
