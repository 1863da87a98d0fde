"""Pipelines generated from configuration files: one set of DAGs per dataset and per model file.

A project's (or a user's) DAG file points the factory at its configuration folder::

    from mlops_provider.pipelines import build_pipelines

    globals().update(build_pipelines("/path/to/include"))

The DAG id functions (:mod:`~mlops_provider.pipelines.ids`) import nothing; the factory is loaded on
first use (it imports Airflow's task SDK and nothing heavy), so a REST client can name DAG ids without
importing Airflow.
"""

from __future__ import annotations

from typing import Any

from mlops_provider.pipelines.ids import drift_dag_id, ingest_dag_id, rollback_dag_id, train_dag_id

__all__ = [
    "INVALID_DAG_ID",
    "build_pipelines",
    "drift_dag_id",
    "ingest_dag_id",
    "rollback_dag_id",
    "train_dag_id",
]


def __getattr__(name: str) -> Any:
    if name in ("INVALID_DAG_ID", "build_pipelines"):
        from mlops_provider.pipelines import factory

        return getattr(factory, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
