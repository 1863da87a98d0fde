"""DatasetIngestPartitionOperator.execute: a day's source becomes the raw partition, or is refused.

The operator runs as in a task (``execute`` with a minimal context) on the real local-file storage
under a tmp ``data_root``; a SQL source is a fake ``DbApiHook`` returned by the connection lookup.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from airflow.providers.common.sql.hooks.sql import DbApiHook

from include.example_data import churn
from mlops_provider.exceptions import InvalidConfigurationError, SourceRejectedError
from mlops_provider.hooks.storage import DatasetStorageHook
from mlops_provider.operators import ingest
from mlops_provider.operators.ingest import DatasetIngestPartitionOperator
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.unit

CONFIG = str(REPO_ROOT / "include" / "datasets" / "churn.yaml")
DAY = "2026-03-01"
ROWS = 50


def context(logical_date: datetime | None = datetime(2026, 3, 1, tzinfo=timezone.utc)) -> dict:
    ti = SimpleNamespace(dag_id="mlops_ingest__churn", run_id="manual__1", task_id="ingest", try_number=2)
    return {"ti": ti, "logical_date": logical_date}


@pytest.fixture
def root(tmp_path) -> str:
    return f"file://{tmp_path / 'data'}"


def land(root: str, day: str = DAY, **kwargs) -> str:
    """Write the day's landing file where churn.yaml's ``source.uri`` points; return its URI."""
    (path,) = churn.write_days(
        root.removeprefix("file://") + "/landing/churn", day, 1, rows_per_day=ROWS, exact_rows=True, **kwargs
    )
    return f"file://{path}"


def operator(root: str, dataset_config: str = CONFIG, **kwargs) -> DatasetIngestPartitionOperator:
    return DatasetIngestPartitionOperator(
        task_id="ingest", dataset_config=dataset_config, data_root=root, **kwargs
    )


def test_the_configured_source_of_the_logical_date_becomes_the_raw_partition(root):
    uri = land(root)

    result = operator(root).execute(context())

    storage = DatasetStorageHook(root_uri=root)
    manifest = storage.read_manifest("churn", "raw", DAY)
    assert result == {
        "dataset": "churn",
        "ds": DAY,
        "uri": storage.partition_uri("churn", "raw", DAY),
        "row_count": ROWS,
        "sha256": manifest.sha256,
        "source": uri,
    }
    assert manifest.source == uri
    assert manifest.produced_by == {
        "dag_id": "mlops_ingest__churn",
        "run_id": "manual__1",
        "task_id": "ingest",
        "try_number": 2,
    }
    assert storage.read_partition("churn", "raw", DAY).equals(churn.generate_day(DAY, ROWS))


def test_an_explicit_partition_date_renders_the_source_of_that_day_without_a_logical_date(root):
    land(root, "2026-03-04")

    result = operator(root, partition_date="2026-03-04").execute(context(logical_date=None))

    assert (result["ds"], result["row_count"]) == ("2026-03-04", ROWS)
    assert result["source"].endswith("/landing/churn/2026-03-04.csv")


def test_a_run_without_logical_date_or_partition_date_is_refused(root):
    with pytest.raises(InvalidConfigurationError, match="partition"):
        operator(root).execute(context(logical_date=None))


def test_an_unknown_source_format_is_refused_before_any_read(root):
    uri = land(root)

    with pytest.raises(InvalidConfigurationError, match="Unknown source format 'xlsx'"):
        operator(root, source_uri=uri, source_format="xlsx").execute(context())
    assert DatasetStorageHook(root_uri=root).list_partitions("churn", "raw") == []


def test_an_override_outside_the_configured_location_is_refused(root, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (path,) = churn.write_days(elsewhere, DAY, 1, rows_per_day=ROWS, exact_rows=True)

    with pytest.raises(InvalidConfigurationError, match="Refused the source override") as failure:
        operator(root, source_uri=f"file://{path}").execute(context())
    assert f"{root}/landing/churn" in str(failure.value)  # where an override may read
    assert DatasetStorageHook(root_uri=root).list_partitions("churn", "raw") == []


def test_a_file_that_does_not_fit_the_schema_is_quarantined_with_its_rejection(root):
    land(root, corrupt={DAY: "missing_column"})

    with pytest.raises(SourceRejectedError, match=r"missing columns \['monthly_charges'\]") as failure:
        operator(root).execute(context())

    storage = DatasetStorageHook(root_uri=root)
    assert storage.list_partitions("churn", "raw") == []
    quarantine = storage.partition_path("churn", "quarantine", DAY) / "source"
    assert str(quarantine.path) in str(failure.value)
    rejection = json.loads((quarantine / "_rejection.json").read_text())
    assert (rejection["dataset"], rejection["ds"], rejection["stage"]) == ("churn", DAY, "ingest")
    assert (quarantine / f"{DAY}.csv").exists()


class FakeSqlHook(DbApiHook):
    """A SQL connection's hook that answers every query with one day of churn rows."""

    conn_name_attr = "fake_conn_id"

    def __init__(self) -> None:
        super().__init__()
        self.queries: list[str] = []

    def get_df(self, sql, parameters=None, *, df_type="pandas", **kwargs):
        self.queries.append(sql)
        return churn.generate_day(DAY, ROWS).to_pandas()


@pytest.fixture
def connections(monkeypatch) -> dict[str, object]:
    """The hooks the operator's connection lookup returns, by connection id."""
    hooks: dict[str, object] = {}
    lookup = SimpleNamespace(get_connection=lambda conn_id: SimpleNamespace(get_hook=lambda: hooks[conn_id]))
    monkeypatch.setattr(ingest, "BaseHook", lookup)
    return hooks


@pytest.fixture
def sql_config(tmp_path) -> str:
    """churn.yaml with a SQL source on the connection ``warehouse`` instead of files."""
    raw = yaml.safe_load(Path(CONFIG).read_text())
    raw["expectations"] = str(REPO_ROOT / "include" / "expectations" / "churn.json")
    raw["source"] = {"sql": "SELECT * FROM snapshots WHERE day = '{{ ds }}'", "conn_id": "warehouse"}
    path = tmp_path / "churn_sql.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def test_the_configured_sql_is_rendered_and_queried_on_its_connection(root, connections, sql_config):
    connections["warehouse"] = hook = FakeSqlHook()

    result = operator(root, dataset_config=sql_config).execute(context())

    assert hook.queries == [f"SELECT * FROM snapshots WHERE day = '{DAY}'"]
    assert (result["source"], result["row_count"]) == ("sql://warehouse", ROWS)
    assert DatasetStorageHook(root_uri=root).read_manifest("churn", "raw", DAY).source == "sql://warehouse"


def test_an_sql_override_runs_as_airflow_rendered_it_on_the_given_connection(root, connections):
    connections["replica"] = hook = FakeSqlHook()

    result = operator(root, sql="SELECT * FROM snapshots", sql_conn_id="replica").execute(context())

    assert hook.queries == ["SELECT * FROM snapshots"]
    assert result["source"] == "sql://replica"


def test_a_sql_source_needs_a_sql_connection(root, connections):
    connections["files"] = SimpleNamespace()

    with pytest.raises(InvalidConfigurationError, match="needs a connection id"):
        operator(root, sql="SELECT 1").execute(context())
    with pytest.raises(InvalidConfigurationError, match="'files' is not a SQL connection"):
        operator(root, sql="SELECT 1", sql_conn_id="files").execute(context())
