"""GXValidatePartitionOperator.execute: publish a day that passes its suite, quarantine one that fails.

The operator runs as in a task (``execute`` with a minimal context) on the real local-file storage
under a tmp ``data_root``, with the shipped churn dataset and its suite; Great Expectations runs for
real (its import, ~4 s, is most of this file's time).
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timezone
from types import SimpleNamespace

import pyarrow as pa
import pytest
from airflow.sdk import Asset

from include.example_data import churn
from mlops_provider.exceptions import ValidationFailedError
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.links.reports import REPORT_URL_KEY, ValidationReportLink
from mlops_provider.operators.validation import GXValidatePartitionOperator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CONFIG = str(REPO_ROOT / "include" / "datasets" / "churn.yaml")
DAY = "2026-03-01"
ROWS = 1_200  # inside the churn suite's row-count bounds
REPORT_URL = f"/mlops/reports/churn/validation/{DAY}/report.html"
LINEAGE = {"dag_id": "mlops_ingest__churn", "run_id": "manual__1", "task_id": "validate", "try_number": 1}
ASSET = Asset("mlops://churn/validated")


class Task:
    """A minimal task context: the task instance records its XComs, outlets record their event extra."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}
        ti = SimpleNamespace(**LINEAGE, xcom_push=lambda key, value: self.xcom.__setitem__(key, value))
        self.context = {
            "ti": ti,
            "logical_date": datetime(2026, 3, 1, tzinfo=timezone.utc),
            "outlet_events": defaultdict(SimpleNamespace),
        }


@pytest.fixture
def storage(tmp_path) -> DatasetStorageHook:
    return DatasetStorageHook(root_uri=f"file://{tmp_path / 'data'}")


def operator(storage: DatasetStorageHook) -> GXValidatePartitionOperator:
    return GXValidatePartitionOperator(
        task_id="validate", dataset_config=CONFIG, data_root=storage.uri_of(storage.root), outlets=[ASSET]
    )


def ingest(storage: DatasetStorageHook, table: pa.Table) -> str:
    """Publish ``table`` as the day's raw partition; return its digest."""
    return storage.write_partition("churn", "raw", DAY, table, source="file:///landing/churn.csv").sha256


def test_the_extra_link_is_the_validation_report_link():
    assert [type(link) for link in GXValidatePartitionOperator.operator_extra_links] == [ValidationReportLink]


def test_a_day_that_passes_is_published_to_validated_with_its_report(storage):
    sha256 = ingest(storage, churn.generate_day(DAY, ROWS))
    task = Task()

    summary = operator(storage).execute(task.context)

    validated = storage.read_manifest("churn", "validated", DAY)
    assert (validated.sha256, validated.row_count, validated.produced_by) == (sha256, ROWS, LINEAGE)
    assert storage.read_manifest("churn", "raw", DAY).sha256 == sha256  # raw stays
    report = storage.report_path("churn", "validation", DAY)
    assert summary["success"] is True and summary["failed_expectations"] == []
    assert summary["report_uri"] == storage.uri_of(report)
    assert (summary["validated_uri"], summary["row_count"], summary["sha256"]) == (
        storage.partition_uri("churn", "validated", DAY),
        ROWS,
        sha256,
    )
    stored = json.loads((report / "result.json").read_text())
    assert (stored["stage"], stored["dataset"], stored["ds"], stored["run_id"]) == (
        "expectations",
        "churn",
        DAY,
        "manual__1",
    )
    assert stored["result"]["success"] is True
    assert "<html" in (report / "report.html").read_text().lower()
    assert task.xcom == {REPORT_URL_KEY: REPORT_URL}
    assert task.context["outlet_events"][ASSET].extra == {
        "dataset": "churn",
        "ds": DAY,
        "validated_uri": storage.partition_uri("churn", "validated", DAY),
        "row_count": ROWS,
        "sha256": sha256,
    }


def test_a_day_that_fails_is_quarantined_and_the_published_version_stays(storage):
    good = churn.generate_day(DAY, ROWS)
    ingest(storage, good)
    operator(storage).execute(Task().context)
    published = storage.read_manifest("churn", "validated", DAY)
    bad = ingest(storage, pa.concat_tables([good, good.slice(0, 3)]))  # three customers twice
    task = Task()

    with pytest.raises(ValidationFailedError, match="expect_column_values_to_be_unique") as failure:
        operator(storage).execute(task.context)

    report = storage.report_path("churn", "validation", DAY)
    assert storage.uri_of(report) in str(failure.value)
    assert storage.read_manifest("churn", "validated", DAY) == published
    assert storage.read_manifest("churn", "raw", DAY) is None
    assert storage.read_manifest("churn", "quarantine", DAY).sha256 == bad
    assert task.xcom[REPORT_URL_KEY] == REPORT_URL  # the link works on the failed task too
    summary = task.xcom["validation"]
    assert summary["success"] is False
    assert summary["quarantine_uri"] == storage.partition_uri("churn", "quarantine", DAY)
    assert [f["expectation"] for f in summary["failed_expectations"]] == ["expect_column_values_to_be_unique"]
    assert json.loads((report / "result.json").read_text())["result"]["success"] is False
    assert not hasattr(task.context["outlet_events"][ASSET], "extra")
