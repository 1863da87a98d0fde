"""Run the project's DAGs for real with ``dag.test()`` and read back what happened."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from pathlib import Path


def parse_dags(dag_folder: Path | None = None):
    """Parse ``dag_folder`` (default: the project's ``dags/``) with Airflow's own DagBag."""
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(dag_folder or REPO_ROOT / "dags"))


def load_dag(dag_id: str, dag_folder: Path | None = None):
    """Parse the DAG folder and return one DAG (import errors fail loudly).

    Parsed afresh on every call: ``dag.test(run_conf=...)`` leaves the conf in the DAG's params.
    """
    bag = parse_dags(dag_folder)
    assert not bag.import_errors, bag.import_errors
    return bag.dags[dag_id]


@dataclass
class RunResult:
    state: str
    task_states: dict[str, str]
    run_id: str


def run_dag(
    dag_id: str, day: str | None, conf: dict[str, Any] | None = None, dag_folder: Path | None = None
) -> RunResult:
    """Run ``dag_id`` once in-process; ``day`` (YYYY-MM-DD) is the logical date, None for none."""
    dag = load_dag(dag_id, dag_folder)
    logical = datetime.fromisoformat(day).replace(tzinfo=timezone.utc) if day else None
    run = dag.test(logical_date=logical, run_conf=conf)
    tis = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    return RunResult(state=str(run.state), task_states=tis, run_id=run.run_id)
