"""mlops_ingest end to end with dag.test(): real files, real Great Expectations, real storage."""

from __future__ import annotations

import json
from datetime import date

import pytest

from include.example_data import churn
from mlops_provider.hooks.storage import DatasetStorageHook
from tests.support.dags import run_dag

pytestmark = pytest.mark.integration

ROWS = 2_000  # per day: inside the suite's bounds after the test's override below


@pytest.fixture
def data_root(tmp_path, monkeypatch, airflow_db) -> str:
    """A fresh local data root for one test, set as [mlops] data_root."""
    root = f"file://{tmp_path / 'data'}"
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_ROOT", root)
    return root


def land(root: str, start: str, days: int = 1, **kwargs) -> None:
    """Write example landing files where the churn config looks for them."""
    out = root.removeprefix("file://") + "/landing/churn"
    churn.write_days(out, start, days, rows_per_day=ROWS, exact_rows=True, **kwargs)


def storage(root: str) -> DatasetStorageHook:
    return DatasetStorageHook(root_uri=root)


def test_good_day_is_published_to_validated(data_root):
    import pyarrow as pa

    land(data_root, "2026-03-01")
    pool = pa.default_memory_pool().backend_name

    result = run_dag("mlops_ingest__churn", "2026-03-01")

    assert result.state == "success", result
    assert pa.default_memory_pool().backend_name == pool  # validation's jemalloc pool was scoped
    hook = storage(data_root)
    manifest = hook.read_manifest("churn", "validated", "2026-03-01")
    assert manifest.row_count == ROWS
    assert manifest.produced_by["dag_id"] == "mlops_ingest__churn"
    assert hook.read_manifest("churn", "raw", "2026-03-01").sha256 == manifest.sha256
    report = hook.report_path("churn", "validation", "2026-03-01")
    assert json.loads((report / "result.json").read_text())["result"]["success"] is True
    assert "<html" in (report / "report.html").read_text().lower()
    assert hook.list_partitions("churn", "quarantine") == []


GOOD_NEIGHBOUR = "2026-04-01"

# kind -> (the task that must fail, what the evidence must say)
BAD_INPUTS = {
    "empty": ("ingest", "the file is empty"),
    "missing_column": ("ingest", "missing columns ['monthly_charges']"),
    "extra_column": ("ingest", "unexpected columns ['unexpected_col']"),
    "wrong_type": ("ingest", "column 'monthly_charges' (double)"),
    "non_utf8": ("ingest", "'region' holds bytes that are not valid UTF-8"),
    "header_only": ("validate", "expect_table_row_count_to_be_between"),
    "all_null": ("validate", "expect_column_values_to_not_be_null"),
    "bad_target": ("validate", "expect_column_values_to_be_in_set"),
    "duplicate_keys": ("validate", "expect_column_values_to_be_unique"),
    "tenx_rows": ("validate", "expect_table_row_count_to_be_between"),
}


@pytest.fixture
def published_neighbour(data_root):
    """A good day already published to validated/, which no failure may touch."""
    land(data_root, GOOD_NEIGHBOUR)
    assert run_dag("mlops_ingest__churn", GOOD_NEIGHBOUR).state == "success"
    return storage(data_root).read_manifest("churn", "validated", GOOD_NEIGHBOUR)


def _evidence(hook: DatasetStorageHook, day: str, failed_task: str) -> str:
    if failed_task == "ingest":
        folder = hook.partition_path("churn", "quarantine", day) / "source"
        return (folder / "_rejection.json").read_text()
    assert hook.read_manifest("churn", "quarantine", day) is not None  # the partition itself moved
    assert hook.read_manifest("churn", "raw", day) is None
    report = hook.report_path("churn", "validation", day)
    return (report / "result.json").read_text() + (report / "report.html").read_text()


@pytest.mark.parametrize("kind", list(BAD_INPUTS))
def test_bad_input_is_quarantined_and_nothing_published_is_touched(data_root, published_neighbour, kind):
    day = "2026-04-02"
    failed_task, evidence = BAD_INPUTS[kind]
    rows = 20_000 if kind == "tenx_rows" else ROWS  # 10x the usual day crosses the suite's bound
    out = data_root.removeprefix("file://") + "/landing/churn"
    churn.write_days(out, day, 1, rows_per_day=rows, exact_rows=True, corrupt={day: kind})

    result = run_dag("mlops_ingest__churn", day)

    assert result.state == "failed"
    assert result.task_states[failed_task] == "failed"
    hook = storage(data_root)
    assert evidence in _evidence(hook, day, failed_task)
    assert hook.read_manifest("churn", "validated", day) is None
    assert hook.list_partitions("churn", "validated") == [date(2026, 4, 1)]
    assert hook.read_manifest("churn", "validated", GOOD_NEIGHBOUR) == published_neighbour


def test_truncated_parquet_via_the_source_params(data_root, published_neighbour):
    day = "2026-04-03"
    drop = data_root.removeprefix("file://") + "/landing/churn/drop"  # inside the configured location
    churn.write_days(drop, day, 1, rows_per_day=ROWS, fmt="parquet", corrupt={day: "truncated"})
    conf = {"source_uri": f"file://{drop}/{day}.parquet", "source_format": "parquet"}

    result = run_dag("mlops_ingest__churn", day, conf)

    assert result.task_states["ingest"] == "failed"
    assert "not a readable parquet file" in _evidence(storage(data_root), day, "ingest")
    assert storage(data_root).list_partitions("churn", "validated") == [date(2026, 4, 1)]


def test_a_source_override_outside_the_configured_location_reads_nothing(data_root, tmp_path):
    secret = tmp_path / "passwords.json"
    secret.write_text('{"admin": "do-not-copy"}')

    result = run_dag("mlops_ingest__churn", "2026-04-05", {"source_uri": f"file://{secret}"})

    assert result.task_states["ingest"] == "failed"
    hook = storage(data_root)
    assert not hook.partition_path("churn", "quarantine", "2026-04-05").exists()  # nothing read or copied
    assert hook.list_partitions("churn", "raw") == []


def test_missing_source_fails_with_a_clear_error_and_quarantines_nothing(data_root):
    result = run_dag("mlops_ingest__churn", "2026-04-04")
    assert result.task_states["ingest"] == "failed"
    hook = storage(data_root)
    assert hook.list_partitions("churn", "raw") == []
    assert hook.list_partitions("churn", "quarantine") == []


def test_a_failed_rerun_keeps_the_published_version_of_that_day(data_root, published_neighbour):
    out = data_root.removeprefix("file://") + "/landing/churn"
    churn.write_days(
        out, GOOD_NEIGHBOUR, 1, rows_per_day=ROWS, exact_rows=True, corrupt={GOOD_NEIGHBOUR: "bad_target"}
    )

    assert run_dag("mlops_ingest__churn", GOOD_NEIGHBOUR).state == "failed"
    hook = storage(data_root)
    assert hook.read_manifest("churn", "validated", GOOD_NEIGHBOUR) == published_neighbour
    assert hook.read_partition("churn", "validated", GOOD_NEIGHBOUR).num_rows == ROWS


def test_same_day_twice_gives_the_identical_partition(data_root):
    land(data_root, "2026-05-01")
    assert run_dag("mlops_ingest__churn", "2026-05-01").state == "success"
    first = storage(data_root).read_manifest("churn", "validated", "2026-05-01")
    assert run_dag("mlops_ingest__churn", "2026-05-01").state == "success"
    second = storage(data_root).read_manifest("churn", "validated", "2026-05-01")

    assert second.files == first.files
    assert second.sha256 == first.sha256
    assert (second.row_count, second.schema, second.source) == (first.row_count, first.schema, first.source)
    assert second.produced_by["run_id"] != first.produced_by["run_id"]
    folder = storage(data_root).partition_path("churn", "validated", "2026-05-01")
    assert sorted(p.name for p in folder.iterdir()) == sorted([first.files[0].name, "_manifest.json"])


def test_run_without_a_logical_date_needs_partition_date(data_root):
    land(data_root, "2026-05-02")
    assert run_dag("mlops_ingest__churn", None).task_states["ingest"] == "failed"
    result = run_dag("mlops_ingest__churn", None, {"partition_date": "2026-05-02"})
    assert result.state == "success"
    assert storage(data_root).list_partitions("churn", "validated") == [date(2026, 5, 2)]


def test_good_day_on_s3_through_an_aws_connection(s3_bucket, monkeypatch, airflow_db, tmp_path):
    import boto3

    bucket, conn_id = s3_bucket
    monkeypatch.setenv("AIRFLOW__MLOPS__DATA_ROOT", f"s3://{bucket}/mlops")
    monkeypatch.setenv("AIRFLOW__MLOPS__STORAGE_CONN_ID", conn_id)
    (path,) = churn.write_days(tmp_path, "2026-06-01", 1, rows_per_day=ROWS, exact_rows=True)
    hook = DatasetStorageHook(root_uri=f"s3://{bucket}/mlops", storage_conn_id=conn_id)
    hook.write_bytes_atomic(hook.root / "landing" / "churn" / path.name, path.read_bytes())

    result = run_dag("mlops_ingest__churn", "2026-06-01")

    assert result.state == "success", result
    assert hook.read_manifest("churn", "validated", "2026-06-01").row_count == ROWS
    assert hook.read_partition("churn", "validated", "2026-06-01").num_rows == ROWS
    assert boto3  # the objects above went over HTTP through boto3 / s3fs to the moto server


def test_bad_value_deep_in_a_streamed_file_keeps_that_days_published_version(
    data_root, published_neighbour, monkeypatch
):
    from mlops_provider.core import ingest

    monkeypatch.setattr(ingest, "BLOCK_SIZE", 16 << 10)  # the file streams in many blocks
    hook = storage(data_root)
    raw_before = hook.read_manifest("churn", "raw", GOOD_NEIGHBOUR)
    (landed,) = (p for p in hook.resolve_source(f"{data_root}/landing/churn/*") if GOOD_NEIGHBOUR in p.name)
    header, *rows = landed.read_text().splitlines()
    position = header.replace('"', "").split(",").index("monthly_charges")
    last = rows[-1].split(",")
    last[position] = "n/a"
    rows[-1] = ",".join(last)
    landed.write_text("\n".join([header, *rows]) + "\n")

    result = run_dag("mlops_ingest__churn", GOOD_NEIGHBOUR)

    assert result.task_states["ingest"] == "failed"
    assert "column 'monthly_charges' (double)" in _evidence(hook, GOOD_NEIGHBOUR, "ingest")
    assert hook.read_manifest("churn", "raw", GOOD_NEIGHBOUR) == raw_before
    assert hook.read_manifest("churn", "validated", GOOD_NEIGHBOUR) == published_neighbour
    folder = hook.partition_path("churn", "raw", GOOD_NEIGHBOUR)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["_manifest.json", raw_before.files[0].name])
