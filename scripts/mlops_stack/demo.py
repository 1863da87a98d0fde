"""The demo: the whole MLOps loop on the local stack, driven through Airflow's REST API.

``scripts/run-stack`` (no arguments, or the ``demo`` command) runs it:

1. **boot**: start the stack detached (``up`` in a session of its own, output appended to
   ``<home>/logs/stack.log``) unless one already runs from ``--home``, and wait until it is healthy;
2. **data**: land the example churn files under ``<data root>/landing/churn/<ds>.csv``: 14 clean days
   and then 3 drifted days (numeric shifts and scales, categorical shares: drift the churn expectation
   suite accepts);
3. **backfill**: unpause ``mlops_ingest__churn`` and backfill it over the 14 clean days
   (POST /api/v2/backfills);
4. **train**: trigger ``mlops_train__churn_classifier`` on the clean days (run
   ``demo__churn_classifier__<last clean day>``) and wait for a champion;
5. **drift + retrain**: backfill ``mlops_ingest__churn`` over the drifted days, trigger
   ``mlops_drift__churn_classifier`` for the last drifted day (run ``demo__drift__<day>``,
   ``conf.check_date``) and wait for the training it triggers (``drift__churn_classifier__<day>``)
   and the second model version;
6. print a summary (partitions, model versions and aliases, drift verdict, report locations, URLs, where
   the login is) with the wall time of each phase. The stack keeps running; ``scripts/run-stack down``
   stops it.

Dates: the 17 days end on ``--end-date`` (default: yesterday, UTC, at the first run), stored in
``<home>/demo.json`` (see :mod:`mlops_stack.plan`). Every wait is a poll with a deadline; a failure
prints which DAG run and task failed with the path and the end of its log, and exits 1.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_stack.credentials import read_password
from mlops_stack.errors import DemoError, StackError
from mlops_stack.launcher import ensure_stack
from mlops_stack.logs import log_tail
from mlops_stack.mlflow_rest import MlflowReader
from mlops_stack.paths import REPO, Paths, write_private
from mlops_stack.plan import (
    CLEAN_DAYS,
    DATASET,
    DRIFT,
    DRIFT_DAYS,
    DRIFT_SPECS,
    INGEST,
    MODEL,
    TRAIN,
    Plan,
    load_plan,
    midnight,
)
from mlops_stack.progress import Progress
from mlops_stack.rest import AirflowClient, quote
from mlops_stack.state import home_flag, prog, supervisor_alive
from mlops_stack.summary import print_summary, summary_facts

PARSE_DEADLINE = 180.0
BACKFILL_DEADLINE = 300.0
TRAIN_DEADLINE = 300.0
DRIFT_DEADLINE = 420.0
POLL = 2.0
REPORT_EVERY = 15.0  # seconds between progress lines when nothing changes
FAILED_TI = {"failed", "upstream_failed"}
LOG_LINES = 25


@dataclass
class Demo:
    """One run of the demo against the stack described by ``state``."""

    paths: Paths
    state: dict
    plan: Plan
    rest: AirflowClient
    mlflow: MlflowReader
    progress: Progress = field(default_factory=Progress)
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    drift_summary: dict | None = None
    drift_run: str | None = None
    retrain_run: str | None = None

    @property
    def data_path(self) -> Path:
        return Path(urllib.parse.urlparse(self.state["data_root"]).path)

    @property
    def landing(self) -> Path:
        return self.data_path / "landing" / DATASET

    def say(self, text: str) -> None:
        self.progress.line(text)

    # -- helpers ---------------------------------------------------------------------------------

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

    # -- backfill --------------------------------------------------------------------------------

    def create_backfill(self, days: list[dt.date]) -> int:
        """POST /api/v2/backfills over ``days`` (re-running failed days, keeping succeeded ones).

        The DAG is paused while the backfill is created and unpaused afterwards. Airflow answers 503
        "database is locked" when SQLite refuses the creation (the stack's airflow_local_settings
        makes that rare) and may leave an open backfill behind: it is cancelled and the creation retried.
        """
        body = {
            "dag_id": INGEST,
            "from_date": midnight(days[0]),
            "to_date": midnight(days[-1]),
            "reprocess_behavior": "failed",
            "max_active_runs": 4,
        }
        self.rest.set_paused(INGEST, True)
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
                        f"creating the {INGEST} backfill -> {status}: {answer} (attempt {attempt})"
                    )
                left = self.rest.open_backfills(INGEST)
                self.say(
                    f"    backfill creation answered {status}; cancelling open backfills {left}, retrying"
                )
                self.rest.cancel_backfills(left)
                time.sleep(1.0)
        finally:
            self.rest.set_paused(INGEST, False)

    def ingest(self, days: list[dt.date], label: str, deadline: float) -> str:
        """Make sure every day in ``days`` has a succeeded ingest run; returns what it did."""
        runs = self.runs_by_day(INGEST, days)
        todo = [d for d in days if runs.get(d, {}).get("state") != "success"]
        if not todo:
            self.say(f"  {label}: all {len(days)} days already ingested (reused)")
            return "reused"
        busy = [d for d in todo if runs.get(d, {}).get("state") not in (None, "failed")]
        outcome = "waited"
        if len(busy) < len(todo):
            backfill_id = self.create_backfill(todo)
            self.say(f"  {label}: backfill {backfill_id} of {INGEST} over {todo[0]} .. {todo[-1]}")
            outcome = "backfilled"
        self.wait_runs(
            INGEST,
            label,
            lambda: list(self.runs_by_day(INGEST, days).values()),
            len(days),
            deadline,
        )
        return outcome

    # -- phases ----------------------------------------------------------------------------------

    def phase_data(self) -> None:
        """Land the example files (a day whose file exists is kept: the generator is deterministic)."""
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        from include.example_data import churn

        plan = self.plan
        drift = churn.DriftPlan.parse(plan.drift_start, list(DRIFT_SPECS))
        written = 0
        for day in [*plan.clean_days, *plan.drift_days]:
            if (self.landing / f"{day.isoformat()}.csv").exists():
                continue
            churn.write_days(self.landing, day, 1, rows_per_day=plan.rows, drift=drift)
            written += 1
        kept = CLEAN_DAYS + DRIFT_DAYS - written
        self.say(
            f"  landed {written} files ({kept} already there) under {self.landing}: clean "
            f"{plan.clean_start} .. {plan.clean_end}, drifted {plan.drift_start} .. {plan.end} "
            f"(~{plan.rows} rows a day; drift: {', '.join(DRIFT_SPECS)})"
        )

    def phase_backfill(self) -> None:
        self.wait_parsed([INGEST, TRAIN, DRIFT])
        self.notes["backfill"] = self.ingest(
            self.plan.clean_days, f"{INGEST} (clean days)", BACKFILL_DEADLINE
        )

    def phase_train(self) -> None:
        plan = self.plan
        self.rest.set_paused(TRAIN, False)
        # Only the DAG's Params: a conf key it does not declare fails the run's first task.
        conf = {
            "end_date": plan.clean_end.isoformat(),
            "window_days": CLEAN_DAYS,
            "reason": "demo: first model on the clean days",
        }
        _, did = self.ensure_run(TRAIN, plan.train_run_id, None, conf)
        self.say(f"  {TRAIN} run {plan.train_run_id}: {did}")
        self.wait_run(TRAIN, plan.train_run_id, TRAIN, TRAIN_DEADLINE)
        champion = self.mlflow.alias_version("champion")
        if champion is None:
            raise DemoError(
                f"{TRAIN} run {plan.train_run_id} succeeded but {MODEL} has no champion: see the register "
                f"task's log ({self.paths.airflow_home / 'logs' / f'dag_id={TRAIN}'}) for the gate's reason"
            )
        self.say(f"  champion: {MODEL} version {champion}")
        self.notes["train"] = did

    def phase_drift(self) -> None:
        plan = self.plan
        self.notes["drift_ingest"] = self.ingest(
            plan.drift_days, f"{INGEST} (drifted days)", BACKFILL_DEADLINE
        )
        # A manual run without a logical date, checking plan.end by its conf. A manual run at the logical
        # date the schedule itself wants would stop the scheduler from creating its own run and make it
        # log "run already exists; skipping dagrun creation" every second until the next interval. The
        # scheduled check of the same day may run too once the DAG is unpaused; both trigger the same
        # retraining run id, so the model is trained once.
        conf = {"check_date": plan.end.isoformat()}
        run_id, did = self.ensure_run(DRIFT, plan.drift_run_id, None, conf)
        self.rest.set_paused(DRIFT, False)
        self.say(f"  {DRIFT} run {run_id} (check_date {plan.end}): {did}")
        self.wait_run(DRIFT, run_id, DRIFT, DRIFT_DEADLINE)
        self.drift_run = run_id
        self.drift_summary = self.xcom(DRIFT, run_id, "check") or {}
        decision = self.xcom(DRIFT, run_id, "decide", "retrain_decision") or {}
        verdict = "drifted" if self.drift_summary.get("drifted") else "no dataset drift"
        self.say(
            f"  drift verdict for {plan.end}: {verdict} "
            f"({len(self.drift_summary.get('drifted_features') or [])} "
            f"features drifted); decision: {decision.get('reason', '?')}"
        )
        self.retrain_run = self.find_retraining(run_id, decision)
        self.wait_run(TRAIN, self.retrain_run, f"{TRAIN} (retrain)", DRIFT_DEADLINE)
        versions = self.mlflow.model_versions()
        if len(versions) < 2:
            raise DemoError(
                f"{TRAIN} run {self.retrain_run} succeeded but {MODEL} has {len(versions)} version(s)"
            )

    def find_retraining(self, drift_run_id: str, decision: dict) -> str:
        """The training run the drift check triggered, or that an earlier (e.g. scheduled) check of a
        drifted day triggered, which puts this one in cooldown; says which.
        """
        plan = self.plan
        candidates = [f"drift__{MODEL}__{day}" for day in reversed(plan.drift_days)]
        existing = [run_id for run_id in candidates if self.get_run(TRAIN, run_id)]
        if not existing:
            raise DemoError(
                f"{DRIFT} run {drift_run_id} triggered no retraining "
                f"({decision.get('reason', 'no reason')}); "
                f"drift report: {(self.drift_summary or {}).get('report_uri')}"
            )
        by = (
            "triggered by this check"
            if existing[0] == f"drift__{MODEL}__{plan.end}" and "cooldown" not in str(decision.get("reason"))
            else f"triggered by another {DRIFT} run (this one found it: cooldown)"
        )
        self.say(f"  retraining: {TRAIN} run {existing[0]}, {by}")
        return existing[0]

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


def run(args) -> int:
    """The ``demo`` command: 0 when the loop ran and the summary was printed, 1 when a phase failed."""
    paths = Paths(Path(args.home).resolve())
    progress = Progress()
    began = time.monotonic()
    end = dt.date.fromisoformat(args.end_date) if args.end_date else None
    paths.home.mkdir(parents=True, exist_ok=True, mode=0o700)
    plan = load_plan(paths, end, args.rows)
    progress.line(
        f"MLOps demo: {CLEAN_DAYS} clean days {plan.clean_start} .. {plan.clean_end}, "
        f"{DRIFT_DAYS} drifted days {plan.drift_start} .. {plan.end} (state in {paths.home})"
    )
    progress.line("\n[1/5] boot")
    state, started = ensure_stack(args, paths, progress)
    client = AirflowClient(state["urls"]["airflow"], state["user"], read_password(paths) or "")
    demo = Demo(paths, state, plan, client, MlflowReader(state["urls"]["mlflow"], MODEL), progress)
    demo.timings["boot"] = time.monotonic() - began
    demo.notes["boot"] = "started" if started else "reused"
    if not run_phases(demo):
        return 1
    demo.timings["total"] = time.monotonic() - began
    facts = summary_facts(demo)
    write_private(paths.home / "demo-summary.json", json.dumps(facts, indent=2) + "\n")
    print_summary(facts, state, paths)
    return 0


def run_phases(demo: Demo) -> bool:
    """Run the phases after boot, timing each; False (after saying where to look) if one failed."""
    phases = [
        ("data", "[2/5] data: land the example files", demo.phase_data),
        ("backfill", f"[3/5] backfill: {INGEST} over the {CLEAN_DAYS} clean days", demo.phase_backfill),
        ("train", f"[4/5] train: {TRAIN} on the clean days, wait for a champion", demo.phase_train),
        ("drift + retrain", f"[5/5] drift: ingest the drifted days, {DRIFT}, retraining", demo.phase_drift),
    ]
    for name, title, phase in phases:
        demo.say(f"\n{title}")
        t0 = time.monotonic()
        try:
            phase()
        except (StackError, KeyboardInterrupt) as exc:
            what = (
                f"error in phase {name}: {exc}"
                if isinstance(exc, StackError)
                else f"interrupted in phase {name}"
            )
            print(f"\n{what}", file=sys.stderr, flush=True)
            print(
                f"\nThe stack keeps running for you to look: {demo.rest.base_url} (login {demo.rest.user}, "
                f"password in {demo.paths.passwords}). Run the demo again to continue where it stopped; "
                f"stop the stack: {prog()} down{home_flag(demo.paths.home)}",
                file=sys.stderr,
                flush=True,
            )
            return False
        demo.timings[name] = time.monotonic() - t0
        demo.say(f"  ({name}: {demo.timings[name]:.1f} s)")
    return True
