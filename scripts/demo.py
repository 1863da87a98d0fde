"""The demo: the whole MLOps loop on the local stack, driven through Airflow's REST API.

``scripts/run-stack`` (no arguments, or ``stack.py demo``) runs it:

1. **boot**: start the stack detached (``stack.py up`` in a session of its own, output in
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
6. print a summary (partitions, model versions and aliases, drift verdict, report locations, URLs, login)
   with the wall time of each phase. The stack keeps running; ``scripts/run-stack down`` stops it.

Dates: the 17 days end on ``--end-date`` (default: yesterday, UTC, at the first run), which is stored in
``<home>/demo.json`` so that a later run, even on another day, works on the same days and reuses what
exists: landed files, succeeded runs (a failed run is cleared and run again), the model versions.

The DAGs are the ones ``mlops_provider.pipelines.build_pipelines`` generates from ``include/`` (ids from
``mlops_provider.pipelines.ids``). Every wait is a poll with a deadline; a failure prints which DAG run
and task failed with the path and the end of its log, and exits 1. Standard library only, plus the
provider's DAG id helpers and the project's example-data generator.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import stack

# Only the id functions: importing them loads neither Airflow nor the DAG factory.
from mlops_provider.pipelines.ids import drift_dag_id, ingest_dag_id, train_dag_id

DATASET = "churn"  # the dataset's name, from include/datasets/churn.yaml
MODEL = "churn_classifier"  # the model's (and registered model's) name, from include/models/churn.yaml
INGEST, TRAIN, DRIFT = ingest_dag_id(DATASET), train_dag_id(MODEL), drift_dag_id(MODEL)
CLEAN_DAYS = 14
DRIFT_DAYS = 3
DEFAULT_ROWS = 5_000  # rows per day; the churn suite accepts 1,000-60,000
# Drift the churn expectation suite accepts (no unseen category, no extra nulls, values in range) and
# strong enough for the drift check's dataset verdict: 6 of the 10 features move (>= 50 %).
DRIFT_SPECS = (
    "monthly_charges:shift=0.8",
    "tenure_months:scale=1.6",
    "support_tickets:shift=1.0",
    "total_charges:shift=0.8",
    "contract_type:share=two_year=0.7",
    "payment_method:share=mailed_check=0.6",
)
PARSE_DEADLINE = 180.0
BACKFILL_DEADLINE = 300.0
TRAIN_DEADLINE = 300.0
DRIFT_DEADLINE = 420.0
POLL = 2.0
REPORT_EVERY = 15.0  # seconds between progress lines when nothing changes
TERMINAL = {"success", "failed"}
FAILED_TI = {"failed", "upstream_failed"}
LOG_LINES = 25


class DemoError(stack.StackError):
    """A demo step failed: the message names what to look at."""


# ------------------------------------------------------------------------------------------- plan


@dataclass(frozen=True)
class Plan:
    """The demo's days: CLEAN_DAYS clean ones, then DRIFT_DAYS drifted ones ending on ``end``."""

    end: dt.date
    rows: int

    @property
    def drift_start(self) -> dt.date:
        return self.end - dt.timedelta(days=DRIFT_DAYS - 1)

    @property
    def clean_end(self) -> dt.date:
        return self.drift_start - dt.timedelta(days=1)

    @property
    def clean_start(self) -> dt.date:
        return self.clean_end - dt.timedelta(days=CLEAN_DAYS - 1)

    @property
    def clean_days(self) -> list[dt.date]:
        return [self.clean_start + dt.timedelta(days=i) for i in range(CLEAN_DAYS)]

    @property
    def drift_days(self) -> list[dt.date]:
        return [self.drift_start + dt.timedelta(days=i) for i in range(DRIFT_DAYS)]

    @property
    def train_run_id(self) -> str:
        return f"demo__{MODEL}__{self.clean_end}"

    @property
    def drift_run_id(self) -> str:
        return f"demo__drift__{self.end}"


def load_plan(paths: stack.Paths, end: dt.date | None, rows: int | None) -> Plan:
    """The plan stored in ``<home>/demo.json``, or a new one (stored); a different request is refused."""
    path = paths.home / "demo.json"
    stored = None
    if path.exists():
        raw = json.loads(path.read_text())
        stored = Plan(dt.date.fromisoformat(raw["end_date"]), int(raw["rows_per_day"]))
    if stored is not None:
        wanted = Plan(end or stored.end, rows or stored.rows)
        if wanted != stored:
            raise DemoError(
                f"this demo state ({paths.home}) was made with --end-date {stored.end} --rows {stored.rows}; "
                f"to use other values, reset it first: {stack.prog()} reset{stack.home_flag(paths.home)}"
            )
        return stored
    yesterday = dt.datetime.now(dt.timezone.utc).date() - dt.timedelta(days=1)
    plan = Plan(end or yesterday, rows or DEFAULT_ROWS)
    if plan.end > yesterday:
        raise DemoError(f"--end-date {plan.end} is not in the past: the latest possible is {yesterday}")
    if not 1_000 <= plan.rows <= 50_000:
        raise DemoError(
            f"--rows {plan.rows}: the churn suite accepts 1,000-60,000 rows a day; use 1000-50000"
        )
    path.write_text(
        json.dumps({"end_date": plan.end.isoformat(), "rows_per_day": plan.rows}, indent=2) + "\n"
    )
    return plan


def midnight(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"


# ------------------------------------------------------------------------------------------- REST


class Rest:
    """A minimal JSON client for the stack's Airflow (bearer token from POST /auth/token) and MLflow."""

    def __init__(self, state: dict) -> None:
        self.airflow = state["urls"]["airflow"]
        self.mlflow = state["urls"]["mlflow"]
        self.user = state["user"]
        self.password = state["password"]
        self._token: str | None = None

    @staticmethod
    def call(
        method: str, url: str, body: object | None = None, token: str | None = None, timeout: float = 60
    ) -> tuple[int, object]:
        """One request (no proxy): (status, decoded JSON or text); status 0 if nothing answered."""
        answer = stack.http_get(url, timeout, method=method, body=body, token=token)
        if answer is None:
            return 0, None
        try:
            return answer[0], json.loads(answer[1])
        except ValueError:
            return answer[0], answer[1].decode("utf-8", "replace")

    def token(self, refresh: bool = False) -> str:
        if self._token is None or refresh:
            status, body = self.call(
                "POST", f"{self.airflow}/auth/token", {"username": self.user, "password": self.password}
            )
            if status not in (200, 201) or not isinstance(body, dict):
                raise DemoError(
                    f"cannot log in to Airflow as {self.user}: POST /auth/token -> {status}: {body}"
                )
            self._token = body["access_token"]
        return self._token

    def request(
        self, method: str, path: str, body: object | None = None, params: dict | None = None
    ) -> tuple[int, object]:
        """An authenticated Airflow call: (status, body); the token is renewed once on 401."""
        url = self.airflow + path + ("?" + urllib.parse.urlencode(params, doseq=True) if params else "")
        status, answer = self.call(method, url, body, self.token())
        if status == 401:
            status, answer = self.call(method, url, body, self.token(refresh=True))
        return status, answer

    def api(
        self,
        method: str,
        path: str,
        body: object | None = None,
        params: dict | None = None,
        expect: tuple[int, ...] = (200,),
    ) -> object:
        """An authenticated Airflow call that must answer one of ``expect``; returns the body."""
        status, answer = self.request(method, path, body, params)
        if status not in expect:
            raise DemoError(f"Airflow {method} {path} -> {status or 'no answer'}: {answer}")
        return answer

    def mlflow_get(self, path: str, params: dict) -> dict:
        """GET on MLflow's REST API (``/api/2.0/mlflow/...``); {} on 404 (e.g. no such model)."""
        status, body = self.call(
            "GET", f"{self.mlflow}/api/2.0/mlflow/{path}?{urllib.parse.urlencode(params)}"
        )
        if status == 404 or (status == 400 and "RESOURCE_DOES_NOT_EXIST" in str(body)):
            return {}
        if status != 200 or not isinstance(body, dict):
            raise DemoError(f"MLflow GET {path} -> {status or 'no answer'}: {body}")
        return body


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")


# ---------------------------------------------------------------------------------------- the demo


@dataclass
class Demo:
    """One run of the demo against the stack described by ``state``."""

    paths: stack.Paths
    state: dict
    plan: Plan
    rest: Rest
    progress: stack.Progress = field(default_factory=stack.Progress)
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

    def set_paused(self, dag_id: str, paused: bool) -> None:
        dag = self.rest.api("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})
        if dag.get("is_paused") is not paused:
            raise DemoError(f"{dag_id}: is_paused stayed {dag.get('is_paused')}")

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
        lines.append(f"  in the UI: {self.rest.airflow}/dags/{dag_id}/runs/{quote(run_id)}")
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
        """Fail at once if the stack's ``up`` process has exited (it stops everything when a server dies)."""
        if not stack.supervisor_alive(self.state):
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
        self.set_paused(INGEST, True)
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
                listed = self.rest.api("GET", "/api/v2/backfills", params={"dag_id": INGEST, "limit": 100})
                left = [b["id"] for b in listed["backfills"] if not b["completed_at"]]
                self.say(
                    f"    backfill creation answered {status}; cancelling open backfills {left}, retrying"
                )
                for backfill_id in left:
                    self.rest.api("PUT", f"/api/v2/backfills/{backfill_id}/cancel", expect=(200, 404, 409))
                time.sleep(1.0)
        finally:
            self.set_paused(INGEST, False)

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
        if str(stack.REPO) not in sys.path:
            sys.path.insert(0, str(stack.REPO))
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
        self.set_paused(TRAIN, False)
        # Only the DAG's Params: a conf key it does not declare fails the run's first task.
        conf = {
            "end_date": plan.clean_end.isoformat(),
            "window_days": CLEAN_DAYS,
            "reason": "demo: first model on the clean days",
        }
        _, did = self.ensure_run(TRAIN, plan.train_run_id, None, conf)
        self.say(f"  {TRAIN} run {plan.train_run_id}: {did}")
        self.wait_run(TRAIN, plan.train_run_id, TRAIN, TRAIN_DEADLINE)
        champion = self.alias_version("champion")
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
        self.set_paused(DRIFT, False)
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
        # The retraining this check triggered; or one that an earlier (e.g. scheduled) check of a
        # drifted day triggered, which puts this one in cooldown.
        candidates = [f"drift__{MODEL}__{day}" for day in reversed(plan.drift_days)]
        existing = [run_id for run_id in candidates if self.get_run(TRAIN, run_id)]
        if not existing:
            raise DemoError(
                f"{DRIFT} run {run_id} triggered no retraining "
                f"({decision.get('reason', 'no reason')}); "
                f"drift report: {self.drift_summary.get('report_uri')}"
            )
        self.retrain_run = existing[0]
        by = (
            "triggered by this check"
            if self.retrain_run == f"drift__{MODEL}__{plan.end}"
            and "cooldown" not in str(decision.get("reason"))
            else f"triggered by another {DRIFT} run (this one found it: cooldown)"
        )
        self.say(f"  retraining: {TRAIN} run {self.retrain_run}, {by}")
        self.wait_run(TRAIN, self.retrain_run, f"{TRAIN} (retrain)", DRIFT_DEADLINE)
        versions = self.model_versions()
        if len(versions) < 2:
            raise DemoError(
                f"{TRAIN} run {self.retrain_run} succeeded but {MODEL} has {len(versions)} version(s)"
            )

    # -- facts for the summary -------------------------------------------------------------------

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> object:
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

    def alias_version(self, alias: str) -> str | None:
        body = self.rest.mlflow_get("registered-models/alias", {"name": MODEL, "alias": alias})
        return (body.get("model_version") or {}).get("version")

    def model_versions(self) -> list[dict]:
        body = self.rest.mlflow_get(
            "model-versions/search", {"filter": f"name='{MODEL}'", "max_results": 100}
        )
        return sorted(body.get("model_versions", []), key=lambda v: int(v["version"]))

    def aliases(self) -> dict[str, list[str]]:
        body = self.rest.mlflow_get("registered-models/get", {"name": MODEL})
        found: dict[str, list[str]] = {}
        for entry in (body.get("registered_model") or {}).get("aliases", []):
            found.setdefault(entry["version"], []).append(entry["alias"])
        return found

    def run_metrics(self, run_id: str | None) -> dict[str, float]:
        """The latest metrics of an MLflow run ({} without one)."""
        if not run_id:
            return {}
        run = self.rest.mlflow_get("runs/get", {"run_id": run_id}).get("run") or {}
        return {m["key"]: m["value"] for m in (run.get("data") or {}).get("metrics", [])}

    def quality(self, versions: list[dict]) -> dict:
        """The champion's gate metric before the change, after it, and after retraining.

        Before: the first champion on its own (pre-change) holdout. After: the drift check's realised
        score of that champion on the newest labelled days, and the same champion on the retraining's
        post-change holdout. After retraining: the retrained version on that same holdout.
        """
        performance = (self.drift_summary or {}).get("performance") or {}
        metric = performance.get("metric")
        if not metric or len(versions) < 2:
            return {}
        first, retrained = self.run_metrics(versions[0]["run_id"]), self.run_metrics(versions[-1]["run_id"])
        return {
            "metric": metric,
            "before_change": first.get(f"holdout_{metric}"),
            "after_change_realised": performance.get("value"),
            "after_change_holdout": retrained.get(f"champion_holdout_{metric}"),
            "after_retraining": retrained.get(f"holdout_{metric}"),
            "retrained_version": versions[-1]["version"],
            "retrained_is_champion": "champion" in versions[-1]["aliases"],
        }

    def partitions(self, zone: str) -> list[str]:
        folder = self.data_path / DATASET / zone
        return sorted(p.name.removeprefix("ds=") for p in folder.glob("ds=*")) if folder.exists() else []

    def summary(self) -> dict:
        """The facts the demo ends with (also written to ``<home>/demo-summary.json``)."""
        plan = self.plan
        versions = []
        aliases = self.aliases()
        for v in self.model_versions():
            tags = {t["key"]: t["value"] for t in v.get("tags", [])}
            versions.append(
                {
                    "version": v["version"],
                    "aliases": sorted(aliases.get(v["version"], [])),
                    "run_id": v.get("run_id"),
                    "gate": tags.get("mlops.gate.decision"),
                    "gate_reason": tags.get("mlops.gate.reason"),
                    "airflow_run_id": tags.get("airflow.run_id") or tags.get("mlops.airflow.run_id"),
                }
            )
        drift = self.drift_summary or {}
        ds_report = self.data_path / DATASET / "reports" / "drift" / f"ds={plan.end}"
        retrain = self.get_run(TRAIN, self.retrain_run) if self.retrain_run else None
        return {
            "days": {
                "clean": [plan.clean_start.isoformat(), plan.clean_end.isoformat()],
                "drifted": [plan.drift_start.isoformat(), plan.end.isoformat()],
                "rows_per_day": plan.rows,
            },
            "validated": self.partitions("validated"),
            "validation_reports": str(self.data_path / DATASET / "reports" / "validation"),
            "quarantined": self.partitions("quarantine"),
            "models": versions,
            "drift": {
                "check_date": plan.end.isoformat(),
                "run_id": self.drift_run,
                "drifted": drift.get("drifted"),
                "share": drift.get("share"),
                "threshold": drift.get("drift_share"),
                "features": drift.get("features"),
                "prediction": drift.get("prediction"),
                "drifted_features": drift.get("drifted_features"),
                "report": str(ds_report / "report.html"),
                "report_url": f"{self.rest.airflow}/mlops/reports/{DATASET}/drift/{plan.end}/report.html",
            },
            "retrain": {"run_id": self.retrain_run, "state": (retrain or {}).get("state")},
            "quality": self.quality(versions),
            "train_run_id": plan.train_run_id,
            "timings": {k: round(v, 1) for k, v in self.timings.items()},
            "reused": self.notes,
        }


# ------------------------------------------------------------------------------------------ printing


def readable_tail(log: Path, lines: int = LOG_LINES) -> str:
    """The last ``lines`` events of a task log (Airflow writes JSON lines) as "time level event" text."""
    out = []
    for raw in stack.log_tail(log, lines).splitlines():
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


def quality_lines(quality: dict) -> list[str]:
    """The champion's metric before the change, after it and after retraining (nothing if unknown)."""

    def num(value: object) -> str:
        return f"{value:.4f}" if isinstance(value, (int, float)) else "?"

    if not quality:
        return []
    verdict = (
        f"version {quality['retrained_version']} promoted"
        if quality["retrained_is_champion"]
        else f"version {quality['retrained_version']} not promoted"
    )
    return [
        f"Quality    {quality['metric']} of the champion: {num(quality['before_change'])} before the change "
        f"(version 1, pre-change holdout)",
        f"           -> {num(quality['after_change_realised'])} after it (realised on the newest labelled "
        f"days; {num(quality['after_change_holdout'])} on the post-change holdout)",
        f"           -> {num(quality['after_retraining'])} after retraining on the new days ({verdict})",
    ]


def print_summary(facts: dict, state: dict, paths: stack.Paths) -> None:
    days, drift = facts["days"], facts["drift"]
    validated, quarantined = facts["validated"], facts["quarantined"]
    lines = [
        "",
        "=" * 78,
        "Demo finished: the MLOps loop ran on the local stack.",
        "",
        f"Data       clean days {days['clean'][0]} .. {days['clean'][1]}, "
        f"drifted days {days['drifted'][0]} .. "
        f"{days['drifted'][1]}, ~{days['rows_per_day']} rows a day",
        f"Partitions {len(validated)} published to validated/"
        + (f" ({validated[0]} .. {validated[-1]})" if validated else "")
        + f", {len(quarantined)} quarantined"
        + (f" ({', '.join(quarantined)})" if quarantined else ""),
        f"Models     {MODEL} (MLflow registry):",
    ]
    for v in facts["models"]:
        alias = ", ".join(v["aliases"]) or "-"
        lines.append(
            f"             version {v['version']:>3}  aliases: {alias:21} gate: {v['gate'] or '-':9} "
            f"(Airflow run {v['airflow_run_id']})"
        )
        if v["gate_reason"]:
            lines.append(f"                          {v['gate_reason']}")
    features = drift["drifted_features"] or []
    share = drift["share"]
    lines += [
        f"Drift      {drift['check_date']}: {'DRIFTED' if drift['drifted'] else 'no dataset drift'}"
        + (
            f" ({len(features)} of {drift['features']} features, "
            f"share {share:.0%} >= {drift['threshold']:.0%})"
            if isinstance(share, (int, float)) and drift["threshold"] is not None
            else ""
        )
        + (f": {', '.join(features)}" if features else ""),
        f"Retrain    {TRAIN} run {facts['retrain']['run_id']}: {facts['retrain']['state']}",
        *quality_lines(facts.get("quality") or {}),
        "",
        "Reports    drift       " + drift["report"],
        "           (in the UI) " + drift["report_url"],
        f"           validation  {facts['validation_reports']}",
        "",
        stack.describe(state),
        "",
        "Timings    " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in facts["timings"].items()),
        "",
        f"The stack keeps running. Stop it: {stack.prog()} down{stack.home_flag(paths.home)}   "
        f"Start over: {stack.prog()} reset{stack.home_flag(paths.home)}",
        "=" * 78,
    ]
    print("\n".join(lines), flush=True)


# ------------------------------------------------------------------------------------------- boot


def ensure_stack(args, paths: stack.Paths, progress: stack.Progress) -> tuple[dict, bool]:
    """The running stack of ``paths.home`` (reused), or a new one started detached; (state, started)."""
    state = stack.read_state(paths)
    flag = stack.home_flag(paths.home)
    if state and stack.supervisor_alive(state):
        # Started by an earlier demo or an `up` (perhaps still booting): wait until it is up and healthy.
        progress.line(f"Reusing the stack of pid {state['pid']} in {paths.home}.")
        end = time.monotonic() + args.timeout
        while not (
            state.get("state") == "running"
            and stack.mlflow_healthy(state["ports"]["mlflow"])
            and stack.airflow_healthy(state["ports"]["airflow"])
        ):
            if not stack.supervisor_alive(state) or time.monotonic() > end:
                raise DemoError(
                    f"the stack in {paths.home} is not healthy; see `{stack.prog()} status{flag}`, "
                    f"or stop it: {stack.prog()} down{flag}"
                )
            progress.tick()
            time.sleep(1.0)
            state = stack.read_state(paths) or state
        return state, False
    if state and stack.live_groups(state):
        raise DemoError(
            f"servers of an earlier stack still run from {paths.home} without their `up` process; "
            f"stop them first: {stack.prog()} down{stack.home_flag(paths.home)}"
        )
    stack.make_dirs(paths)
    out = paths.logs / "stack.log"
    argv = [sys.executable, str(Path(stack.__file__).resolve()), "up", "--home", str(paths.home)]
    for flag, value in (("--airflow-port", args.airflow_port), ("--mlflow-port", args.mlflow_port)):
        if value is not None:
            argv += [flag, str(value)]
    argv += ["--timeout", str(args.timeout)]
    progress.line(f"Starting the stack in the background (its output: {out}) ...")
    with open(out, "wb") as handle:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    end = time.monotonic() + args.timeout + 30
    shown = 0
    while True:
        text = out.read_text(errors="replace")
        for line in text.splitlines()[shown:]:
            # The up's own progress and, once it is up, where to log in (the UI is usable at once).
            if line.strip(" .") and line.lstrip(".").startswith(("  ", "Starting", "error")):
                progress.line("  " + line.lstrip(".").rstrip())
        shown = len(text.splitlines())
        state = stack.read_state(paths)
        if state and state.get("state") == "running" and state.get("pid") == proc.pid:
            return state, True
        if proc.poll() is not None:
            stack.print_tail("stack.py up", out)
            raise DemoError(f"the stack did not start (exit status {proc.returncode}); its output: {out}")
        if time.monotonic() > end:
            raise DemoError(f"the stack is not up after {args.timeout:.0f} s; its output: {out}")
        progress.tick()
        time.sleep(0.5)


def run(args) -> int:
    """The ``demo`` command."""
    paths = stack.Paths(Path(args.home).resolve())
    progress = stack.Progress()
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
    demo = Demo(paths, state, plan, Rest(state), progress)
    demo.timings["boot"] = time.monotonic() - began
    demo.notes["boot"] = "started" if started else "reused"
    phases = [
        ("data", "[2/5] data: land the example files", demo.phase_data),
        ("backfill", f"[3/5] backfill: {INGEST} over the {CLEAN_DAYS} clean days", demo.phase_backfill),
        ("train", f"[4/5] train: {TRAIN} on the clean days, wait for a champion", demo.phase_train),
        ("drift + retrain", f"[5/5] drift: ingest the drifted days, {DRIFT}, retraining", demo.phase_drift),
    ]
    for name, title, phase in phases:
        progress.line(f"\n{title}")
        t0 = time.monotonic()
        try:
            phase()
        except (DemoError, KeyboardInterrupt) as exc:
            what = (
                f"error in phase {name}: {exc}"
                if isinstance(exc, DemoError)
                else f"interrupted in phase {name}"
            )
            print(f"\n{what}", file=sys.stderr, flush=True)
            print(
                f"\nThe stack keeps running for you to look: {state['urls']['airflow']} "
                f"(login {state['user']} / {state['password']}). Run the demo again to continue where it "
                f"stopped; stop the stack: {stack.prog()} down{stack.home_flag(paths.home)}",
                file=sys.stderr,
                flush=True,
            )
            return 1
        demo.timings[name] = time.monotonic() - t0
        progress.line(f"  ({name}: {demo.timings[name]:.1f} s)")
    demo.timings["total"] = time.monotonic() - began
    facts = demo.summary()
    stack.write_private(paths.home / "demo-summary.json", json.dumps(facts, indent=2) + "\n")
    print_summary(facts, state, paths)
    return 0
