"""Pipelines generated from configuration files: one set of DAGs per dataset and per model file.

A project's (or a user's) DAG file points the factory at its configuration folder::

    from mlops_provider.pipelines import build_pipelines

    globals().update(build_pipelines("/path/to/include"))

Importing this package imports Airflow's task SDK and nothing heavy.
"""

from __future__ import annotations

from mlops_provider.pipelines.factory import INVALID_DAG_ID, build_pipelines
from mlops_provider.pipelines.ids import drift_dag_id, ingest_dag_id, rollback_dag_id, train_dag_id

__all__ = [
    "INVALID_DAG_ID",
    "build_pipelines",
    "drift_dag_id",
    "ingest_dag_id",
    "rollback_dag_id",
    "train_dag_id",
]
