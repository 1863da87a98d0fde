"""Tuning of the local stack's Airflow, copied into AIRFLOW_HOME/config at each ``up`` (edits there are lost).

Every Airflow component imports it (AIRFLOW_HOME/config is on their sys.path). The source is
``scripts/mlops_stack/airflow_local_settings.py``; the stack itself never imports it.

Airflow creates a backfill's runs in SAVEPOINTs. On SQLite a SAVEPOINT outside a transaction starts a
deferred one: its first SELECT takes a read snapshot and its first INSERT then fails at once with
"database is locked" (SQLITE_BUSY_SNAPSHOT, no busy wait) whenever another process (scheduler,
dag-processor, heartbeats) committed in between; the API answers POST /api/v2/backfills with 503.
Beginning such a transaction with BEGIN IMMEDIATE takes the write lock first (waiting for it like any
writer), so the snapshot cannot go stale. Only transactions that start with a SAVEPOINT change: a global
BEGIN IMMEDIATE deadlocks Airflow's nested sessions (e.g. ``airflow db migrate``).

LocalExecutor forks its workers from the scheduler and every task from a worker, so the libraries
imported here, in the scheduler only, are already loaded in each task: an ingest or training task then
starts without seconds of imports (great_expectations alone takes ~4 s). MLOPS_STACK_PRELOAD=0 in the
environment of ``up`` turns that off.
"""

from __future__ import annotations

import importlib
import os
import sys

from sqlalchemy import create_engine, event

__all__ = ["create_metadata_engine"]  # what Airflow takes from this module

PRELOAD = (
    "pandas",
    "pyarrow.parquet",
    "great_expectations",
    "scipy.stats",
    "sklearn.linear_model",
    "sklearn.pipeline",
    "mlflow",
)


def create_metadata_engine(sql_alchemy_conn, *, engine_args, connect_args):
    """Airflow's hook for its metadata engine: on SQLite, a first SAVEPOINT takes the write lock."""
    engine = create_engine(sql_alchemy_conn, connect_args=connect_args, **engine_args, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "savepoint")
        def _write_lock_before_a_first_savepoint(conn, name):
            dbapi_connection = conn.connection.dbapi_connection
            if not dbapi_connection.in_transaction:
                dbapi_connection.execute("BEGIN IMMEDIATE")

    return engine


def preload(modules=PRELOAD):
    """Import ``modules`` now; a missing or broken package is reported and skipped, never fatal."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception as exc:
            print(f"airflow_local_settings: not preloading {module}: {exc!r}", file=sys.stderr)


if sys.argv[1:2] == ["scheduler"] and os.environ.get("MLOPS_STACK_PRELOAD", "1") != "0":
    preload()
