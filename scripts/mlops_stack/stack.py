"""The ``up`` command: start MLflow and Airflow, wait until healthy, supervise them, stop them.

While the stack runs, a server that exits is restarted on its own (after a delay that grows with each
exit, see :class:`~mlops_stack.restart.RestartPolicy`) and one line says which server, how it exited
and where its log is; the other servers keep running. Only a server that keeps exiting makes the stack
give up and stop everything. At boot, a server that exits is an error at once.

``up`` copies ``airflow_local_settings.py`` into AIRFLOW_HOME/config, which every Airflow component
imports (see that module).
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_stack.credentials import ADMIN_USER
from mlops_stack.environment import airflow_env, install_local_settings, mlflow_env, venv_bin
from mlops_stack.errors import StackError
from mlops_stack.health import airflow_health, airflow_healthy, mlflow_healthy
from mlops_stack.logs import print_tail
from mlops_stack.paths import Paths, make_dirs
from mlops_stack.ports import HOST, pick_ports
from mlops_stack.processes import alive_groups, proc_stat, stop_groups
from mlops_stack.progress import Progress
from mlops_stack.restart import RestartPolicy, exit_status
from mlops_stack.servers import (
    LEADER_FIRST,
    SIGNAL_AGAIN_AFTER,
    Server,
    airflow_servers,
    migrate_server,
    mlflow_server,
)
from mlops_stack.state import (
    describe,
    home_flag,
    live_groups,
    prog,
    read_state,
    supervisor_alive,
    write_state,
)

if TYPE_CHECKING:
    import argparse

DEFAULT_AIRFLOW_PORT = 8080
DEFAULT_MLFLOW_PORT = 5000
# Seconds to stop what is left of a server's session before it is restarted.
LEFTOVER_STOP_TIMEOUT = 10.0
# What boot prints when each of its waits is over.
READY = {"database": "airflow database ready", "mlflow": "mlflow healthy", "airflow": "airflow healthy"}


def stop_servers(
    groups: list[tuple[str, int]], timeout: float, hurry: threading.Event | None = None
) -> list[str]:
    """Stop the (name, pgid) groups of the stack's servers the way each needs; the names SIGKILLed."""
    return stop_groups(
        groups, timeout, hurry, leader_first=LEADER_FIRST, signal_again_after=SIGNAL_AGAIN_AFTER
    )


class Lock:
    """An exclusive, non-blocking flock held while ``up`` runs (released by the kernel on any exit)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: Any = None

    def acquire(self) -> bool:
        """Take the lock; False if another process holds it."""
        import fcntl

        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.handle = os.fdopen(fd, "a")  # held for the life of the process
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                self.handle.close()
                self.handle = None
                return False
            raise
        return True


class Stack:
    """The ``up`` command: start, wait healthy, supervise until a signal, stop."""

    def __init__(self, args: argparse.Namespace, policy: RestartPolicy | None = None) -> None:
        self.args = args
        self.paths = Paths(Path(args.home).resolve())
        self.policy = policy or RestartPolicy()
        self.servers: list[Server] = []
        self.due: dict[str, float] = {}  # server name -> monotonic time of its pending restart
        self.stop = threading.Event()
        self.hurry = threading.Event()
        self.state: dict = {}
        self.ports: dict[str, int] = {}
        self.progress = Progress()

    def on_signal(self, signum: int, _frame: object) -> None:
        """First SIGINT/SIGTERM: stop gracefully. Second: stop now (SIGKILL)."""
        if self.stop.is_set():
            self.hurry.set()
        self.stop.set()

    def refuse_if_running(self) -> None:
        """Exit 1 with the running stack's URLs if this --home already has one."""
        state = read_state(self.paths)
        if state and (supervisor_alive(state) or live_groups(state)):
            if state.get("state") == "running":
                print(f"A stack already runs from {self.paths.home}:\n{describe(state)}", file=sys.stderr)
            alive = ", ".join(name for name, _ in live_groups(state)) or "none"
            raise StackError(
                f"a stack (pid {state.get('pid')}, servers alive: {alive}) already uses {self.paths.home}; "
                f"stop it first: {prog()} down{home_flag(self.paths.home)}"
            )
        if state:
            self.paths.state.unlink(missing_ok=True)  # stale: left by a stack that was killed

    def plan(self) -> None:
        """Pick ports, write secrets and settings, and describe the servers to start."""
        bin_dir = venv_bin()
        self.ports = pick_ports(
            {"airflow": self.args.airflow_port, "mlflow": self.args.mlflow_port},
            {"airflow": DEFAULT_AIRFLOW_PORT, "mlflow": DEFAULT_MLFLOW_PORT},
        )
        if self.ports["airflow"] == self.ports["mlflow"]:
            raise StackError("Airflow and MLflow cannot share a port")
        install_local_settings(self.paths)
        af_env = airflow_env(self.paths, bin_dir, self.ports["airflow"], self.ports["mlflow"])
        self.mlflow = mlflow_server(self.paths, bin_dir, self.ports["mlflow"], mlflow_env(bin_dir))
        self.migrate = migrate_server(self.paths, bin_dir, af_env)
        self.airflow = airflow_servers(self.paths, bin_dir, af_env)
        self.state = {
            "pid": os.getpid(),
            "start": (proc_stat(os.getpid()) or {}).get("start"),
            "state": "starting",
            "home": str(self.paths.home),
            "ports": self.ports,
            "urls": {name: f"http://{HOST}:{port}" for name, port in self.ports.items()},
            "user": ADMIN_USER,
            "passwords_file": str(self.paths.passwords),
            "data_root": self.paths.data.as_uri(),
            "processes": [],
        }

    def record(self) -> None:
        """Write the running servers into stack.json (so ``down`` can stop even a booting stack)."""
        self.state["processes"] = [s.record() for s in self.servers if s.exited() is None]
        write_state(self.paths, self.state)

    def launch(self, server: Server) -> None:
        """Start ``server`` and record it in stack.json at once."""
        server.launch()
        if server not in self.servers:
            self.servers.append(server)
        self.record()

    def check_alive(self, waiting_for: list[Server]) -> None:
        """Raise (after printing its log) if a server exited; a finished migration is expected."""
        for server in waiting_for:
            code = server.exited()
            if code is not None and not (server is self.migrate and code == 0):
                print_tail(server.name, server.log)
                raise StackError(f"{server.name} exited with {exit_status(code)} (log: {server.log})")

    def boot(self) -> float | None:
        """Start everything and wait until healthy; the boot time in seconds, None if interrupted."""
        begin = time.monotonic()
        self.progress.line(
            f"Starting MLflow on {self.state['urls']['mlflow']} and Airflow on "
            f"{self.state['urls']['airflow']} (state in {self.paths.home}, logs in {self.paths.logs})"
        )
        self.launch(self.mlflow)
        self.launch(self.migrate)
        pending = {"mlflow", "database"}
        while pending:
            if self.stop.is_set():
                self.progress.line("Interrupted while starting.")
                return None
            self.check_alive(list(self.servers))
            ready = self.newly_ready(pending)
            for name in ready:
                pending.discard(name)
                self.progress.line(f"  {READY[name]} ({time.monotonic() - begin:.1f} s)")
                if name == "database":
                    for server in self.airflow:
                        self.launch(server)
                    pending.add("airflow")
            if pending and time.monotonic() > begin + self.args.timeout:
                self.explain_unhealthy(pending)
                raise StackError(f"not healthy after {self.args.timeout:.0f} s: {', '.join(sorted(pending))}")
            if pending and not ready:
                self.progress.tick()
                self.stop.wait(0.5)
        return time.monotonic() - begin

    def newly_ready(self, pending: set[str]) -> list[str]:
        """Which of ``pending`` (database, mlflow, airflow) are ready now."""
        checks = {
            "database": lambda: self.migrate.exited() == 0,
            "mlflow": lambda: mlflow_healthy(self.ports["mlflow"]),
            "airflow": lambda: airflow_healthy(self.ports["airflow"]),
        }
        return [name for name in ("database", "mlflow", "airflow") if name in pending and checks[name]()]

    def explain_unhealthy(self, pending: set[str]) -> None:
        """Print the health and the log tails of what did not become ready in time."""
        if "airflow" in pending:
            self.progress.line(f"  airflow health: {airflow_health(self.ports['airflow']) or 'no answer'}")
        servers = {"mlflow": [self.mlflow], "database": [self.migrate], "airflow": self.airflow}
        for name in sorted(pending):
            for server in servers[name]:
                print_tail(server.name, server.log)

    def serve(self) -> None:
        """Supervise the servers until a signal (see :meth:`supervise`)."""
        while not self.stop.wait(1.0):
            self.supervise(time.monotonic())

    def supervise(self, now: float) -> None:
        """Restart the servers whose delay is over; schedule a restart for each that exited.

        Raises StackError (the stack then stops) when a server exited more often than the policy allows.
        """
        for server in [self.mlflow, *self.airflow]:
            if server.name in self.due:
                if now >= self.due[server.name]:
                    del self.due[server.name]
                    self.launch(server)
                continue
            code = server.exited()
            if code is not None:
                self.schedule_restart(server, code, now)

    def schedule_restart(self, server: Server, code: int, now: float) -> None:
        """Stop what is left of ``server``'s session and restart it later, saying so in one line."""
        server.exits.append(now)
        delay = self.policy.delay(server.exits, now)
        if delay is None:
            print_tail(server.name, server.log)
            times = len(self.policy.recent(server.exits, now))
            raise StackError(
                f"{server.name} exited with {exit_status(code)}, {times} times within "
                f"{self.policy.window:.0f} s: giving up (log: {server.log})"
            )
        stop_servers([(server.name, server.pid)], LEFTOVER_STOP_TIMEOUT)
        self.record()
        self.due[server.name] = now + delay
        self.progress.line(
            f"{server.name} exited with {exit_status(code)}: restarting it in {delay:g} s "
            f"(restart {len(server.exits)}; log: {server.log})"
        )

    def shutdown(self) -> None:
        """Stop every started server's process group and remove stack.json."""
        running = alive_groups({s.pid for s in self.servers})
        groups = [(s.name, s.pid) for s in self.servers if s.pid in running]
        if groups:
            self.progress.line(f"Stopping {', '.join(name for name, _ in groups)} ...")
            killed = stop_servers(groups, self.args.stop_timeout, self.hurry)
            for server in self.servers:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    server.wait(timeout=5)  # reap the leaders
            if killed:
                self.progress.line(
                    f"  killed (SIGKILL) after {self.args.stop_timeout:.0f} s: {', '.join(killed)}"
                )
        self.paths.state.unlink(missing_ok=True)
        self.progress.line("Stopped.")

    def run(self) -> int:
        """The whole ``up`` command; returns the exit status."""
        make_dirs(self.paths)
        lock = Lock(self.paths.lock)
        if not lock.acquire():
            self.refuse_if_running()  # raises when it finds the stack the lock-holder runs
            raise StackError(f"another `up` is starting a stack in {self.paths.home}")
        self.refuse_if_running()
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self.on_signal)
        self.plan()
        try:
            return self.boot_and_serve()
        except StackError as exc:
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 1
        finally:
            self.shutdown()

    def boot_and_serve(self) -> int:
        """Boot, say where to log in, supervise until a signal; 0 (also when interrupted at boot)."""
        boot_time = self.boot()
        if boot_time is None:
            return 0
        self.state["state"] = "running"
        self.state["boot_seconds"] = round(boot_time, 1)
        write_state(self.paths, self.state)
        self.progress.line(
            f"\nStack is up after {boot_time:.1f} s.\n{describe(self.state)}\n\nCtrl-C to stop."
        )
        self.serve()
        return 0
