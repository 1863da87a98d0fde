"""Run the local stack: an MLflow tracking server and Airflow, SQLite, loopback only.

Commands (``demo`` is the default, so ``--home H`` alone means ``demo --home H``):

  demo    the main command: start the stack in the background if --home has none running (else reuse
          it), run the MLOps demo through Airflow's REST API (example data, backfill of
          mlops_ingest__churn, mlops_train__churn_classifier, drifted days, mlops_drift__churn_classifier
          and the retraining it triggers), print a summary with the wall time of each phase, exit 0 and
          leave the stack running (exit 1 naming the DAG run and task to look at if a step fails).
          Running it again reuses what exists.
  up      start MLflow and Airflow in the foreground, wait until both are healthy, print where to log
          in, then supervise them; Ctrl-C (SIGINT) or SIGTERM stops every process it started and exits 0.
          A server that exits meanwhile is restarted after a short delay (1 s, doubling up to 30 s) with
          one line naming it, its exit status and its log; the others keep running. A server that exits
          more than 5 times within 10 minutes makes ``up`` stop everything and exit 1.
          A second ``up`` on the same --home while a stack runs prints that stack's URLs and exits 1.
  down    stop a stack started by another process or by ``demo`` (through its stack.json), exit 0.
  reset   ``down``, then delete the demo state in --home: ``data/`` (the data root: landing files,
          partitions, reports), ``mlflow/`` (mlflow.db and artifacts), ``airflow/`` (airflow.db,
          airflow.cfg, task logs), ``logs/`` and ``demo.json`` / ``demo-summary.json``. The login
          (``passwords.json``) and ``secrets.json`` are kept.
  status  print the running stack's URLs and health; exit 0 if it runs, 1 if not.
  airflow run the ``airflow`` CLI with the stack's environment, e.g.
          ``airflow connections get mlflow_default -o json``.

State lives in --home (default: <repo>/.stack), private to the user (folders 0700, files 0600):
``airflow/`` (AIRFLOW_HOME), ``mlflow/`` (mlflow.db and artifacts), ``data/`` (the provider's data
root), ``logs/`` (one log file per server, appended to at each start after a line naming the start
time; a log over 20 MiB is moved to ``<name>.log.1`` first), the generated secrets (``passwords.json``
holds the admin password, which is never printed; ``secrets.json``) and, while a stack runs,
``stack.json``. Log in as ``admin`` with the password from ``passwords.json``.

Every Airflow component imports ``airflow_local_settings.py`` (copied into AIRFLOW_HOME/config at each
``up``): on SQLite a transaction that starts with a SAVEPOINT takes the write lock first, and the
scheduler preloads the libraries the tasks import (MLOPS_STACK_PRELOAD=0 in the environment of ``up``
turns that off).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from mlops_stack.environment import airflow_env, venv_bin
from mlops_stack.errors import StackError
from mlops_stack.health import airflow_health, mlflow_healthy
from mlops_stack.paths import DEFAULT_HOME, Paths
from mlops_stack.processes import is_same_process
from mlops_stack.stack import DEFAULT_AIRFLOW_PORT, DEFAULT_MLFLOW_PORT, Lock, Stack, stop_servers
from mlops_stack.state import describe, live_groups, prog, read_state, supervisor_alive

# What ``reset`` deletes from --home (see the module docstring): all demo state, not the login.
RESET_PATHS = ("data", "mlflow", "airflow", "logs", "demo.json", "demo-summary.json")


def home_paths(args: argparse.Namespace) -> Paths:
    """The state directory named by --home."""
    return Paths(Path(args.home).resolve())


def cmd_up(args: argparse.Namespace) -> int:
    """Start the stack in the foreground."""
    return Stack(args).run()


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the demo on the stack of --home, starting the stack if needed."""
    from mlops_stack import demo  # imports the provider's DAG id helpers: only for this command

    return demo.run(args)


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the stack recorded in --home: ask its ``up`` process first, then stop leftovers directly."""
    paths = home_paths(args)
    state = read_state(paths)
    if state is None:
        print(f"No stack running in {paths.home}.")
        return 0
    if supervisor_alive(state):
        print(f"Stopping the stack of pid {state['pid']} ...", flush=True)
        os.kill(state["pid"], signal.SIGTERM)
        deadline = time.monotonic() + args.stop_timeout + 20
        while time.monotonic() < deadline and is_same_process(state["pid"], state.get("start")):
            time.sleep(0.2)
    groups = live_groups(state)
    if groups:
        print(f"Stopping {', '.join(name for name, _ in groups)} ...", flush=True)
        killed = stop_servers(groups, args.stop_timeout)
        if killed:
            print(f"  killed (SIGKILL): {', '.join(killed)}")
    paths.state.unlink(missing_ok=True)
    print("Stopped.")
    return 0


def cmd_reset(args: argparse.Namespace) -> int:
    """Stop the stack if it runs, then delete the demo state (RESET_PATHS) from --home."""
    paths = home_paths(args)
    lock = Lock(paths.lock) if paths.home.exists() else None
    cmd_down(args)
    if lock is not None and not lock.acquire():
        raise StackError(f"an `up` still holds {paths.lock}: stop it first")
    removed = []
    for name in RESET_PATHS:
        target = paths.home / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        else:
            continue
        removed.append(name)
    print(f"Removed from {paths.home}: {', '.join(removed) or 'nothing (no demo state)'}; kept the login.")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print the recorded stack and its live health; 0 if it runs, 1 if not."""
    paths = home_paths(args)
    state = read_state(paths)
    if state is None or not (supervisor_alive(state) or live_groups(state)):
        print(f"No stack running in {paths.home}.")
        return 1
    alive = {name for name, _ in live_groups(state)}
    if supervisor_alive(state):
        print(f"Stack in {paths.home}: {state.get('state')} (pid {state.get('pid')})")
    else:
        print(f"Stack in {paths.home}: orphaned, its `up` process is gone: stop it with `{prog()} down`")
    print(describe(state))
    for rec in state.get("processes", []):
        restarts = f"  (restarted {rec['restarts']}x)" if rec.get("restarts") else ""
        running = "running" if rec["name"] in alive else "gone"
        print(f"  {rec['name']:22} pid {rec['pid']:>7}  {running}{restarts}")
    print(f"  mlflow health: {'ok' if mlflow_healthy(state['ports']['mlflow']) else 'not ok'}")
    print(f"  airflow health: {airflow_health(state['ports']['airflow']) or 'no answer'}")
    return 0


def cmd_airflow(args: argparse.Namespace) -> int:
    """Run the airflow CLI with the running stack's environment (same DB, connections, config)."""
    paths = home_paths(args)
    state = read_state(paths)
    if state is None:
        raise StackError(f"no stack.json in {paths.home}: start the stack first")
    bin_dir = venv_bin()
    env = airflow_env(paths, bin_dir, state["ports"]["airflow"], state["ports"]["mlflow"])
    argv = list(args.airflow_args)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    return subprocess.call([str(bin_dir / "airflow"), *argv], env=env, cwd=paths.airflow_home)


def port_arg(text: str) -> int:
    """argparse type: a TCP port, 0 meaning any free port."""
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port")
    return port


def common_options() -> argparse.ArgumentParser:
    """Options of every command: --home, --stop-timeout."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--home", default=str(DEFAULT_HOME), help="state directory (default: %(default)s)")
    common.add_argument(
        "--stop-timeout", type=float, default=30.0, help="seconds to wait after SIGTERM before SIGKILL"
    )
    return common


def start_options() -> argparse.ArgumentParser:
    """Options of the commands that start a stack: ports and the health timeout."""
    ports = argparse.ArgumentParser(add_help=False)
    ports.add_argument(
        "--airflow-port",
        type=port_arg,
        default=None,
        help=f"Airflow port; default {DEFAULT_AIRFLOW_PORT} or a free one if busy; 0: any free port",
    )
    ports.add_argument(
        "--mlflow-port",
        type=port_arg,
        default=None,
        help=f"MLflow port; default {DEFAULT_MLFLOW_PORT} or a free one if busy; 0: any free port",
    )
    ports.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for health")
    return ports


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (see the module docstring); the program name is STACK_PROG's."""
    parser = argparse.ArgumentParser(
        prog=prog(), description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common, ports = common_options(), start_options()
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", parents=[common, ports], help="start the stack in the foreground")
    up.set_defaults(func=cmd_up)
    demo = sub.add_parser(
        "demo",
        parents=[common, ports],
        help="the default: start the stack if needed, run the demo, print a summary, leave it running",
    )
    demo.add_argument(
        "--end-date",
        default=None,
        help="last drifted day, YYYY-MM-DD, in the past (default: yesterday, UTC, at the first run; "
        "stored in <home>/demo.json and reused)",
    )
    demo.add_argument("--rows", type=int, default=None, help="rows per example day (default: 5000)")
    demo.set_defaults(func=cmd_demo)
    sub.add_parser("down", parents=[common], help="stop the stack (started by demo or up)").set_defaults(
        func=cmd_down
    )
    sub.add_parser(
        "reset",
        parents=[common],
        help="stop the stack, delete the demo state: data/, mlflow/, airflow/, logs/, demo*.json "
        "(keeps the login)",
    ).set_defaults(func=cmd_reset)
    sub.add_parser("status", parents=[common], help="show the running stack").set_defaults(func=cmd_status)
    af = sub.add_parser("airflow", parents=[common], help="run the airflow CLI with the stack's environment")
    af.add_argument("airflow_args", nargs=argparse.REMAINDER, help="arguments of `airflow`")
    af.set_defaults(func=cmd_airflow)
    return parser


def with_default_command(argv: list[str]) -> list[str]:
    """``argv`` with ``demo`` in front when it names no command (nothing, or options other than --help)."""
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        return ["demo", *argv]
    return list(argv)


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``demo`` when no command is given. Everything it creates is private (umask 077)."""
    args = build_parser().parse_args(with_default_command(sys.argv[1:] if argv is None else argv))
    os.umask(0o077)
    try:
        return args.func(args)
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
