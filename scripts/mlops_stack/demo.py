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

from mlops_provider.core.registry_names import retrain_run_id
from mlops_stack.credentials import read_password
from mlops_stack.errors import DemoError, StackError
from mlops_stack.launcher import ensure_stack
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
)
from mlops_stack.progress import Progress
from mlops_stack.rest import AirflowClient
from mlops_stack.runs import DagRuns
from mlops_stack.state import home_flag, prog
from mlops_stack.summary import print_summary, summary_facts

BACKFILL_DEADLINE = 300.0
TRAIN_DEADLINE = 300.0
DRIFT_DEADLINE = 420.0


@dataclass
class Demo:
    """One run of the demo against the stack described by ``state``."""

    paths: Paths
    state: dict
    plan: Plan
    rest: AirflowClient
    runs: DagRuns
    mlflow: MlflowReader
    progress: Progress = field(default_factory=Progress)
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    drift_summary: dict | None = None
    drift_report_url: str | None = None
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

    def ingest(self, days: list[dt.date], label: str, deadline: float) -> str:
        """Make sure every day in ``days`` has a succeeded ingest run; returns what it did."""
        runs = self.runs.runs_by_day(INGEST, days)
        todo = [d for d in days if runs.get(d, {}).get("state") != "success"]
        if not todo:
            self.say(f"  {label}: all {len(days)} days already ingested (reused)")
            return "reused"
        busy = [d for d in todo if runs.get(d, {}).get("state") not in (None, "failed")]
        outcome = "waited"
        if len(busy) < len(todo):
            backfill_id = self.runs.create_backfill(INGEST, todo)
            self.say(f"  {label}: backfill {backfill_id} of {INGEST} over {todo[0]} .. {todo[-1]}")
            outcome = "backfilled"
        self.runs.wait_runs(
            INGEST,
            label,
            lambda: list(self.runs.runs_by_day(INGEST, days).values()),
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
        self.runs.wait_parsed([INGEST, TRAIN, DRIFT])
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
        _, did = self.runs.ensure_run(TRAIN, plan.train_run_id, None, conf)
        self.say(f"  {TRAIN} run {plan.train_run_id}: {did}")
        self.runs.wait_run(TRAIN, plan.train_run_id, TRAIN, TRAIN_DEADLINE)
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
        run_id, did = self.runs.ensure_run(DRIFT, plan.drift_run_id, None, conf)
        self.rest.set_paused(DRIFT, False)
        self.say(f"  {DRIFT} run {run_id} (check_date {plan.end}): {did}")
        self.runs.wait_run(DRIFT, run_id, DRIFT, DRIFT_DEADLINE)
        self.drift_run = run_id
        self.drift_summary = self.runs.xcom(DRIFT, run_id, "check") or {}
        # The operator pushed the report's address (links/reports owns it): relative unless [api] base_url.
        self.drift_report_url = self.runs.xcom(DRIFT, run_id, "check", "report_url")
        decision = self.runs.xcom(DRIFT, run_id, "decide", "retrain_decision") or {}
        verdict = "drifted" if self.drift_summary.get("drifted") else "no dataset drift"
        self.say(
            f"  drift verdict for {plan.end}: {verdict} "
            f"({len(self.drift_summary.get('drifted_features') or [])} "
            f"features drifted); decision: {decision.get('reason', '?')}"
        )
        self.retrain_run = self.find_retraining(run_id, decision)
        self.runs.wait_run(TRAIN, self.retrain_run, f"{TRAIN} (retrain)", DRIFT_DEADLINE)
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
        candidates = [retrain_run_id(MODEL, day.isoformat()) for day in reversed(plan.drift_days)]
        existing = [run_id for run_id in candidates if self.runs.get_run(TRAIN, run_id)]
        if not existing:
            raise DemoError(
                f"{DRIFT} run {drift_run_id} triggered no retraining "
                f"({decision.get('reason', 'no reason')}); "
                f"drift report: {(self.drift_summary or {}).get('report_uri')}"
            )
        by = (
            "triggered by this check"
            if existing[0] == retrain_run_id(MODEL, plan.end.isoformat())
            and "cooldown" not in str(decision.get("reason"))
            else f"triggered by another {DRIFT} run (this one found it: cooldown)"
        )
        self.say(f"  retraining: {TRAIN} run {existing[0]}, {by}")
        return existing[0]


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
    runs = DagRuns(client, paths, state, progress)
    demo = Demo(paths, state, plan, client, runs, MlflowReader(state["urls"]["mlflow"], MODEL), progress)
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
