"""Run the project's DAGs for real with ``dag.test()`` and read back what happened."""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from tests.conftest import REPO_ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

LOCAL_BUNDLE = "airflow.dag_processing.bundles.local.LocalDagBundle"


@contextmanager
def pipeline_env(data_root: Path, mlflow_uri: str, dag_folder: Path | None = None) -> Iterator[None]:
    """While inside: ``[mlops] data_root`` is ``data_root``, ``mlflow_default`` points at ``mlflow_uri``
    and, with ``dag_folder``, that folder is a second DAG bundle beside the project's ``dags/``
    (``dag.test()`` runs only DAGs that a configured bundle holds)."""
    import pytest

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW__MLOPS__DATA_ROOT", f"file://{data_root}")
        patch.setenv("AIRFLOW_CONN_MLFLOW_DEFAULT", json.dumps({"conn_type": "mlflow", "host": mlflow_uri}))
        if dag_folder is not None:
            bundles = [
                {"name": "dags-folder", "classpath": LOCAL_BUNDLE, "kwargs": {}},
                {"name": dag_folder.name, "classpath": LOCAL_BUNDLE, "kwargs": {"path": str(dag_folder)}},
            ]
            patch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
        yield


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
