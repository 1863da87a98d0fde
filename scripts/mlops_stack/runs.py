"""Airflow's DAG runs as the demo needs them, over REST: find, trigger, backfill, wait for, explain.

Every wait is a poll with a deadline that prints the runs' states as they change; a failed run becomes
a :class:`~mlops_stack.errors.DemoError` naming the failed task and its log, whose end is printed.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlops_stack.errors import DemoError
from mlops_stack.logs import log_tail
from mlops_stack.plan import midnight
from mlops_stack.rest import AirflowClient, quote
from mlops_stack.state import supervisor_alive

if TYPE_CHECKING:
    from pathlib import Path

    from mlops_stack.paths import Paths
    from mlops_stack.progress import Progress

PARSE_DEADLINE = 180.0
POLL = 2.0
REPORT_EVERY = 15.0  # seconds between progress lines when nothing changes
FAILED_TI = {"failed", "upstream_failed"}
LOG_LINES = 25


@dataclass
class DagRuns:
    """The DAG runs of the stack described by ``state`` (stack.json), through ``rest``."""

    rest: AirflowClient
    paths: Paths
    state: dict
    progress: Progress

    def say(self, text: str) -> None:
        """Print ``text`` on a line of its own."""
        self.progress.line(text)

    def wait_parsed(self, dag_ids: list[str]) -> None:
        """Wait until the dag-processor has parsed the DAGs (GET /api/v2/dags/{id} answers 200)."""
        end = time.monotonic() + PARSE_DEADLINE
        missing = list(dag_ids)
        while missing:
            missing = [d for d in missing if self.rest.request("GET", f"/api/v2/dags/{d}")[0] != 200]
            if not missing:
                return
            if time.monotonic() > end:
                errors = self.rest.api("GET", "/api/v2/importErrors")
                raise DemoError(
                    f"Airflow has not parsed {', '.join(missing)} after {PARSE_DEADLINE:.0f} s; "
                    f"import errors: {errors}; dag-processor log: {self.paths.log('airflow-dag-processor')}"
                )
            self.progress.tick()
            time.sleep(1.0)

    def runs_by_day(self, dag_id: str, days: list[dt.date]) -> dict[dt.date, dict]:
        """The latest run of ``dag_id`` per logical day in ``days`` (any run type)."""
        body = self.rest.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns",
            params={
                "logical_date_gte": midnight(days[0]),
                "logical_date_lte": f"{days[-1].isoformat()}T23:59:59Z",
                "limit": 100,
                "order_by": "logical_date",
            },
        )
        found: dict[dt.date, dict] = {}
        for run in body["dag_runs"]:
            found[dt.date.fromisoformat(run["logical_date"][:10])] = run
        return found

    def get_run(self, dag_id: str, run_id: str) -> dict | None:
        status, body = self.rest.request("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}")
        if status == 404:
            return None
        if status != 200:
            raise DemoError(f"GET run {dag_id}/{run_id} -> {status}: {body}")
        return body

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int
    ) -> Path | None:
        """The log file of one task try under the stack's AIRFLOW_HOME/logs (None if not written)."""
        folder = (
            self.paths.airflow_home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        )
        if map_index >= 0:
            folder = folder / f"map_index={map_index}"
        exact = folder / f"attempt={try_number}.log"
        if exact.exists():
            return exact
        found = sorted(folder.glob("**/attempt=*.log"), key=lambda p: p.stat().st_mtime)
        return found[-1] if found else None

    def failure(self, dag_id: str, run: dict) -> DemoError:
        """A DemoError naming the run, its failed task and the task's log (whose tail is printed)."""
        run_id = run["dag_run_id"]
        tis = self.rest.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        failed = [ti for ti in tis["task_instances"] if ti["state"] == "failed"]
        others = [ti for ti in tis["task_instances"] if ti["state"] in FAILED_TI and ti["state"] != "failed"]
        lines = [f"{dag_id} run {run_id} ended {run['state']}"]
        for ti in failed or others:
            index = ti.get("map_index", -1)
            name = ti["task_id"] + (f"[{index}]" if index >= 0 else "")
            log = self.task_log(dag_id, run_id, ti["task_id"], index, ti.get("try_number") or 1)
            lines.append(
                f"  task {name}: {ti['state']} (try {ti.get('try_number')}); log: {log or 'not written'}"
            )
            if log is not None and ti["state"] == "failed":
                print(f"\n----- end of {log} -----\n{readable_tail(log)}\n----- end -----", file=sys.stderr)
        lines.append(f"  in the UI: {self.rest.base_url}/dags/{dag_id}/runs/{quote(run_id)}")
        return DemoError("\n".join(lines))

    def wait_runs(self, dag_id: str, label: str, fetch, expected: int, deadline: float) -> list[dict]:
        """Poll ``fetch()`` (-> runs) until ``expected`` runs all succeeded; fail at once if one failed.

        Prints the runs' states whenever they change, and at least every REPORT_EVERY seconds.
        """
        began = time.monotonic()
        last, last_print = None, 0.0
        while True:
            runs = fetch()
            counts: dict[str, int] = {}
            for run in runs:
                counts[run["state"]] = counts.get(run["state"], 0) + 1
            text = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no run yet"
            if len(runs) == 1 and runs[0]["state"] == "running":
                text += f" ({self.task_states(dag_id, runs[0]['dag_run_id'])})"
            now = time.monotonic()
            if text != last or now - last_print >= REPORT_EVERY:
                self.say(f"    [{now - began:5.1f} s] {label}: {text}")
                last, last_print = text, now
            for run in runs:
                if run["state"] == "failed":
                    raise self.failure(dag_id, run)
            if len(runs) >= expected and all(run["state"] == "success" for run in runs):
                return runs
            self.check_stack()
            if now - began > deadline:
                raise DemoError(
                    f"{label}: not finished after {deadline:.0f} s ({text}); the stack keeps running"
                )
            time.sleep(POLL)

    def wait_run(self, dag_id: str, run_id: str, label: str, deadline: float) -> None:
        """:meth:`wait_runs` for the single run ``run_id`` (which may not exist yet)."""
        self.wait_runs(dag_id, label, lambda: [r for r in [self.get_run(dag_id, run_id)] if r], 1, deadline)

    def task_states(self, dag_id: str, run_id: str) -> str:
        """The run's started tasks in order with their states, e.g. ``prepare success, train 2/4 success``."""
        body = self.rest.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances")
        by_task: dict[str, list[str]] = {}
        for ti in sorted(body["task_instances"], key=lambda t: (t.get("start_date") or "~", t["task_id"])):
            by_task.setdefault(ti["task_id"], []).append(ti["state"] or "none")
        parts = []
        for task, states in by_task.items():
            if set(states) <= {"none", "scheduled"}:
                continue  # not started yet
            if len(states) == 1:
                parts.append(f"{task} {states[0]}")
            else:
                done = states.count("success")
                busy = [s for s in states if s not in ("success", "none")]
                parts.append(
                    f"{task} {done}/{len(states)} success" + (f", {len(busy)} {busy[0]}" if busy else "")
                )
        return ", ".join(parts)

    def check_stack(self) -> None:
        """Fail at once if the stack's ``up`` process has exited (it gives up when a server keeps exiting)."""
        if not supervisor_alive(self.state):
            raise DemoError(
                f"the stack (pid {self.state['pid']}) has stopped; "
                f"its output: {self.paths.logs / 'stack.log'}, "
                f"server logs in {self.paths.logs}"
            )

    def clear_failed(self, dag_id: str, run_id: str) -> None:
        """Clear the failed task instances of a run so that they run again."""
        self.rest.api(
            "POST",
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            {"dag_run_id": run_id, "only_failed": True, "dry_run": False, "reset_dag_runs": True},
        )

    def ensure_run(self, dag_id: str, run_id: str, logical_date: str | None, conf: dict) -> tuple[str, str]:
        """Trigger ``run_id`` unless it exists (a failed one is cleared to run again): (run id, what it did).

        If another run already has ``logical_date`` (e.g. made by the DAG's schedule), that run is used.
        """
        run = self.get_run(dag_id, run_id)
        if run is None:
            body = {"dag_run_id": run_id, "logical_date": logical_date, "conf": conf}
            status, answer = self.rest.request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)
            if status == 200:
                return run_id, "triggered"
            if status != 409:
                raise DemoError(f"triggering {dag_id} run {run_id} -> {status}: {answer}")
            run = self.get_run(dag_id, run_id) or (
                self.run_at(dag_id, logical_date) if logical_date else None
            )
            if run is None:
                raise DemoError(f"triggering {dag_id} run {run_id} -> 409 but no such run: {answer}")
        if run["state"] == "failed":
            self.say(
                f"  {dag_id} run {run['dag_run_id']} had failed: clearing its failed tasks to run them again"
            )
            self.clear_failed(dag_id, run["dag_run_id"])
            return run["dag_run_id"], "cleared"
        return run["dag_run_id"], "reused" if run["state"] == "success" else run["state"]

    def run_at(self, dag_id: str, logical_date: str) -> dict | None:
        """The run of ``dag_id`` whose logical date is ``logical_date`` (None if none)."""
        body = self.rest.api(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns",
            params={"logical_date_gte": logical_date, "logical_date_lte": logical_date, "limit": 1},
        )
        return body["dag_runs"][0] if body["dag_runs"] else None

    def create_backfill(self, dag_id: str, days: list[dt.date]) -> int:
        """POST /api/v2/backfills over ``days`` (re-running failed days, keeping succeeded ones).

        The DAG is paused while the backfill is created and unpaused afterwards. Airflow answers 503
        "database is locked" when SQLite refuses the creation (the stack's airflow_local_settings
        makes that rare) and may leave an open backfill behind: it is cancelled and the creation retried.
        """
        body = {
            "dag_id": dag_id,
            "from_date": midnight(days[0]),
            "to_date": midnight(days[-1]),
            "reprocess_behavior": "failed",
            "max_active_runs": 4,
        }
        self.rest.set_paused(dag_id, True)
        end = time.monotonic() + 120
        attempt = 0
        try:
            while True:
                attempt += 1
                status, answer = self.rest.request("POST", "/api/v2/backfills", body)
                if status == 200:
                    return answer["id"]
                if status not in (409, 503) or time.monotonic() > end:
                    raise DemoError(
                        f"creating the {dag_id} backfill -> {status}: {answer} (attempt {attempt})"
                    )
                left = self.rest.open_backfills(dag_id)
                self.say(
                    f"    backfill creation answered {status}; cancelling open backfills {left}, retrying"
                )
                self.rest.cancel_backfills(left)
                time.sleep(1.0)
        finally:
            self.rest.set_paused(dag_id, False)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The deserialised value of one XCom entry (JSON text decoded); None if there is none."""
        status, body = self.rest.request(
            "GET",
            f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id)}/taskInstances/{task_id}/xcomEntries/{key}",
            params={"deserialize": "true", "stringify": "false"},
        )
        if status != 200 or not isinstance(body, dict):
            return None
        value = body.get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


def readable_tail(log: Path, lines: int = LOG_LINES) -> str:
    """The last ``lines`` events of a task log (Airflow writes JSON lines) as "time level event" text."""
    out = []
    for raw in log_tail(log, lines).splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            out.append(raw)
            continue
        text = f"{str(event.get('timestamp', ''))[11:19]} {event.get('level', ''):7} {event.get('event', '')}"
        for error in event.get("error_detail") or []:
            text += f"\n    {error.get('exc_type')}: {error.get('exc_value')}"
        out.append(text)
    return "\n".join(out)
