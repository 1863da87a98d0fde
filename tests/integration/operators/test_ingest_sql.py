"""DatasetIngestPartitionOperator reading a day from a real SQL database through an Airflow connection."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from types import SimpleNamespace

import pyarrow.compute as pc
import pytest

from include.example_data import churn
from mlops_provider.exceptions import SourceRejectedError
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

CONFIG = str(REPO_ROOT / "include" / "datasets" / "churn.yaml")
DAY = "2026-02-10"


def _context() -> dict:
    ti = SimpleNamespace(dag_id="mlops_ingest", run_id="sql_test", task_id="ingest", try_number=1)
    return {"ti": ti, "logical_date": datetime(2026, 2, 10, tzinfo=timezone.utc)}


@pytest.fixture
def warehouse(tmp_path, airflow_connection):
    """A SQLite database holding two days of churn snapshots, and a `sqlite` connection to it."""
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as db:
        for day in ("2026-02-09", DAY):
            frame = churn.generate_day(day, 500, seed=3).to_pandas()
            frame["snapshot_ts"] = frame["snapshot_ts"].dt.strftime("%Y-%m-%d %H:%M:%S.%fZ")
            frame["signup_date"] = frame["signup_date"].astype(str)
            frame.to_sql("customer_snapshots", db, if_exists="append", index=False)
    return airflow_connection("warehouse", conn_type="sqlite", host=str(path))


def _operator(tmp_path, sql: str) -> DatasetIngestPartitionOperator:
    return DatasetIngestPartitionOperator(
        task_id="ingest",
        dataset_config=CONFIG,
        sql=sql,
        sql_conn_id="warehouse",
        data_root=f"file://{tmp_path / 'data'}",
    )


def test_one_day_from_sql_becomes_the_raw_partition(tmp_path, warehouse):
    sql = f"SELECT * FROM customer_snapshots WHERE snapshot_ts >= '{DAY}' AND snapshot_ts < '2026-02-11'"

    result = _operator(tmp_path, sql).execute(_context())

    assert result["row_count"] == 500
    assert result["source"] == "sql://warehouse"
    table = DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}").read_partition("churn", "raw", DAY)
    expected = churn.generate_day(DAY, 500, seed=3)
    assert table.schema == expected.schema
    assert table.column("customer_id").equals(expected.column("customer_id"))
    assert pc.all(pc.equal(table.column("snapshot_ts"), expected.column("snapshot_ts"))).as_py()
    assert table.column("has_partner").equals(expected.column("has_partner"))


def test_query_missing_a_column_is_rejected(tmp_path, warehouse):
    with pytest.raises(SourceRejectedError, match=r"missing columns \[.*'region'"):
        _operator(tmp_path, "SELECT customer_id, churned FROM customer_snapshots LIMIT 5").execute(_context())
