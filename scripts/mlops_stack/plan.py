"""What the demo works on: the model and dataset, its days (clean, then drifted) and its deadlines.

The days are stored in ``<home>/demo.json`` at the first run, so that a later run, even on another day,
works on the same days and reuses what exists.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

# Only the id functions: importing them loads neither Airflow nor the DAG factory.
from mlops_provider.pipelines.ids import drift_dag_id, ingest_dag_id, train_dag_id
from mlops_stack.errors import DemoError
from mlops_stack.paths import write_private
from mlops_stack.state import home_flag, prog

if TYPE_CHECKING:
    from mlops_stack.paths import Paths

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


def load_plan(paths: Paths, end: dt.date | None, rows: int | None) -> Plan:
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
                f"to use other values, reset it first: {prog()} reset{home_flag(paths.home)}"
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
    write_private(
        path, json.dumps({"end_date": plan.end.isoformat(), "rows_per_day": plan.rows}, indent=2) + "\n"
    )
    return plan


def midnight(day: dt.date) -> str:
    """Midnight UTC of ``day`` as Airflow's REST API takes it."""
    return f"{day.isoformat()}T00:00:00Z"
