"""
### `mlops_rollback`: point `champion` back to an earlier model version

Trigger it with the version to restore and a reason. It checks that the version exists and is
ready, moves the `champion` alias to it and records on that version who asked, when, why and which
version was champion before (`mlops.rollback.*` tags). Nothing is deleted: rolling forward again is
another rollback to the newer version.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG, Param

from mlops_provider.dag_defaults import config_name_param, default_args
from mlops_provider.operators.registry import MLflowRollbackChampionOperator

MODELS_DIR = Path(__file__).resolve().parent.parent / "include" / "models"

with DAG(
    dag_id="mlops_rollback",
    description="Point a model's champion alias back to a named earlier version, with who and why",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(retries=0),
    params={
        "model": config_name_param("model", MODELS_DIR),
        "version": Param(
            1,
            type="integer",
            minimum=1,
            title="Version",
            description="The registered version that becomes champion.",
        ),
        "reason": Param(
            "",
            type="string",
            minLength=3,
            maxLength=500,
            title="Reason",
            description="Why the champion is rolled back (recorded on the version).",
        ),
    },
    tags=["mlops", "registry"],
    doc_md=__doc__,
) as dag:
    MLflowRollbackChampionOperator(
        task_id="rollback",
        model_config=f"{MODELS_DIR}/{{{{ params.model }}}}.yaml",
        version="{{ params.version }}",
        reason="{{ params.reason }}",
    )
