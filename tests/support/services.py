"""Start real servers for tests in their own process groups, wait for health, stop them by PID.

Starting and stopping are the local stack's own helpers (``mlops_stack.processes``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlops_stack.processes import start_in_session, stop_groups
from mlops_stack.rest import http

if TYPE_CHECKING:
    from pathlib import Path


def free_port() -> int:
    """Return a TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Service:
    """A server process started in a new session (its PID is its process group id)."""

    name: str
    process: subprocess.Popen
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 60) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left after ``timeout``."""
        stop_groups([(self.name, self.pid)], timeout)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start_service(name: str, argv: list[str], *, env: dict[str, str], log_dir: Path, cwd: Path) -> Service:
    """Start ``argv`` with its output in ``log_dir/<name>.log``, in a process group of its own."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process, _ = start_in_session(argv, env=env, cwd=cwd, output=log)
    return Service(name=name, process=process, log_path=log_path)


def wait_until_healthy(service: Service, url: str, deadline_s: float) -> None:
    """Poll ``url`` until it answers 200; fail with the server's log if it dies or the deadline passes."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with {service.process.returncode}:\n{service.log_tail()}"
            )
        if http("GET", url, timeout=2)[0] == 200:
            return
        time.sleep(0.25)
    raise TimeoutError(f"{service.name} not healthy at {url} after {deadline_s:.0f} s:\n{service.log_tail()}")


def child_env(**overrides: str) -> dict[str, str]:
    """Return a copy of this process's environment with ``overrides``, for a child process only."""
    env = dict(os.environ)
    env.update(overrides)
    return env
